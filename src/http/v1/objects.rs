//! Objects: create, read, query and delete object versions.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::body::OutputOnly;
use crate::domain::error::{Error, Result};
use crate::domain::object::{ObjSchema, ObjectQuery, Version};
use crate::domain::page::Page;
use crate::domain::store;
use crate::domain::writes::{deletes, objects};
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody};
use crate::http::{AppState, blocking};

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
#[allow(dead_code)] // `OutputOnly` fields are accepted, never read
pub(crate) struct ObjRead {
    project_id: String,
    object_id: String,
    digest: String,
    /// Output only, as in `objs/query`.
    metadata_only: Option<OutputOnly>,
    include_tags_and_aliases: Option<OutputOnly>,
    include_storage_size: Option<OutputOnly>,
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
#[allow(dead_code)] // `OutputOnly` fields are accepted, never read
pub(crate) struct ObjQuery {
    project_id: String,
    filter: Option<ObjFilter>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// Output only: weft answers every version with its value.
    metadata_only: Option<OutputOnly>,
    /// Output only: weft keeps no tags or aliases.
    include_tags_and_aliases: Option<OutputOnly>,
    /// Output only: sizes are not answered.
    include_storage_size: Option<OutputOnly>,
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
        page: Page::from_body(req.limit, req.offset)?,
    };
    let project = req.project_id;
    crate::http::stream::json_list(&state, &who, "objs", move |s, emit| {
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
        deletes::object_versions(w, &req.project_id, &req.object_id, req.digests.as_deref())
    })
    .await?;
    Ok(json_response(json!({ "num_deleted": n })))
}

in_project! {
    ObjCreate => obj.project_id;
    ObjRead => project_id;
    ObjQuery => project_id;
    ObjDelete => project_id;
}
