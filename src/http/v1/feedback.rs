//! Feedback: create, query, purge and replace feedback rows.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::call_query::SortBy;
use crate::domain::error::Result;
use crate::domain::feedback::{COLUMNS, FeedbackCreate, FeedbackReplace};
use crate::domain::query::Expr;
use crate::domain::reads::{self, RowShape};
use crate::domain::store;
use crate::domain::trace::from_body;
use crate::domain::writes::{self};
use crate::http::AppState;
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, JsonBody, ProjectBody};

/// `POST /feedback/create`.
pub(crate) async fn feedback_create(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<FeedbackCreate>,
) -> Result<Response, ApiError> {
    let res = store::write_async(state.store.as_ref(), move |w| {
        writes::feedback::create(w, req.clone(), Some(who.user_id()))
    })
    .await?;
    Ok(axum::Json(res).into_response())
}

#[derive(Deserialize)]
pub(crate) struct FeedbackBatch {
    batch: Vec<FeedbackCreate>,
}

/// `POST /feedback/batch/create`: several feedback rows in one transaction.
pub(crate) async fn feedback_batch_create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: FeedbackBatch = from_body(body)?;
    for f in &req.batch {
        who.check_project(&f.project_id)?;
    }
    let res = store::write_async(state.store.as_ref(), move |w| {
        req.batch
            .iter()
            .map(|f| writes::feedback::create(w, f.clone(), Some(who.user_id())))
            .collect::<Result<Vec<_>>>()
    })
    .await?;
    Ok(json_response(json!({ "res": res })))
}

#[derive(Deserialize)]
pub(crate) struct FeedbackQuery {
    project_id: String,
    fields: Option<Vec<String>>,
    query: Option<Value>,
    sort_by: Option<Vec<SortBy>>,
    #[serde(default, deserialize_with = "crate::domain::body::opt_int")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::domain::body::opt_int")]
    offset: Option<i64>,
}

/// `POST /feedback/query`: feedback rows matching a query expression, with the fields and in
/// the order asked for.
pub(crate) async fn feedback_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<FeedbackQuery>,
) -> Result<Response, ApiError> {
    let expr = Expr::from_query(req.query.as_ref())?;
    let shape = RowShape::of(&COLUMNS, req.fields.as_deref(), req.sort_by.as_deref(), req.limit, req.offset)?;
    crate::http::stream::json_list(&state, &who, "result", move |s, emit| {
        reads::feedback(s, &req.project_id, expr.as_ref(), &shape, &mut |row| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &row);
            })
        })
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct FeedbackPurge {
    project_id: String,
    query: Value,
}

/// `POST /feedback/purge`: deletes the feedback rows a query names by id (the only purge
/// Weave accepts; any other query is a 400).
pub(crate) async fn feedback_purge(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<FeedbackPurge>,
) -> Result<Response, ApiError> {
    let ids = writes::feedback::purge_query(&req.query)?;
    store::write_async(state.store.as_ref(), move |w| writes::feedback::purge(w, &req.project_id, &ids))
        .await?;
    Ok(json_response(json!({})))
}

/// `POST /feedback/replace`: deletes a feedback row and creates its replacement, in one
/// transaction.
pub(crate) async fn feedback_replace(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<FeedbackReplace>,
) -> Result<Response, ApiError> {
    let res = store::write_async(state.store.as_ref(), move |w| {
        writes::feedback::replace(w, req.clone(), Some(who.user_id()))
    })
    .await?;
    Ok(axum::Json(res).into_response())
}

in_project! {
    FeedbackCreate => project_id;
    FeedbackQuery => project_id;
    FeedbackPurge => project_id;
    FeedbackReplace => project_id;
}
