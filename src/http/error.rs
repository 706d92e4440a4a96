//! Maps errors to HTTP responses: the one place where status codes and error bodies are chosen.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::domain::error::{Error, Issue, bounded};

/// An error on its way to the client.
#[derive(Debug)]
pub enum ApiError {
    /// A domain or store error.
    Domain(Error),
    /// No or unusable credentials (401, with `WWW-Authenticate`).
    Unauthenticated(&'static str),
    /// Valid credentials without access to the entity (403).
    Forbidden(String),
    /// No route for the path (404, FastAPI's shape).
    NoRoute,
    /// The route exists but not for this method (405, FastAPI's shape).
    NoMethod,
    /// A request head (request line and headers) over [`super::MAX_HEAD`] bytes (431).
    HeadTooLarge,
}

impl Error {
    /// This error as a response.
    pub fn into_response_api(self) -> Response {
        ApiError::Domain(self).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Domain(e)
    }
}

fn issue_json(i: &Issue) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(i.kind));
    m.insert("loc".into(), Value::Array(i.loc.clone()));
    m.insert("msg".into(), json!(i.msg));
    m.insert("input".into(), i.input.clone());
    if let Some(ctx) = &i.ctx {
        m.insert("ctx".into(), ctx.clone());
    }
    Value::Object(m)
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Domain(e) => match e {
                Error::Validation(issues) => reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "detail": issues.iter().map(issue_json).collect::<Vec<_>>() }),
                ),
                Error::BadRequest(reason) => reply(StatusCode::BAD_REQUEST, json!({ "reason": reason })),
                Error::NotFound(reason) => reply(StatusCode::NOT_FOUND, json!({ "reason": reason })),
                Error::Conflict(reason) => reply(StatusCode::CONFLICT, json!({ "reason": reason })),
                Error::Timeout(reason) => reply(StatusCode::REQUEST_TIMEOUT, json!({ "reason": reason })),
                Error::TooMany(reason) => {
                    let mut r = reply(StatusCode::TOO_MANY_REQUESTS, json!({ "reason": reason }));
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    r
                }
                Error::TooLarge(reason) => reply(StatusCode::PAYLOAD_TOO_LARGE, json!({ "reason": reason })),
                Error::UnsupportedMedia(reason) => {
                    reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({ "reason": reason }))
                }
                Error::Unavailable(reason) => {
                    let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, json!({ "reason": reason }));
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    r
                }
                Error::Storage(detail) => {
                    let detail = bounded(&detail);
                    tracing::error!(%detail, "storage error");
                    reply(StatusCode::INTERNAL_SERVER_ERROR, json!({ "reason": "Internal server error" }))
                }
                Error::StorageFull(detail) => {
                    let detail = bounded(&detail);
                    tracing::error!(%detail, "storage unavailable");
                    reply(
                        StatusCode::INSUFFICIENT_STORAGE,
                        json!({ "reason": "Storage unavailable: no space left or read-only" }),
                    )
                }
            },
            ApiError::Unauthenticated(detail) => {
                let mut r = reply(StatusCode::UNAUTHORIZED, json!({ "detail": detail }));
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                r
            }
            ApiError::Forbidden(detail) => reply(StatusCode::FORBIDDEN, json!({ "detail": detail })),
            ApiError::NoRoute => reply(StatusCode::NOT_FOUND, json!({ "detail": "Not Found" })),
            ApiError::NoMethod => {
                reply(StatusCode::METHOD_NOT_ALLOWED, json!({ "detail": "Method Not Allowed" }))
            }
            ApiError::HeadTooLarge => {
                let reason = format!("Request head larger than {} KiB", super::MAX_HEAD >> 10);
                let mut r = reply(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, json!({ "reason": reason }));
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
        }
    }
}
