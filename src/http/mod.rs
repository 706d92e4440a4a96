//! The HTTP layer: routing, authentication, error mapping and streaming over the domain.

pub mod auth;
pub mod children;
pub mod error;
pub mod eval_results;
pub mod extract;
pub mod limits;
pub mod origin;
pub mod runs;
pub mod stream;
pub mod ui;
pub mod v1;
pub mod v2_objects;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::domain::error::{Error, Issue, Result};
use crate::domain::store::Store;
use error::ApiError;

/// What every handler shares: one allocation, so that the clone each layer and handler takes
/// costs one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// Requests that may be in progress at once.
    pub permits: Arc<tokio::sync::Semaphore>,
    /// Recent failed authentications, per client address.
    pub auth_failures: Arc<auth::FailureLog>,
    /// How long to wait on clients.
    pub deadlines: Deadlines,
    /// Streams open per API key.
    pub streams: Arc<stream::KeyStreams>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
    /// Requests in progress per client address.
    pub per_address: Arc<limits::AddressSlots>,
    /// The default entity of admin keys (what `viewer.defaultEntity` names for them).
    pub default_entity: Arc<str>,
}

/// The default entity of admin keys unless configured otherwise.
pub const DEFAULT_ENTITY: &str = "admin";

/// Requests served at once by default; more are refused with 429.
pub const MAX_REQUESTS: usize = 512;

impl AppState {
    /// State over `store`, serving at most `max_requests` requests at once.
    pub fn new(store: Arc<dyn Store>, max_requests: usize) -> Self {
        AppState(Arc::new(Shared {
            store,
            permits: Arc::new(tokio::sync::Semaphore::new(max_requests)),
            auth_failures: Arc::new(auth::FailureLog::default()),
            deadlines: Deadlines::default(),
            streams: Arc::new(stream::KeyStreams::new(stream::MAX_STREAMS_PER_KEY)),
            trusted_proxies: Arc::from([]),
            per_address: Arc::new(limits::AddressSlots::new(limits::per_address_default(max_requests))),
            default_entity: Arc::from(DEFAULT_ENTITY),
        }))
    }

    /// The same state with `change` applied to its fields.
    fn changed(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone());
        change(&mut shared);
        AppState(Arc::new(shared))
    }

    /// The same state, taking the client's address from `X-Forwarded-For` on requests from
    /// these proxies.
    pub fn with_trusted_proxies(self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.changed(|s| s.trusted_proxies = proxies.into())
    }

    /// The same state, each client address having at most `cap` requests in progress.
    pub fn with_requests_per_address(self, cap: usize) -> Self {
        self.changed(|s| s.per_address = Arc::new(limits::AddressSlots::new(cap)))
    }

    /// The same state, each API key having at most `cap` streams open at once.
    pub fn with_streams_per_key(self, cap: usize) -> Self {
        self.changed(|s| s.streams = Arc::new(stream::KeyStreams::new(cap)))
    }

    /// The same state, admin keys defaulting to `entity`.
    pub fn with_default_entity(self, entity: String) -> Self {
        self.changed(|s| s.default_entity = entity.into())
    }

    /// The same state, waiting on clients as `deadlines` says.
    pub fn with_deadlines(self, deadlines: Deadlines) -> Self {
        self.changed(|s| s.deadlines = deadlines)
    }
}

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Builds the application: every route, auth on `/v2`, FastAPI-shaped 404/405, request log.
pub fn router(state: AppState) -> Router {
    let auth = || middleware::from_fn_with_state(state.clone(), auth::require_key);
    let v2 = Router::new()
        .route(&v2_path("/evaluation_runs"), get(runs::list).post(runs::create).delete(runs::delete))
        .route(&v2_path("/evaluation_runs/{evaluation_run_id}"), get(runs::read))
        .route(&v2_path("/evaluation_runs/{evaluation_run_id}/finish"), post(runs::finish))
        .route(
            &v2_path("/predictions"),
            get(children::list_predictions)
                .post(children::create_prediction)
                .delete(children::delete_predictions),
        )
        .route(&v2_path("/predictions/{prediction_id}"), get(children::read_prediction))
        .route(&v2_path("/predictions/{prediction_id}/finish"), post(children::finish_prediction))
        .route(
            &v2_path("/scores"),
            get(children::list_scores).post(children::create_score).delete(children::delete_scores),
        )
        .route(&v2_path("/scores/{score_id}"), get(children::read_score))
        .route(&v2_path("/call/start"), post(v1::calls::call_start_v2))
        .route(&v2_path("/call/end"), post(v1::calls::call_end_v2))
        .route(&v2_path("/calls/complete"), post(v1::calls::calls_complete))
        .route(&v2_path("/eval_results/query"), post(eval_results::query))
        .merge(v2_objects::routes(V2_PREFIX))
        .method_not_allowed_fallback(|| async { ApiError::NoMethod })
        .route_layer(auth());
    let v1 = Router::new()
        .route("/call/start", post(v1::calls::call_start))
        .route("/call/end", post(v1::calls::call_end))
        .route("/call/upsert_batch", post(v1::calls::call_upsert_batch))
        .route("/call/read", post(v1::calls::call_read))
        .route("/call/update", post(v1::calls::call_update))
        .route("/calls/query", post(v1::calls::calls_query))
        .route("/calls/stream_query", post(v1::calls::calls_stream_query))
        .route("/calls/query_stats", post(v1::calls::calls_query_stats))
        .route("/calls/delete", post(v1::calls::calls_delete))
        .route("/obj/create", post(v1::objects::obj_create))
        .route("/obj/read", post(v1::objects::obj_read))
        .route("/objs/query", post(v1::objects::objs_query))
        .route("/obj/delete", post(v1::objects::obj_delete))
        .route("/objs/{object_id}/versions/{digest}/tags", put(v1::objects::tags_add))
        .route("/objs/{object_id}/versions/{digest}/tags/remove", post(v1::objects::tags_remove))
        .route("/objs/{object_id}/aliases", put(v1::objects::aliases_set))
        .route("/objs/{object_id}/aliases/remove", post(v1::objects::aliases_remove))
        .route("/tags", get(v1::objects::tags_list))
        .route("/aliases", get(v1::objects::aliases_list))
        .route("/table/create", post(v1::tables::table_create))
        .route("/table/create_from_digests", post(v1::tables::table_create_from_digests))
        .route("/table/update", post(v1::tables::table_update))
        .route("/table/query", post(v1::tables::table_query))
        .route("/table/query_stats", post(v1::tables::table_query_stats))
        .route("/refs/read_batch", post(v1::refs::refs_read_batch))
        .route("/file/create", post(v1::files::file_create))
        .route("/file/content", post(v1::files::file_content))
        .route("/feedback/create", post(v1::feedback::feedback_create))
        .route("/feedback/batch/create", post(v1::feedback::feedback_batch_create))
        .route("/feedback/query", post(v1::feedback::feedback_query))
        .route("/feedback/purge", post(v1::feedback::feedback_purge))
        .route("/feedback/replace", post(v1::feedback::feedback_replace))
        .route("/cost/create", post(v1::costs::cost_create))
        .route("/cost/query", post(v1::costs::cost_query))
        .route("/cost/purge", post(v1::costs::cost_purge))
        .route("/threads/stream_query", post(v1::threads::threads_stream_query))
        .route("/graphql", post(v1::graphql::graphql))
        .route_layer(auth());
    let routes = Router::new()
        .route("/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/openapi.json", get(openapi))
        .route("/server_info", get(v1::server_info))
        .merge(v1)
        .merge(v2)
        .merge(ui::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(|| async { ApiError::NoMethod })
        .with_state(state.clone());
    // The layers every request meets wrap the routes once: laid on the router, they would
    // wrap each route apart, and a request would copy every layer's boxed service on its way.
    use tower::Layer;
    let layered = middleware::from_fn(log_request).layer(
        middleware::from_fn_with_state(state, limits::guard)
            .layer(DefaultBodyLimit::max(extract::MAX_BODY).layer(routes)),
    );
    Router::new().fallback_service(layered)
}

/// Where the v2 routes are: under a project.
const V2_PREFIX: &str = "/v2/{entity}/{project}";

/// The path of a v2 route, `path` under [`V2_PREFIX`].
fn v2_path(path: &str) -> String {
    format!("{V2_PREFIX}{path}")
}

/// Unknown paths: a path with a trailing slash is redirected (307) to the path without it,
/// as FastAPI does, when that is a path on this server; anything else is FastAPI's 404.
async fn no_route(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if path.len() > 1 && path.ends_with('/') && is_local_path(trimmed) {
        let target = match uri.query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(location) = HeaderValue::from_str(&target) {
            return (axum::http::StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)])
                .into_response();
        }
    }
    ApiError::NoRoute.into_response()
}

/// Whether `path` can only be read as a path on this origin when sent as a `Location`: one `/`
/// then a character that is neither `/` nor `\` (which browsers read as the start of another
/// host, `//evil.example` or `/\evil.example`), nor a control character or space, both as
/// sent and with its percent escapes decoded (for any hop that decodes them).
pub(crate) fn is_local_path(path: &str) -> bool {
    let local = |p: &[u8]| {
        p.first() == Some(&b'/')
            && p.get(1).is_some_and(|&c| c != b'/' && c != b'\\' && c > b' ' && c != 0x7f)
    };
    local(path.as_bytes()) && local(&percent_decoded(path.as_bytes()))
}

/// `s` with its `%XX` escapes decoded; other bytes (and malformed escapes) kept as they are.
fn percent_decoded(s: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) =
                (s.get(i + 1).and_then(|&c| hex(c)), s.get(i + 2).and_then(|&c| hex(c)))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Logs one line per request: method, path, status and time to the response head.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1e3),
        "request"
    );
    response
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T> + Send + 'static,
{
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| Error::Storage(format!("blocking task failed: {e}")))?
        .map_err(ApiError::from)
}

/// Ids sent in a JSON body: an array of strings, or an object holding one under `field`.
pub fn ids_from_body(body: &Value, field: &str) -> Result<Vec<String>> {
    let (items, loc) = match body {
        Value::Array(items) => (items, vec![json!("body")]),
        Value::Object(m) => match m.get(field) {
            Some(Value::Array(items)) => (items, vec![json!("body"), json!(field)]),
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(other) => return Err(list_type(vec![json!("body"), json!(field)], other)),
        },
        other => return Err(list_type(vec![json!("body")], other)),
    };
    let mut issues = Vec::new();
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => ids.push(s.clone()),
            other => {
                let mut at = loc.clone();
                at.push(json!(i));
                issues.push(Issue {
                    kind: "string_type",
                    loc: at,
                    msg: "Input should be a valid string".into(),
                    input: other.clone(),
                    ctx: None,
                });
            }
        }
    }
    if issues.is_empty() { Ok(ids) } else { Err(Error::Validation(issues)) }
}

fn list_type(loc: Vec<Value>, input: &Value) -> Error {
    Error::invalid(Issue {
        kind: "list_type",
        loc,
        msg: "Input should be a valid list".into(),
        input: input.clone(),
        ctx: None,
    })
}

/// How long in-flight requests may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the server waits on a client by default, in seconds.
pub const CLIENT_TIMEOUT_SECS: u64 = 60;

/// How long the server waits on a client before giving up on it; in each request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// To send a request head, or the next request on an idle keep-alive connection
    /// (then the connection is closed).
    pub head: std::time::Duration,
    /// To send a request body (then 408).
    pub body: std::time::Duration,
    /// To take the next chunk of a streamed response (then the response is cut off, so the
    /// client cannot mistake it for a complete one).
    pub stall: std::time::Duration,
}

impl Deadlines {
    /// The same deadline for everything.
    pub fn all(limit: std::time::Duration) -> Self {
        Deadlines { head: limit, body: limit, stall: limit }
    }
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines::all(std::time::Duration::from_secs(CLIENT_TIMEOUT_SECS))
    }
}
/// Largest request head (request line and headers) accepted, in bytes; larger ones get 431.
pub const MAX_HEAD: usize = 64 * 1024;

/// The peer address of a connection, in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Serves `app` on `listener` until `shutdown` resolves: HTTP/1.1 with `TCP_NODELAY`, a
/// deadline for request heads and idle connections, and a bound on their size. After the
/// signal, requests in flight get [`SHUTDOWN_GRACE`] to finish; connections still open after
/// that are closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    deadlines: Deadlines,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                req.extensions_mut().insert(deadlines);
                let mut app = app.clone();
                async move { app.call(req.map(axum::body::Body::new)).await }
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(deadlines.head).max_buf_size(MAX_HEAD);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("grace period over: closing the connections still open");
        }
    }
    Ok(())
}
