//! Refs: read the values refs point at.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::error::Result;
use crate::domain::refs::Ref;
use crate::domain::resolve;
use crate::domain::trace::from_body;
use crate::domain::validate::check_ids;
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, blocking};

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
    check_ids("refs", &req.refs)?;
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
