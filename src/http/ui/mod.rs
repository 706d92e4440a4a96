//! The web UI: pages to browse and compare evaluation runs, served by the same binary on the
//! same port as the API. Pages are rendered on the server (maud templates, inline SVG charts)
//! and work without JavaScript; `assets/ui.js` only adds keyboard navigation.
//!
//! Every page is one route here. A page handler reads its query string, signs the viewer in
//! from the session cookie ([`Viewer`]), calls the domain, and renders the result, as HTML or,
//! for table views, as CSV or JSONL ([`table`]).

pub mod calls;
pub mod charts;
pub mod compare;
pub mod layout;
pub mod leaderboard;
pub mod projects;
pub mod run;
pub mod runs;
pub mod session;
pub mod table;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use crate::domain::error::Error;
use crate::domain::sessions::{self, SignedIn};

/// The UI's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(projects::page))
        .route("/ui/sign-in", post(session::sign_in))
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/assets/{name}", get(layout::asset))
        .route("/{entity}/{project}/weave", get(runs::page))
        .route("/{entity}/{project}/weave/runs", get(runs::page))
        .route("/{entity}/{project}/weave/leaderboard", get(leaderboard::page))
        .route("/{entity}/{project}/weave/runs/{run_id}", get(run::page))
        .route("/{entity}/{project}/weave/compare", get(compare::page))
        .route("/{entity}/{project}/weave/compare-evaluations", get(compare::weave_link))
        .route("/{entity}/{project}/weave/calls/{call_id}", get(calls::page))
        .route("/{entity}/{project}/r/call/{call_id}", get(calls::redirect))
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "weft_session";

/// The signed-in viewer of a page: a valid session and its key. A page taking a `Viewer` is
/// answered with the sign-in page when there is none.
pub struct Viewer(pub SignedIn);

impl Viewer {
    /// Checks that the viewer's key may see `entity` (a 403 page otherwise).
    pub fn check_entity(&self, entity: &str) -> Result<(), UiError> {
        if self.0.key.allows(entity) { Ok(()) } else { Err(UiError::Forbidden(entity.to_string())) }
    }

    /// The token the session's forms carry.
    pub fn csrf(&self) -> &str {
        &self.0.session.csrf
    }
}

/// A cookie's value from a request's headers.
pub fn cookie<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(String::from) else {
            return Err(UiError::SignIn(here(parts)));
        };
        let store = state.store.clone();
        let found = if store.keys_read_at_once() {
            sessions::current(store.as_ref(), &token)?
        } else {
            tokio::task::spawn_blocking(move || sessions::current(store.as_ref(), &token))
                .await
                .map_err(|e| Error::Storage(format!("blocking task failed: {e}")))??
        };
        found.map(Viewer).ok_or_else(|| UiError::SignIn(here(parts)))
    }
}

/// The path and query a request asked for, to come back to after signing in.
fn here(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string()
}

/// Runs blocking store work off the async threads, for a page.
pub async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, UiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn crate::domain::store::Store) -> crate::domain::error::Result<T> + Send + 'static,
{
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| Error::Storage(format!("blocking task failed: {e}")))?
        .map_err(UiError::from)
}

/// Why a page could not be shown: each becomes an HTML page (or a redirect) in one place.
#[derive(Debug)]
pub enum UiError {
    /// No valid session: the sign-in page, returning to this path and query afterwards.
    SignIn(String),
    /// The viewer's key may not see this entity.
    Forbidden(String),
    /// A domain or store error.
    Domain(Error),
}

impl From<Error> for UiError {
    fn from(e: Error) -> Self {
        UiError::Domain(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match self {
            UiError::SignIn(next) if wants_export(&next) => {
                // A script asking for an export gets no HTML form in place of its data.
                let mut r = (StatusCode::UNAUTHORIZED, "Sign in first: exports need a session (see /).\n")
                    .into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return r;
            }
            UiError::SignIn(next) => return session::sign_in_page(&next, None),
            UiError::Forbidden(entity) => (
                StatusCode::FORBIDDEN,
                "No access",
                format!("The key you signed in with has no access to entity {entity}."),
            ),
            UiError::Domain(e) => match e {
                Error::Validation(issues) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Bad request",
                    issues.iter().map(|i| i.msg.clone()).collect::<Vec<_>>().join("; "),
                ),
                Error::BadRequest(d) | Error::Conflict(d) => (StatusCode::BAD_REQUEST, "Bad request", d),
                Error::NotFound(d) => (StatusCode::NOT_FOUND, "Not found", d),
                Error::TooLarge(d) => (StatusCode::PAYLOAD_TOO_LARGE, "Too large", d),
                Error::TooMany(d) => (StatusCode::TOO_MANY_REQUESTS, "Too many requests", d),
                Error::Unavailable(d) | Error::Timeout(d) => (StatusCode::SERVICE_UNAVAILABLE, "Busy", d),
                Error::UnsupportedMedia(d) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Bad request", d),
                other @ (Error::Storage(_) | Error::StorageFull(_)) => {
                    let error = crate::domain::error::bounded(&other.to_string()).into_owned();
                    tracing::error!(%error, "a page failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Server error",
                        "The store failed; see the server's log.".into(),
                    )
                }
            },
        };
        layout::message_page(status, title, &detail)
    }
}

/// Whether a page's path and query ask for an export (`format=csv` or `format=jsonl`).
fn wants_export(path_and_query: &str) -> bool {
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "format" && (v == "csv" || v == "jsonl"))
}

/// The `{entity}/{project}` of a page's path.
#[derive(Debug, serde::Deserialize)]
pub struct ProjectPath {
    /// The entity.
    pub entity: String,
    /// The project.
    pub project: String,
}

impl ProjectPath {
    /// `entity/project`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.entity, self.project)
    }
    /// The project's UI root, `/{entity}/{project}/weave`, with its segments escaped.
    pub fn base(&self) -> String {
        format!("/{}/{}/weave", layout::path_segment(&self.entity), layout::path_segment(&self.project))
    }
}

/// A redirect to a local path.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Extracts a project path, answering a malformed one as a 404 page.
pub type ProjectOf = Path<ProjectPath>;
