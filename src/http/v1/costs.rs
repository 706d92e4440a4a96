//! LLM token prices: create, query and purge a project's prices (`include_costs` of a calls
//! query prices calls with them).

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::json_response;
use crate::domain::costs::{COLUMNS, CostCreate, CostPurge, CostQuery, PURGE_REFUSED};
use crate::domain::query::Expr;
use crate::domain::reads::{self, RowShape};
use crate::domain::row_query::purge_ids;
use crate::domain::store;
use crate::domain::writes;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody};

/// `POST /cost/create`: `{"ids": [[price id, model id], ...]}`.
pub(crate) async fn cost_create(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<CostCreate>,
) -> Result<Response, ApiError> {
    for c in req.costs.values() {
        if let Some(d) = &c.effective_date {
            crate::domain::trace::parse_stored_time(d, "effective_date")?;
        }
    }
    let ids = store::write_async(state.store.as_ref(), move |w| {
        writes::costs::create(w, &req, Some(who.user_id()))
    })
    .await?;
    Ok(json_response(json!({ "ids": ids })))
}

/// `POST /cost/query`: the project's prices matching a query, as `{"results": [...]}`.
pub(crate) async fn cost_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<CostQuery>,
) -> Result<Response, ApiError> {
    let expr = Expr::from_query(req.query.as_ref())?;
    let shape = RowShape::of(&COLUMNS, req.fields.as_deref(), req.sort_by.as_deref(), req.limit, req.offset)?;
    crate::http::stream::json_list(&state, &who, "results", move |s, emit| {
        reads::costs(s, &req.project_id, expr.as_ref(), &shape, &mut |row| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &row);
            })
        })
    })
    .await
}

/// `POST /cost/purge`: deletes the prices a query names by id (`$eq`, `$in` or an `$or` of
/// `$eq` on `id`: the only purges Weave accepts; any other query is a 400).
pub(crate) async fn cost_purge(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<CostPurge>,
) -> Result<Response, ApiError> {
    let ids = purge_ids(&req.query, true, PURGE_REFUSED)?;
    store::write_async(state.store.as_ref(), move |w| writes::costs::purge(w, &req.project_id, &ids)).await?;
    Ok(json_response(json!({})))
}

in_project! {
    CostCreate => project_id;
    CostQuery => project_id;
    CostPurge => project_id;
}
