//! Files: upload and download content-addressed bytes.

use axum::Extension;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::json_response;
use crate::domain::error::{Error, Result};
use crate::domain::store;
use crate::domain::writes::objects;
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody};
use crate::http::{AppState, blocking};

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
                other => {
                    let name = other.unwrap_or_default();
                    return Err(Error::BadRequest(format!(
                        "Unsupported form field {name}: weft does not implement it, and refuses rather than ignores it"
                    ))
                    .into());
                }
            }
        }
        Ok::<_, ApiError>(())
    };
    tokio::time::timeout(state.deadlines.body, read_form)
        .await
        .map_err(|_| crate::http::extract::body_timeout())??;
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

in_project! {
    FileContent => project_id;
}
