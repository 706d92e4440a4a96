//! Threads: the conversations of a project, built from its turn calls.

use axum::extract::State;
use axum::response::Response;

use crate::domain::threads::{self, ThreadsQueryReq};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody};

/// `POST /threads/stream_query`: the threads as JSONL (`ThreadSchema`), by default the most
/// recently updated first.
pub(crate) async fn threads_stream_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<ThreadsQueryReq>,
) -> Result<Response, ApiError> {
    req.check()?;
    crate::http::stream::jsonl(&state, &who, move |s, emit| {
        threads::threads(s, &req, &mut |row| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &row);
            })
        })
    })
    .await
}

in_project! {
    ThreadsQueryReq => project_id;
}
