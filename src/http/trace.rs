//! Handlers of the v1 trace API that the official SDK calls: calls, objects, tables, files,
//! refs and feedback. Project ids travel in the bodies; access is checked per request.

use axum::Extension;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use super::extract::{InProject, JsonBody, ProjectBody, ProjectPath, TypedBody};
use super::{AppState, blocking};
use crate::domain::error::{Error, Result};
use crate::domain::feedback::FeedbackCreate;
use crate::domain::object::{ObjSchema, ObjectQuery, Version};
use crate::domain::page::Page;
use crate::domain::query::Expr;
use crate::domain::refs::Ref;
use crate::domain::resolve;
use crate::domain::store::{self, Store};
use crate::domain::trace::{
    CallComplete, CallEnd, CallStart, CallsQueryReq, UpsertItem, call_json, from_body,
};
use crate::domain::validate::MAX_IDS;
use crate::domain::writes::{self, calls, deletes, objects};

/// The Weave trace API version whose wire format weft speaks.
pub const TRACE_API_VERSION: &str = "0.54.0";

fn json_response(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn page(limit: Option<i64>, offset: Option<i64>) -> Page {
    Page { limit: limit.map(|l| l.max(0) as u64), offset: offset.unwrap_or(0).max(0) as u64 }
}

/// `GET /server_info`.
pub(crate) async fn server_info() -> Response {
    json_response(json!({
        "min_required_weave_python_version": "0.52.0",
        "trace_server_version": TRACE_API_VERSION,
        "server": "weft",
        "server_version": env!("CARGO_PKG_VERSION"),
    }))
}

#[derive(Deserialize)]
pub(crate) struct StartBody {
    start: CallStart,
}

#[derive(Deserialize)]
pub(crate) struct EndBody {
    end: CallEnd,
}

#[derive(Deserialize)]
pub(crate) struct CompleteBody {
    batch: Vec<CallComplete>,
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
    let (id, trace_id) =
        store::write_async(state.store.as_ref(), move |w| calls::start(w, &req.start, Some(who.user_id())))
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

/// `POST /v2/{entity}/{project}/calls/complete`: ended calls, in one transaction.
pub(crate) async fn calls_complete(
    State(state): State<AppState>,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    TypedBody(req): TypedBody<CompleteBody>,
) -> Result<Response, ApiError> {
    for c in &req.batch {
        who.check_project(&c.start.project_id)?;
        if c.start.project_id != path.project_id {
            return Err(Error::BadRequest(format!(
                "project_id {} does not match the path",
                c.start.project_id
            ))
            .into());
        }
    }
    store::write_async(state.store.as_ref(), move |w| {
        for c in &req.batch {
            calls::complete(w, c, Some(who.user_id()))?;
        }
        Ok(())
    })
    .await?;
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
    let res = store::write_async(state.store.as_ref(), move |w| {
        calls::upsert_batch(w, &req.batch, Some(who.user_id()))
    })
    .await?;
    Ok(json_response(json!({ "res": res })))
}

#[derive(Deserialize)]
pub(crate) struct CallRead {
    project_id: String,
    id: String,
}

/// `POST /call/read`.
pub(crate) async fn call_read(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<CallRead>,
) -> Result<Response, ApiError> {
    let call = blocking(&state, move |s| s.call(&req.project_id, &req.id)).await?;
    Ok(json_response(json!({ "call": call.as_ref().map(call_json) })))
}

#[derive(Deserialize)]
pub(crate) struct QueryBody {
    #[serde(flatten)]
    req: CallsQueryReq,
    query: Option<Value>,
}

/// Streams the calls a query matches to `emit`, applying a `query` expression in order.
fn each_call(s: &dyn Store, body: &QueryBody, emit: &mut dyn FnMut(Value) -> bool) -> Result<()> {
    let mut q = body.req.query()?;
    let expr = Expr::from_query(body.query.as_ref())?;
    let Some(expr) = expr else {
        return s.calls(&body.req.project_id, &q, &mut |c| emit(call_json(&c)));
    };
    // The expression is evaluated here, so the window applies after it.
    let window = q.page;
    q.page = Page::default();
    let (mut skipped, mut sent, mut failure) = (0u64, 0u64, None);
    s.calls(&body.req.project_id, &q, &mut |c| {
        let row = call_json(&c);
        match expr.matches(&row) {
            Err(e) => {
                failure = Some(e);
                false
            }
            Ok(false) => true,
            Ok(true) if skipped < window.offset => {
                skipped += 1;
                true
            }
            Ok(true) => {
                if window.limit.is_some_and(|l| sent >= l) {
                    return false;
                }
                sent += 1;
                emit(row) && window.limit.is_none_or(|l| sent < l)
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// `POST /calls/stream_query`: matching calls as JSONL.
pub(crate) async fn calls_stream_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<QueryBody>,
) -> Result<Response, ApiError> {
    req.req.query()?;
    Expr::from_query(req.query.as_ref())?;
    super::stream::jsonl(&state, &who, move |s, emit| {
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
    req.req.query()?;
    Expr::from_query(req.query.as_ref())?;
    super::stream::json_list(&state, &who, "calls", move |s, emit| {
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
pub(crate) struct CallsDelete {
    project_id: String,
    call_ids: Vec<String>,
}

/// `POST /calls/delete`: soft-deletes calls with their descendants.
pub(crate) async fn calls_delete(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<CallsDelete>,
) -> Result<Response, ApiError> {
    if req.call_ids.len() > MAX_IDS {
        return Err(Error::TooLarge(format!("Too many call_ids: at most {MAX_IDS} allowed")).into());
    }
    let n =
        store::write_async(state.store.as_ref(), move |w| deletes::calls(w, &req.project_id, &req.call_ids))
            .await?;
    Ok(json_response(json!({ "num_deleted": n })))
}

#[derive(Deserialize)]
pub(crate) struct CallUpdate {
    project_id: String,
    call_id: String,
    display_name: Option<String>,
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

#[derive(Deserialize)]
pub(crate) struct ObjInsert {
    project_id: String,
    object_id: String,
    val: Value,
    builtin_object_class: Option<String>,
    expected_digest: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ObjCreate {
    obj: ObjInsert,
}

/// `POST /obj/create`: stores an object version; answers its digest.
pub(crate) async fn obj_create(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<ObjCreate>,
) -> Result<Response, ApiError> {
    let o = req.obj;
    let stored = store::write_async(state.store.as_ref(), move |w| {
        objects::create(
            w,
            &o.project_id,
            &o.object_id,
            o.val.clone(),
            o.builtin_object_class.as_deref(),
            o.expected_digest.as_deref(),
            Some(who.user_id()),
        )
    })
    .await?;
    Ok(json_response(json!({
        "digest": stored.digest,
        "object_id": stored.object_id,
        "version_index": stored.version_index,
    })))
}

#[derive(Deserialize)]
pub(crate) struct ObjRead {
    project_id: String,
    object_id: String,
    digest: String,
}

/// `POST /obj/read`: one object version (`digest` may be `latest` or `v<N>`).
pub(crate) async fn obj_read(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<ObjRead>,
) -> Result<Response, ApiError> {
    let found = blocking(&state, move |s| {
        s.object(&req.project_id, &req.object_id, &Version::parse(&req.digest))?
            .ok_or_else(|| Error::NotFound(format!("Obj {}:{} not found", req.object_id, req.digest)))
    })
    .await?;
    let (o, latest) = found;
    Ok(json_response(json!({ "obj": ObjSchema::of(o, latest) })))
}

#[derive(Deserialize, Default)]
pub(crate) struct ObjFilter {
    object_ids: Option<Vec<String>>,
    base_object_classes: Option<Vec<String>>,
    is_op: Option<bool>,
    latest_only: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct ObjQuery {
    project_id: String,
    filter: Option<ObjFilter>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `POST /objs/query`: object versions by id, class, op-ness, latest.
pub(crate) async fn objs_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<ObjQuery>,
) -> Result<Response, ApiError> {
    let f = req.filter.unwrap_or_default();
    let q = ObjectQuery {
        object_ids: f.object_ids.unwrap_or_default(),
        base_object_classes: f.base_object_classes.unwrap_or_default(),
        is_op: f.is_op,
        latest_only: f.latest_only.unwrap_or(false),
        page: page(req.limit, req.offset),
    };
    let project = req.project_id;
    super::stream::json_list(&state, &who, "objs", move |s, emit| {
        s.objects(&project, &q, &mut |o, latest| {
            let obj = ObjSchema::of(o, latest);
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &obj);
            })
        })
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct ObjDelete {
    project_id: String,
    object_id: String,
    digests: Option<Vec<String>>,
}

/// `POST /obj/delete`: soft-deletes versions of an object.
pub(crate) async fn obj_delete(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<ObjDelete>,
) -> Result<Response, ApiError> {
    let n = store::write_async(state.store.as_ref(), move |w| {
        w.delete_objects(&req.project_id, &req.object_id, req.digests.as_deref(), crate::domain::call::now())
    })
    .await?;
    if n == 0 {
        return Err(Error::NotFound("Object not found".into()).into());
    }
    Ok(json_response(json!({ "num_deleted": n })))
}

#[derive(Deserialize)]
pub(crate) struct TableInsert {
    project_id: String,
    rows: Vec<Value>,
}

#[derive(Deserialize)]
pub(crate) struct TableCreate {
    table: TableInsert,
}

/// `POST /table/create`: stores rows; answers the table digest and row digests.
pub(crate) async fn table_create(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<TableCreate>,
) -> Result<Response, ApiError> {
    let t = req.table;
    let (digest, row_digests) =
        store::write_async(state.store.as_ref(), move |w| objects::create_table(w, &t.project_id, &t.rows))
            .await?;
    Ok(json_response(json!({ "digest": digest, "row_digests": row_digests })))
}

#[derive(Deserialize, Default)]
pub(crate) struct RowFilter {
    row_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(crate) struct TableQuery {
    project_id: String,
    digest: String,
    filter: Option<RowFilter>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `POST /table/query`: a table's rows, in order.
pub(crate) async fn table_query(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<TableQuery>,
) -> Result<Response, ApiError> {
    let only = req.filter.unwrap_or_default().row_digests;
    let window = page(req.limit, req.offset);
    let rows = blocking(&state, move |s| {
        s.table_rows(&req.project_id, &req.digest, only.as_deref(), window)?
            .ok_or_else(|| Error::NotFound(format!("Table {} not found", req.digest)))
    })
    .await?;
    Ok(json_response(json!({ "rows": rows })))
}

#[derive(Deserialize)]
pub(crate) struct TableStats {
    project_id: String,
    digest: String,
}

/// `POST /table/query_stats`: a table's row count.
pub(crate) async fn table_query_stats(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<TableStats>,
) -> Result<Response, ApiError> {
    let count = blocking(&state, move |s| {
        s.table_len(&req.project_id, &req.digest)?
            .ok_or_else(|| Error::NotFound(format!("Table {} not found", req.digest)))
    })
    .await?;
    Ok(json_response(json!({ "count": count })))
}

#[derive(Deserialize)]
pub(crate) struct RefsRead {
    refs: Vec<String>,
}

/// `POST /refs/read_batch`: the values refs point at, following their paths. Each distinct
/// value is serialized once; the answer is sent from those pieces, so that a batch naming one
/// large value many times costs its size once in memory, not once per mention.
pub(crate) async fn refs_read_batch(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: RefsRead = from_body(body)?;
    if req.refs.len() > MAX_IDS {
        return Err(Error::TooLarge(format!("Too many refs: at most {MAX_IDS} allowed")).into());
    }
    let refs = req.refs.iter().map(|r| Ref::parse(r)).collect::<Result<Vec<_>>>()?;
    for r in &refs {
        who.check_project(&r.project_id)?;
    }
    let vals = blocking(&state, move |s| resolve::read_batch(s, &refs)).await?;
    let mut pieces = Vec::with_capacity(2 * vals.len() + 1);
    pieces.push(bytes::Bytes::from_static(b"{\"vals\":["));
    for (i, v) in vals.into_iter().enumerate() {
        if i > 0 {
            pieces.push(bytes::Bytes::from_static(b","));
        }
        pieces.push(v);
    }
    pieces.push(bytes::Bytes::from_static(b"]}"));
    let body = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut r = axum::body::Body::from_stream(body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `POST /file/create` (multipart: `project_id`, `file`, optional `expected_digest`).
pub(crate) async fn file_create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let (mut project_id, mut content, mut expected) = (None, None, None);
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::from(Error::BadRequest(format!("Malformed multipart body: {e}")))
    };
    let read_form = async {
        while let Some(field) = form.next_field().await.map_err(bad)? {
            match field.name() {
                Some("project_id") => project_id = Some(field.text().await.map_err(bad)?),
                Some("expected_digest") => expected = Some(field.text().await.map_err(bad)?),
                Some("file") => content = Some(field.bytes().await.map_err(bad)?),
                _ => {}
            }
        }
        Ok::<_, ApiError>(())
    };
    tokio::time::timeout(state.deadlines.body, read_form)
        .await
        .map_err(|_| super::extract::body_timeout())??;
    let missing = |name: &str| Error::BadRequest(format!("Missing form field {name}"));
    let project_id = project_id.ok_or_else(|| missing("project_id"))?;
    let content = content.ok_or_else(|| missing("file"))?;
    who.check_project(&project_id)?;
    let digest =
        store::write_async(state.store.as_ref(), move |w| objects::create_file(w, &project_id, &content))
            .await?;
    if let Some(e) = expected.filter(|e| !e.is_empty() && *e != digest) {
        return Err(Error::Conflict(format!("Digest mismatch: expected {e}, computed {digest}")).into());
    }
    Ok(json_response(json!({ "digest": digest })))
}

#[derive(Deserialize)]
pub(crate) struct FileContent {
    project_id: String,
    digest: String,
}

/// `POST /file/content`: a file's bytes.
pub(crate) async fn file_content(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<FileContent>,
) -> Result<Response, ApiError> {
    let bytes = blocking(&state, move |s| {
        s.file(&req.project_id, &req.digest)?
            .ok_or_else(|| Error::NotFound(format!("File {} not found", req.digest)))
    })
    .await?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(r)
}

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
    query: Option<Value>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `POST /feedback/query`: feedback rows matching a query expression.
pub(crate) async fn feedback_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<FeedbackQuery>,
) -> Result<Response, ApiError> {
    let expr = Expr::from_query(req.query.as_ref())?;
    let window = page(req.limit, req.offset);
    super::stream::json_list(&state, &who, "result", move |s, emit| {
        let (mut sent, mut skipped, mut failure) = (0u64, 0u64, None);
        s.feedback(&req.project_id, &mut |f| {
            if window.limit.is_some_and(|l| sent >= l) {
                return false;
            }
            let row = f.to_json();
            match expr.as_ref().map_or(Ok(true), |e| e.matches(&row)) {
                Err(e) => {
                    failure = Some(e);
                    false
                }
                Ok(false) => true,
                Ok(true) if skipped < window.offset => {
                    skipped += 1;
                    true
                }
                Ok(true) => {
                    sent += 1;
                    emit(&|buf| {
                        let _ = serde_json::to_writer(&mut *buf, &row);
                    }) && window.limit.is_none_or(|l| sent < l)
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Value,
}

/// `POST /graphql`: the few W&B API operations the SDK sends during `weave.init`.
pub(crate) async fn graphql(
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: GraphqlBody = from_body(body)?;
    let var = |name: &str| req.variables.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let data = if req.query.contains("viewer") {
        let entity = if who.key.admin { None } else { who.key.entities.first().cloned() };
        json!({ "viewer": {
            "id": who.user_id(),
            "username": who.user_id(),
            "entity": entity,
            "defaultEntity": entity.as_ref().map(|e| json!({ "name": e })),
            "teams": { "edges": [] },
        }})
    } else if req.query.contains("upsertModel") {
        who.check_entity(&var("entity"))?;
        json!({ "upsertModel": { "model": { "name": var("name"), "description": req.variables.get("description") } } })
    } else if req.query.contains("project(") {
        who.check_entity(&var("entityName"))?;
        json!({ "project": { "name": var("name") } })
    } else {
        return Ok(json_response(json!({
            "data": null,
            "errors": [{ "message": "weft answers only the viewer, project and upsertModel operations" }],
        })));
    };
    Ok(json_response(json!({ "data": data })))
}

/// Implements [`InProject`] for request bodies whose project id is at the given field.
macro_rules! in_project {
    ($($body:ty => $($field:ident).+;)*) => {
        $(impl InProject for $body {
            fn project_id(&self) -> &str {
                &self.$($field).+
            }
        })*
    };
}

in_project! {
    CallRead => project_id;
    QueryBody => req.project_id;
    CallsDelete => project_id;
    CallUpdate => project_id;
    ObjCreate => obj.project_id;
    ObjRead => project_id;
    ObjQuery => project_id;
    ObjDelete => project_id;
    TableCreate => table.project_id;
    TableQuery => project_id;
    TableStats => project_id;
    FileContent => project_id;
    FeedbackCreate => project_id;
    FeedbackQuery => project_id;
}
