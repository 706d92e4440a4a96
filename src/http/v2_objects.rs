//! Handlers of `/v2/{entity}/{project}/ops`, `/datasets`, `/scorers`, `/evaluations` and
//! `/models`: create, read by version, list, delete.

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use super::extract::{JsonBody, OptionalJsonBody, ProjectPath, RawQuery};
use super::{AppState, blocking, ids_from_body};
use crate::domain::error::{Error, Issue};
use crate::domain::page::Page;
use crate::domain::store;
use crate::domain::v2_objects::{self, CreateBody, Family};
use crate::domain::validate::{Query, check_ids};
use crate::domain::writes::deletes;

/// The routes of every family, under `prefix` (`/v2/{entity}/{project}`).
pub fn routes(prefix: &str) -> Router<AppState> {
    let mut r = Router::new();
    for (segment, family) in [
        ("ops", Family::Op),
        ("datasets", Family::Dataset),
        ("scorers", Family::Scorer),
        ("evaluations", Family::Evaluation),
        ("models", Family::Model),
    ] {
        r = r
            .route(
                &format!("{prefix}/{segment}"),
                get(move |s: State<AppState>, w: Extension<Principal>, p: ProjectPath, q: RawQuery| {
                    list(family, s, w, p, q)
                })
                .post(
                    move |s: State<AppState>, p: ProjectPath, w: Extension<Principal>, b: JsonBody| {
                        create(family, s, p, w, b)
                    },
                ),
            )
            .route(
                &format!("{prefix}/{segment}/{{object_id}}"),
                axum::routing::delete(
                    move |s: State<AppState>, p: ProjectPath, q: RawQuery, b: OptionalJsonBody| {
                        delete(family, s, p, q, b)
                    },
                ),
            )
            .route(
                &format!("{prefix}/{segment}/{{object_id}}/versions/{{digest}}"),
                get(move |s: State<AppState>, p: ProjectPath, q: RawQuery| read(family, s, p, q)),
            );
    }
    r
}

/// `POST /{family}`: creates an object (and what it points at) as one write.
async fn create(
    family: Family,
    State(state): State<AppState>,
    path: ProjectPath,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req = CreateBody::from_json(family, &body)?;
    let created = store::write_async(state.store.as_ref(), move |w| {
        v2_objects::create(w, &path.project_id, &req, Some(who.user_id()))
    })
    .await?;
    Ok(axum::Json(created.to_json(family)).into_response())
}

/// A FastAPI `bool` query parameter (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`), or a 422.
fn check_bool(q: &Query, name: &str) -> Result<(), Error> {
    let Some(v) = q.get(name) else {
        return Ok(());
    };
    let ok = matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off" | "t" | "f" | "y" | "n"
    );
    if ok {
        return Ok(());
    }
    Err(Error::invalid(Issue {
        kind: "bool_parsing",
        loc: vec![json!("query"), json!(name)],
        msg: "Input should be a valid boolean, unable to interpret input".into(),
        input: json!(v),
        ctx: None,
    }))
}

/// `GET /{family}/{object_id}/versions/{digest}`: one version (`digest` may be `latest`, `v<N>`
/// or an alias too). `eager` (ops) is accepted: the code is always read.
async fn read(
    family: Family,
    State(state): State<AppState>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    check_bool(&q, "eager")?;
    let found = blocking(&state, move |s| {
        v2_objects::read(s, &path.project_id, family, path.param("object_id"), path.param("digest"))
    })
    .await?;
    Ok(axum::Json(found).into_response())
}

/// `GET /{family}`: the family's objects as JSONL, streamed.
async fn list(
    family: Family,
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let page = Page::from_query(&q)?;
    super::stream::jsonl(&state, &who, move |s, emit| {
        v2_objects::list(s, &path.project_id, family, page, &mut |v: &Value| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, v);
            })
        })
    })
    .await
}

/// `DELETE /{family}/{object_id}`: soft-deletes the versions named by `digests` (in the query,
/// or a JSON body), or every version when none is named.
async fn delete(
    family: Family,
    State(state): State<AppState>,
    path: ProjectPath,
    RawQuery(q): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    let mut digests = q.list(&["digests"])?;
    if let Some(body) = &body {
        digests.extend(ids_from_body(body, "digests")?);
    }
    check_ids("digests", &digests)?;
    let object_id = path.param("object_id").to_string();
    let project = path.project_id.clone();
    let (checked_id, checked_project) = (object_id.clone(), project.clone());
    let of_family =
        blocking(&state, move |s| v2_objects::is_of(s, &checked_project, family, &checked_id)).await?;
    if !of_family {
        return Err(family.missing(&object_id).into());
    }
    let n = store::write_async(state.store.as_ref(), move |w| {
        let named = (!digests.is_empty()).then_some(digests.as_slice());
        deletes::object_versions(w, &project, &object_id, named)
    })
    .await?;
    Ok(axum::Json(json!({ "num_deleted": n })).into_response())
}
