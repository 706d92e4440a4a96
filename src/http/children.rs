//! Handlers of `/v2/{entity}/{project}/predictions` and `/scores`.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Principal;
use super::error::ApiError;
use super::extract::{JsonBody, OptionalJsonBody, ProjectPath, RawQuery};
use super::{AppState, blocking, ids_from_body};
use crate::domain::page::Page;
use crate::domain::prediction::{self, CreatePrediction, PredictionRead};
use crate::domain::score::{self, CreateScore};
use crate::domain::store;
use crate::domain::validate::check_ids;
use crate::domain::view::Kind;
use crate::domain::writes::deletes;

/// `POST /predictions`.
pub async fn create_prediction(
    State(state): State<AppState>,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req = CreatePrediction::from_json(&body)?;
    let id = store::write_async(state.store.as_ref(), move |w| {
        prediction::create(w, &path.project_id, &req, Some(who.user_id()))
    })
    .await?;
    Ok(axum::Json(json!({ "prediction_id": id })).into_response())
}

/// `POST /scores`.
pub async fn create_score(
    State(state): State<AppState>,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req = CreateScore::from_json(&body)?;
    let id = store::write_async(state.store.as_ref(), move |w| {
        score::create(w, &path.project_id, &req, Some(who.user_id()))
    })
    .await?;
    Ok(axum::Json(json!({ "score_id": id })).into_response())
}

/// `POST /predictions/{prediction_id}/finish`: ends the prediction's `predict_and_score` call.
pub async fn finish_prediction(
    State(state): State<AppState>,
    path: ProjectPath,
) -> Result<Response, ApiError> {
    store::write_async(state.store.as_ref(), move |w| {
        prediction::finish(w, &path.project_id, path.param("prediction_id"))
    })
    .await?;
    Ok(axum::Json(json!({ "success": true })).into_response())
}

/// `GET /predictions/{prediction_id}`: a call of the prediction view, or one flagged a
/// prediction in another form ([`prediction::is_prediction`]).
pub async fn read_prediction(State(state): State<AppState>, path: ProjectPath) -> Result<Response, ApiError> {
    let found = blocking(&state, move |s| {
        let id = path.param("prediction_id");
        s.call(&path.project_id, id)?
            .filter(prediction::is_prediction)
            .map(PredictionRead::of)
            .ok_or_else(|| prediction::not_found(id))
    })
    .await?;
    Ok(axum::Json(found).into_response())
}

/// `GET /scores/{score_id}`: a score call, or a score of a logged prediction.
pub async fn read_score(State(state): State<AppState>, path: ProjectPath) -> Result<Response, ApiError> {
    let found = blocking(&state, move |s| {
        let id = path.param("score_id");
        score::read(s, &path.project_id, id)?.ok_or_else(|| score::not_found(id))
    })
    .await?;
    Ok(axum::Json(found).into_response())
}

/// The cursor of a v2 list (`after=`: the id of the last row of the page before), if given.
pub(super) fn after_of(q: &crate::domain::validate::Query) -> Option<String> {
    q.get("after").filter(|s| !s.is_empty()).map(String::from)
}

/// `GET /predictions`: streams the predictions as JSONL, filtered by `evaluation_run_id`,
/// past the prediction `after` names when given.
pub async fn list_predictions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let page = Page::from_query(&q)?;
    let run_id = q.get("evaluation_run_id").filter(|s| !s.is_empty()).map(String::from);
    let after = after_of(&q);
    super::stream::jsonl(&state, &who, move |s, emit| {
        // Resolved before the first row: an unknown id is the answer's 404.
        let after = after.map(|id| prediction::position(s, &path.project_id, &id)).transpose()?;
        s.view_calls(
            &path.project_id,
            Kind::Prediction,
            run_id.as_deref(),
            after.as_ref(),
            page,
            &mut |call| {
                let item = PredictionRead::of(call);
                emit(&|buf| {
                    let _ = serde_json::to_writer(&mut *buf, &item);
                })
            },
        )
    })
    .await
}

/// `GET /scores`: the score calls, then the scores of logged predictions.
pub async fn list_scores(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let page = Page::from_query(&q)?;
    let run_id = q.get("evaluation_run_id").filter(|s| !s.is_empty()).map(String::from);
    let after = after_of(&q);
    super::stream::jsonl(&state, &who, move |s, emit| {
        score::list(s, &path.project_id, run_id.as_deref(), after.as_deref(), page, &mut |item| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &item);
            })
        })
    })
    .await
}

/// Deletes the calls of a view named in the query (`param`) or in a JSON array body.
async fn delete(
    state: &AppState,
    path: ProjectPath,
    q: crate::domain::validate::Query,
    body: Option<serde_json::Value>,
    param: &'static str,
    kind: Kind,
) -> Result<Response, ApiError> {
    let mut ids = q.list(&[param])?;
    if let Some(body) = &body {
        ids.extend(ids_from_body(body, param)?);
    }
    check_ids(param, &ids)?;
    let n =
        store::write_async(state.store.as_ref(), move |w| deletes::of_kind(w, &path.project_id, kind, &ids))
            .await?;
    Ok(axum::Json(json!({ "num_deleted": n })).into_response())
}

/// `DELETE /predictions`.
pub async fn delete_predictions(
    State(state): State<AppState>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    delete(&state, path, q, body, "prediction_ids", Kind::Prediction).await
}

/// `DELETE /scores`.
pub async fn delete_scores(
    State(state): State<AppState>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    delete(&state, path, q, body, "score_ids", Kind::Score).await
}
