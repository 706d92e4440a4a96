//! Handlers of `/v2/{entity}/{project}/evaluation_runs`.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use super::extract::{JsonBody, OptionalJsonBody, ProjectPath, RawQuery};
use super::{AppState, blocking, ids_from_body};
use crate::domain::error::{Error, Issue};
use crate::domain::eval_run::{self, CreateRun, FinishRun};
use crate::domain::page::Page;
use crate::domain::run_rows::{RunQuery, RunRow};
use crate::domain::store::{self, ReadHint, Store};
use crate::domain::validate::check_ids;
use crate::domain::view::Kind;
use crate::domain::writes::{deletes, runs};

/// `POST /evaluation_runs`: starts a run.
pub async fn create(
    State(state): State<AppState>,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req = CreateRun::from_json(&body)?;
    // The run's call is made and encoded here: the one writer thread only inserts it.
    let run = runs::prepare_create(state.store.as_ref(), &path.project_id, &req, Some(who.user_id()));
    let id = store::write_async(state.store.as_ref(), move |w| runs::create_ready(w, &run)).await?;
    Ok(axum::Json(json!({ "evaluation_run_id": id })).into_response())
}

/// Most ids a lookup may name to be read at once on the request's own thread: each id is one
/// index seek, so the read is short and bounded, and skips the hand-off to the blocking pool
/// and back (on the benchmark machine about a fifth of a 100-id lookup's time).
const INLINE_MAX_IDS: usize = 100;
/// Most bytes such a read may produce; a larger result is read again, as a stream.
const INLINE_MAX_BYTES: usize = 1 << 20;

/// Appends `row` as one JSONL line.
fn push_line(out: &mut Vec<u8>, row: &RunRow<'_>) {
    row.write_json(out);
    out.push(b'\n');
}

/// The JSONL of `query`'s runs, read at once on this thread; `None` when the store cannot
/// serve it without waiting, or the result is larger than [`INLINE_MAX_BYTES`].
fn runs_now(store: &dyn Store, project: &str, query: &RunQuery) -> Option<Result<Vec<u8>, Error>> {
    let mut out = Vec::new();
    let mut whole = true;
    let read = store.eval_runs_now(project, query, &mut |row| {
        push_line(&mut out, row);
        whole = out.len() <= INLINE_MAX_BYTES;
        whole
    })?;
    match read {
        Err(e) => Some(Err(e)),
        Ok(()) => whole.then_some(Ok(out)),
    }
}

/// `GET /evaluation_runs`: streams matching runs as JSONL.
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = RunQuery {
        evaluations: q.list(&["evaluations", "evaluation_refs"])?,
        models: q.list(&["models", "model_refs"])?,
        ids: q.list(&["evaluation_run_ids"])?,
        page: Page::from_query(&q)?,
        ..Default::default()
    };
    let after = super::children::after_of(&q);
    if after.is_none()
        && (1..=INLINE_MAX_IDS).contains(&query.ids.len())
        && let Some(rows) = runs_now(state.store.as_ref(), &path.project_id, &query)
    {
        return Ok(super::stream::jsonl_body(rows?));
    }
    super::stream::jsonl(&state, &who, move |s, emit| {
        let mut query = query;
        // Resolved before the first row: an unknown id is the answer's 404.
        if let Some(id) = after {
            query.after = Some(eval_run::position(s, &path.project_id, &id)?);
        }
        s.eval_runs(&path.project_id, &query, &mut |row| emit(&|buf| row.write_json(buf)))
    })
    .await
}

/// `GET /evaluation_runs/{evaluation_run_id}`: one run.
pub async fn read(State(state): State<AppState>, path: ProjectPath) -> Result<Response, ApiError> {
    let id = path.param("evaluation_run_id").to_string();
    let query =
        RunQuery { ids: vec![id.clone()], page: Page { limit: Some(1), offset: 0 }, ..Default::default() };
    let mut body = match runs_now(state.store.as_ref(), &path.project_id, &query) {
        Some(rows) => rows?,
        None => {
            blocking(&state, move |s| {
                let mut out = Vec::new();
                s.eval_runs(&path.project_id, &query, &mut |row| {
                    push_line(&mut out, row);
                    true
                })?;
                Ok(out)
            })
            .await?
        }
    };
    if body.pop().is_none() {
        return Err(eval_run::not_found(&id).into());
    }
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `POST /evaluation_runs/{evaluation_run_id}/finish`: ends a run with its aggregated scores.
pub async fn finish(
    State(state): State<AppState>,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req = FinishRun::from_owned(body)?;
    // The run and its children are read: named here, the writer reads them for every finish
    // of its batch at once.
    let run = (path.project_id.clone(), path.param("evaluation_run_id").to_string());
    let hint = ReadHint { calls: vec![run.clone()], children_of: vec![run] };
    store::write_hinted(state.store.as_ref(), hint, move |w| {
        runs::finish(w, &path.project_id, path.param("evaluation_run_id"), req, Some(who.user_id()))
    })
    .await?;
    Ok(axum::Json(json!({ "success": true })).into_response())
}

/// `DELETE /evaluation_runs`: soft-deletes runs with their subtrees.
pub async fn delete(
    State(state): State<AppState>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    let mut ids = q.list(&["evaluation_run_ids"])?;
    if let Some(body) = &body {
        ids.extend(ids_from_body(body, "evaluation_run_ids")?);
    }
    if ids.is_empty() && !q.has("evaluation_run_ids") && body.is_none() {
        return Err(Error::invalid(Issue {
            kind: "missing",
            loc: vec![json!("query"), json!("evaluation_run_ids")],
            msg: "Field required".into(),
            input: Value::Null,
            ctx: None,
        })
        .into());
    }
    check_ids("evaluation_run_ids", &ids)?;
    let n = store::write_async(state.store.as_ref(), move |w| {
        deletes::of_kind(w, &path.project_id, Kind::EvaluationRun, &ids)
    })
    .await?;
    Ok(axum::Json(json!({ "num_deleted": n })).into_response())
}
