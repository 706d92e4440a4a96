//! Calls: starts, ends, upsert batches, completed calls, reads, queries, renames and deletes.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Extension;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::body::OutputOnly;
use crate::domain::call_query::{CallsQueryReq, call_json};
use crate::domain::error::{Error, Result};
use crate::domain::query::Expr;
use crate::domain::reads;
use crate::domain::store::{self, Store};
use crate::domain::trace::{CallComplete, CallEnd, CallStart, UpsertItem, from_body};
use crate::domain::validate::check_ids;
use crate::domain::writes::{calls, deletes};
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::{BodyBytes, InProject, JsonBody, ProjectBody, ProjectPath, TypedBody};
use crate::http::{AppState, blocking};

#[derive(Deserialize)]
pub(crate) struct StartBody {
    start: CallStart,
}

#[derive(Deserialize)]
pub(crate) struct EndBody {
    end: CallEnd,
}

#[derive(Deserialize)]
pub(crate) struct UpsertBody {
    batch: Vec<UpsertItem>,
}

/// `POST /call/start` (and `/v2/{entity}/{project}/call/start`).
pub(crate) async fn call_start(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: StartBody = from_body(body)?;
    who.check_project(&req.start.project_id)?;
    // The call is made and encoded here: the one writer thread only inserts it when new.
    let new = calls::prepare_start(state.store.as_ref(), &req.start, Some(who.user_id()))?;
    let (id, trace_id) = store::write_async(state.store.as_ref(), move |w| {
        calls::start_ready(w, &req.start, &new, Some(who.user_id()))
    })
    .await?;
    Ok(json_response(json!({ "id": id, "trace_id": trace_id })))
}

/// `POST /call/end` (and `/v2/{entity}/{project}/call/end`).
pub(crate) async fn call_end(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: EndBody = from_body(body)?;
    who.check_project(&req.end.project_id)?;
    store::write_async(state.store.as_ref(), move |w| calls::end(w, &req.end, Some(who.user_id()))).await?;
    Ok(json_response(json!({})))
}

/// `POST /v2/{entity}/{project}/call/start`: the path names the project too.
pub(crate) async fn call_start_v2(
    state: State<AppState>,
    path: ProjectPath,
    who: Extension<Principal>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    check_same_project(&path, &who, &body.0, "start")?;
    call_start(state, who, body).await
}

/// `POST /v2/{entity}/{project}/call/end`.
pub(crate) async fn call_end_v2(
    state: State<AppState>,
    path: ProjectPath,
    who: Extension<Principal>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    check_same_project(&path, &who, &body.0, "end")?;
    call_end(state, who, body).await
}

/// A body's project must be the path's; one the key may not act on is a 403 first, so a
/// request learns nothing about a project it has no access to.
fn check_same_project(
    path: &ProjectPath,
    who: &Principal,
    body: &Value,
    field: &str,
) -> Result<(), ApiError> {
    let in_body = body.get(field).and_then(|v| v.get("project_id")).and_then(Value::as_str);
    match in_body {
        Some(p) if p != path.project_id => {
            who.check_project(p)?;
            Err(Error::BadRequest(format!("project_id {p} does not match the path's {}", path.project_id))
                .into())
        }
        _ => Ok(()),
    }
}

/// `calls/complete` requests in progress in this process, counted from before their body is
/// read ([`CompleteSlot`]).
static COMPLETES: AtomicUsize = AtomicUsize::new(0);

/// One `calls/complete` request counted in [`COMPLETES`] while it lives: extracted before the
/// body, so that a request still receiving or parsing its body counts.
pub(crate) struct CompleteSlot;

impl<S: Send + Sync> FromRequestParts<S> for CompleteSlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        COMPLETES.fetch_add(1, Ordering::AcqRel);
        Ok(CompleteSlot)
    }
}

impl Drop for CompleteSlot {
    fn drop(&mut self) {
        COMPLETES.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `POST /v2/{entity}/{project}/calls/complete`: ended calls, in one transaction.
pub(crate) async fn calls_complete(
    State(state): State<AppState>,
    _slot: CompleteSlot,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    // May the request write this call: the key's project, the path's.
    let check = |c: &CallComplete| -> Result<(), ApiError> {
        who.check_project(&c.project_id)?;
        if c.project_id != path.project_id {
            return Err(
                Error::BadRequest(format!("project_id {} does not match the path", c.project_id)).into()
            );
        }
        Ok(())
    };
    // The records are made here, fed to one job that inserts them meanwhile, and handed back
    // to be freed here: the one writer thread only inserts them. Alone, the batch is fed to
    // its job while its body is still being read (see `complete_streamed`).
    if COMPLETES.load(Ordering::Acquire) == 1 {
        calls::complete_streamed(state.store.as_ref(), &bytes, who.user_id(), check).await?;
        return Ok(json_response(json!({})));
    }
    calls::complete_read_whole(state.store.as_ref(), &bytes, who.user_id(), check).await?;
    Ok(json_response(json!({})))
}

/// `POST /call/upsert_batch`: starts and ends, in order, in one transaction.
pub(crate) async fn call_upsert_batch(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    TypedBody(req): TypedBody<UpsertBody>,
) -> Result<Response, ApiError> {
    for item in &req.batch {
        match item {
            UpsertItem::Start(s) => who.check_project(&s.start.project_id)?,
            UpsertItem::End(e) => who.check_project(&e.end.project_id)?,
        }
    }
    // The starts' calls are made (their JSON fields moved, not copied) and encoded here, and
    // handed back: the one writer thread only inserts them.
    let mut ready = calls::prepare_upsert(state.store.as_ref(), req.batch, Some(who.user_id()));
    let (res, ready) = store::write_async(state.store.as_ref(), move |w| {
        Ok((calls::upsert_prepared(w, &mut ready, Some(who.user_id()))?, ready))
    })
    .await?;
    drop(ready);
    Ok(json_response(json!({ "res": res })))
}

#[derive(Deserialize)]
#[allow(dead_code)] // `OutputOnly` fields are accepted, never read
pub(crate) struct CallRead {
    project_id: String,
    id: String,
    /// The call's usage priced in `summary.weave.costs`, as in `calls/query`.
    include_costs: Option<bool>,
    /// Output only, as in `calls/query`.
    include_storage_size: Option<OutputOnly>,
    include_total_storage_size: Option<OutputOnly>,
}

/// `POST /call/read`.
pub(crate) async fn call_read(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<CallRead>,
) -> Result<Response, ApiError> {
    let call = blocking(&state, move |s| {
        let Some(call) = s.call(&req.project_id, &req.id)? else { return Ok(None) };
        let mut row = call_json(&call);
        if req.include_costs == Some(true) {
            reads::add_costs(&mut row, &reads::project_prices(s, &req.project_id)?, call.started_at);
        }
        Ok(Some(row))
    })
    .await?;
    Ok(json_response(json!({ "call": call })))
}

type QueryBody = CallsQueryReq;

/// The calls a query body matches, as `CallSchema` JSON, to `emit`.
fn each_call(s: &dyn Store, body: &QueryBody, emit: &mut dyn FnMut(Value) -> bool) -> Result<()> {
    let expr = Expr::from_query(body.query.as_ref())?;
    reads::calls(s, body, expr.as_ref(), emit)
}

/// `POST /calls/stream_query`: matching calls as JSONL.
pub(crate) async fn calls_stream_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<QueryBody>,
) -> Result<Response, ApiError> {
    req.query()?;
    Expr::from_query(req.query.as_ref())?;
    crate::http::stream::jsonl(&state, &who, move |s, emit| {
        each_call(s, &req, &mut |row| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &row);
            })
        })
    })
    .await
}

/// `POST /calls/query`: matching calls as `{"calls": [...]}`, streamed as they are read.
pub(crate) async fn calls_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<QueryBody>,
) -> Result<Response, ApiError> {
    req.query()?;
    Expr::from_query(req.query.as_ref())?;
    crate::http::stream::json_list(&state, &who, "calls", move |s, emit| {
        each_call(s, &req, &mut |row| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &row);
            })
        })
    })
    .await
}

/// `POST /calls/query_stats`: how many calls match.
pub(crate) async fn calls_query_stats(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<QueryBody>,
) -> Result<Response, ApiError> {
    let count = blocking(&state, move |s| {
        let mut n = 0u64;
        each_call(s, &req, &mut |_| {
            n += 1;
            true
        })?;
        Ok(n)
    })
    .await?;
    Ok(json_response(json!({ "count": count, "total_storage_size_bytes": null })))
}

#[derive(Deserialize)]
#[allow(dead_code)] // `OutputOnly` fields are accepted, never read
pub(crate) struct CallsDelete {
    project_id: String,
    call_ids: Vec<String>,
    /// Output only: the caller is the key's user.
    wb_user_id: Option<OutputOnly>,
}

/// `POST /calls/delete`: soft-deletes calls with their descendants.
pub(crate) async fn calls_delete(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<CallsDelete>,
) -> Result<Response, ApiError> {
    check_ids("call_ids", &req.call_ids)?;
    let n =
        store::write_async(state.store.as_ref(), move |w| deletes::calls(w, &req.project_id, &req.call_ids))
            .await?;
    Ok(json_response(json!({ "num_deleted": n })))
}

#[derive(Deserialize)]
#[allow(dead_code)] // `OutputOnly` fields are accepted, never read
pub(crate) struct CallUpdate {
    project_id: String,
    call_id: String,
    display_name: Option<String>,
    /// Output only: the caller is the key's user.
    wb_user_id: Option<OutputOnly>,
}

/// `POST /call/update`: renames a call.
pub(crate) async fn call_update(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<CallUpdate>,
) -> Result<Response, ApiError> {
    store::write_async(state.store.as_ref(), move |w| {
        calls::rename(w, &req.project_id, &req.call_id, req.display_name.clone())
    })
    .await?;
    Ok(json_response(json!({})))
}

in_project! {
    CallRead => project_id;
    CallsQueryReq => project_id;
    CallsDelete => project_id;
    CallUpdate => project_id;
}
