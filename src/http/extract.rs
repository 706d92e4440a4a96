//! Request extractors that report bad input in the API's error shapes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use crate::domain::error::{Error, Issue};
use crate::domain::validate::{Query, parse_json_body};
use serde::de::DeserializeOwned;

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Longest entity or project name accepted.
const MAX_NAME: usize = 256;

/// A JSON body, sent with a JSON Content-Type or none (see [`check_json_content_type`]);
/// an empty body is a `missing` 422.
pub struct JsonBody(pub Value);

/// A JSON body that may be absent.
pub struct OptionalJsonBody(pub Option<Value>);

/// The error for a request body that did not arrive within its deadline.
pub fn body_timeout() -> ApiError {
    Error::Timeout("The request body did not arrive in time".into()).into()
}

/// How long a request's body may take to arrive.
pub fn body_deadline(req: &Request) -> std::time::Duration {
    req.extensions().get::<super::Deadlines>().copied().unwrap_or_default().body
}

/// Whether `value` names a JSON media type: `application/json` or any `type/subtype+json`,
/// with or without parameters (`; charset=utf-8`), in any case.
fn is_json_media_type(value: &[u8]) -> bool {
    // The type clients send, without parameters: no need to take it apart.
    if value.eq_ignore_ascii_case(b"application/json") {
        return true;
    }
    let Ok(value) = std::str::from_utf8(value) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else { return false };
    let token = |t: &str| {
        !t.is_empty() && t.bytes().all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&c))
    };
    token(kind)
        && token(subtype)
        && ((kind == "application" && subtype == "json") || (subtype.len() > 5 && subtype.ends_with("+json")))
}

/// Refuses (415) a JSON body sent with a Content-Type that is not JSON. An HTML form on any web
/// site can post `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data`
/// without the browser asking first, so a body of those types is never read as JSON. No
/// Content-Type at all is accepted: the official client sends JSON bodies without one.
pub fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    for value in headers.get_all(axum::http::header::CONTENT_TYPE) {
        if !is_json_media_type(value.as_bytes()) {
            let shown: String = String::from_utf8_lossy(value.as_bytes()).chars().take(100).collect();
            return Err(Error::UnsupportedMedia(format!(
                "Unsupported Content-Type {shown:?}: send JSON bodies as application/json \
                 (or a type/subtype+json type), or without a Content-Type"
            ))
            .into());
        }
    }
    Ok(())
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    check_json_content_type(req.headers())?;
    let read = tokio::time::timeout(body_deadline(&req), Bytes::from_request(req, state))
        .await
        .map_err(|_| body_timeout())?;
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(format!("Request body is larger than {} MiB", MAX_BODY >> 20)).into()
        } else {
            Error::BadRequest(format!("Could not read the request body: {rejection}")).into()
        }
    })
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        Ok(JsonBody(parse_json_body(&bytes)?))
    }
}

/// A JSON body read straight into `T`; bad input gets the same 422s as [`JsonBody`] followed
/// by [`crate::domain::trace::from_body`] ([`crate::domain::body::from_bytes`]).
pub struct TypedBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for TypedBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        Ok(TypedBody(crate::domain::body::from_bytes(&bytes)?))
    }
}

/// A JSON body's bytes, not parsed yet: for a route that reads its body as it writes it. Bad
/// input is answered by what reads it ([`crate::domain::body::from_bytes`]).
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(BodyBytes(body_bytes(req, state).await?))
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        Ok(OptionalJsonBody(Some(parse_json_body(&bytes)?)))
    }
}

/// A request type that names the project it acts on.
pub trait InProject {
    /// `"{entity}/{project}"`.
    fn project_id(&self) -> &str;
}

/// A JSON body read into `T`, whose project the caller's key may act on (else 400/403),
/// with the caller.
pub struct ProjectBody<T>(pub T, pub Principal);

impl<S: Send + Sync, T: DeserializeOwned + InProject> FromRequest<S> for ProjectBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let who = req
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthenticated("Not authenticated"))?;
        let TypedBody(value) = TypedBody::<T>::from_request(req, state).await?;
        who.check_project(value.project_id())?;
        Ok(ProjectBody(value, who))
    }
}

/// The path parameters of a `/v2/{entity}/{project}/...` route.
pub struct ProjectPath {
    /// `"{entity}/{project}"`.
    pub project_id: String,
    params: HashMap<String, String>,
}

impl ProjectPath {
    /// Another path parameter, e.g. `evaluation_run_id`.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_NAME || name.contains('/') {
        return Err(Error::invalid(Issue {
            kind: "string_pattern_mismatch",
            loc: vec![json!("path"), json!(what)],
            msg: format!("{what} must be 1 to {MAX_NAME} characters without '/'"),
            input: json!(name),
            ctx: None,
        }));
    }
    Ok(())
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::BadRequest(format!("Invalid path: {e}")))?;
        let entity = params.get("entity").map_or("", String::as_str);
        let project = params.get("project").map_or("", String::as_str);
        check_name("entity", entity)?;
        check_name("project", project)?;
        if let Some(who) = parts.extensions.get::<super::auth::Principal>() {
            who.check_entity(entity)?;
        }
        Ok(ProjectPath { project_id: format!("{entity}/{project}"), params })
    }
}

/// The decoded query string.
pub struct RawQuery(pub Query);

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(RawQuery(Query::parse(parts.uri.query())))
    }
}
