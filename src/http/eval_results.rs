//! Handler of `POST /v2/{entity}/{project}/eval_results/query`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::auth::Principal;
use super::error::ApiError;
use super::extract::{JsonBody, ProjectPath};
use crate::domain::eval_results::{self, EvalResultsQuery};

/// `POST /eval_results/query`: the rows streamed as they are made, then `total_rows`,
/// `summary` and `warnings`.
pub async fn query(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    path: ProjectPath,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let q = EvalResultsQuery::from_json(&body)?;
    super::stream::json_list_then(&state, &who, "rows", move |s, emit| {
        let outcome = eval_results::query(s, &path.project_id, &q, &mut |row: &Value| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, row);
            })
        })?;
        Ok(outcome.tail())
    })
    .await
}
