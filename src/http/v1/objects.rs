//! Objects: create, read, query and delete object versions.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::body::OutputOnly;
use crate::domain::error::{Error, Result};
use crate::domain::object::{ObjSchema, ObjectQuery, ObjectSort, Version};
use crate::domain::page::Page;
use crate::domain::store::{self, Writer};
use crate::domain::writes::{deletes, objects};
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody, RawQuery};
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
    metadata_only: Option<bool>,
    include_tags_and_aliases: Option<bool>,
    /// Output only: sizes are not answered.
    include_storage_size: Option<OutputOnly>,
}

/// `POST /obj/read`: one object version (`digest` may be `latest`, `v<N>` or an alias).
pub(crate) async fn obj_read(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<ObjRead>,
) -> Result<Response, ApiError> {
    let labels = req.include_tags_and_aliases.unwrap_or(false);
    let obj = blocking(&state, move |s| {
        let (o, latest) = s
            .object(&req.project_id, &req.object_id, &Version::parse(&req.digest))?
            .ok_or_else(|| Error::NotFound(format!("Obj {}:{} not found", req.object_id, req.digest)))?;
        let found = if labels { Some(s.labels(&o.project_id, &o.object_id, &o.digest)?) } else { None };
        let mut obj = ObjSchema::of(o, latest);
        if req.metadata_only.unwrap_or(false) {
            obj.val = json!({});
        }
        Ok(match found {
            Some(l) => obj.with_labels(l),
            None => obj,
        })
    })
    .await?;
    Ok(json_response(json!({ "obj": obj })))
}

#[derive(Deserialize, Default)]
pub(crate) struct ObjFilter {
    object_ids: Option<Vec<String>>,
    base_object_classes: Option<Vec<String>>,
    exclude_base_object_classes: Option<Vec<String>>,
    leaf_object_classes: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    aliases: Option<Vec<String>>,
    is_op: Option<bool>,
    latest_only: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct SortBy {
    field: String,
    direction: String,
}

#[derive(Deserialize)]
#[allow(dead_code)] // `OutputOnly` fields are accepted, never read
pub(crate) struct ObjQuery {
    project_id: String,
    filter: Option<ObjFilter>,
    #[serde(default, deserialize_with = "crate::domain::body::opt_int")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::domain::body::opt_int")]
    offset: Option<i64>,
    sort_by: Option<Vec<SortBy>>,
    metadata_only: Option<bool>,
    include_tags_and_aliases: Option<bool>,
    /// Output only: sizes are not answered.
    include_storage_size: Option<OutputOnly>,
}

/// `POST /objs/query`: object versions by id, class, op-ness, latest, tag, alias; sorted,
/// windowed, with or without their values, tags and aliases.
pub(crate) async fn objs_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<ObjQuery>,
) -> Result<Response, ApiError> {
    let f = req.filter.unwrap_or_default();
    let sort = req
        .sort_by
        .unwrap_or_default()
        .iter()
        .map(|s| ObjectSort::parse(&s.field, &s.direction))
        .collect::<Result<Vec<_>>>()?;
    let q = ObjectQuery {
        object_ids: f.object_ids.unwrap_or_default(),
        base_object_classes: f.base_object_classes.unwrap_or_default(),
        exclude_base_object_classes: f.exclude_base_object_classes.unwrap_or_default(),
        leaf_object_classes: f.leaf_object_classes.unwrap_or_default(),
        tags: f.tags.unwrap_or_default(),
        aliases: f.aliases.unwrap_or_default(),
        is_op: f.is_op,
        latest_only: f.latest_only.unwrap_or(false),
        sort,
        metadata_only: req.metadata_only.unwrap_or(false),
        with_labels: req.include_tags_and_aliases.unwrap_or(false),
        page: Page::from_body(req.limit, req.offset)?,
    };
    let project = req.project_id;
    crate::http::stream::json_list(&state, &who, "objs", move |s, emit| {
        s.objects(&project, &q, &mut |o, latest, labels| {
            let obj = ObjSchema::of(o, latest);
            let obj = match labels {
                Some(l) => obj.with_labels(l),
                None => obj,
            };
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

#[derive(Deserialize)]
pub(crate) struct TagsBody {
    project_id: String,
    tags: Vec<String>,
    /// As in the path, if sent.
    object_id: Option<String>,
    /// As in the path, if sent.
    digest: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct AliasesSet {
    project_id: String,
    digest: String,
    aliases: Vec<String>,
    /// As in the path, if sent.
    object_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct AliasesRemove {
    project_id: String,
    aliases: Vec<String>,
    /// As in the path, if sent.
    object_id: Option<String>,
}

/// A 400 unless a value the body repeats from the path is the path's.
fn same_as_path(name: &str, path: &str, body: Option<&str>) -> Result<()> {
    match body {
        Some(b) if b != path => {
            Err(Error::BadRequest(format!("{name} {b:?} in the body is not {path:?} of the path")))
        }
        _ => Ok(()),
    }
}

/// Runs a write of an object's labels as one job; answers `{}`.
async fn write_labels(
    state: &AppState,
    write: impl FnOnce(&mut dyn Writer) -> Result<()> + Send + 'static,
) -> Result<Response, ApiError> {
    store::write_async(state.store.as_ref(), write).await?;
    Ok(json_response(json!({})))
}

/// A change to the tags of an object version: [`objects::add_tags`] or
/// [`objects::remove_tags`].
type TagChange = fn(&mut dyn Writer, &str, &str, &str, &[String]) -> Result<()>;

/// A tag route: `change` on the tags of the version the path names, once the body agrees
/// with the path.
async fn change_tags(
    state: AppState,
    (object_id, digest): (String, String),
    req: TagsBody,
    change: TagChange,
) -> Result<Response, ApiError> {
    same_as_path("object_id", &object_id, req.object_id.as_deref())?;
    same_as_path("digest", &digest, req.digest.as_deref())?;
    write_labels(&state, move |w| change(w, &req.project_id, &object_id, &digest, &req.tags)).await
}

/// `PUT /objs/{object_id}/versions/{digest}/tags`: adds tags to an object version.
pub(crate) async fn tags_add(
    State(state): State<AppState>,
    Path(version): Path<(String, String)>,
    ProjectBody(req, _): ProjectBody<TagsBody>,
) -> Result<Response, ApiError> {
    change_tags(state, version, req, objects::add_tags).await
}

/// `POST /objs/{object_id}/versions/{digest}/tags/remove`: removes tags from an object version.
pub(crate) async fn tags_remove(
    State(state): State<AppState>,
    Path(version): Path<(String, String)>,
    ProjectBody(req, _): ProjectBody<TagsBody>,
) -> Result<Response, ApiError> {
    change_tags(state, version, req, objects::remove_tags).await
}

/// `PUT /objs/{object_id}/aliases`: points aliases at a version of the object.
pub(crate) async fn aliases_set(
    State(state): State<AppState>,
    Path(object_id): Path<String>,
    ProjectBody(req, _): ProjectBody<AliasesSet>,
) -> Result<Response, ApiError> {
    same_as_path("object_id", &object_id, req.object_id.as_deref())?;
    write_labels(&state, move |w| {
        objects::set_aliases(w, &req.project_id, &object_id, &req.digest, &req.aliases)
    })
    .await
}

/// `POST /objs/{object_id}/aliases/remove`: removes aliases of the object.
pub(crate) async fn aliases_remove(
    State(state): State<AppState>,
    Path(object_id): Path<String>,
    ProjectBody(req, _): ProjectBody<AliasesRemove>,
) -> Result<Response, ApiError> {
    same_as_path("object_id", &object_id, req.object_id.as_deref())?;
    write_labels(&state, move |w| objects::remove_aliases(w, &req.project_id, &object_id, &req.aliases)).await
}

/// Answers a list of a project's labels (`GET /tags`, `GET /aliases`) under `name`: what
/// `read` reads for the project of the query string.
async fn list_labels(
    state: &AppState,
    who: &Principal,
    q: &crate::domain::validate::Query,
    name: &str,
    read: fn(&dyn crate::domain::store::Store, &str) -> Result<Vec<String>>,
) -> Result<Response, ApiError> {
    let project = listed_project(who, q)?;
    let names = blocking(state, move |s| read(s, &project)).await?;
    Ok(json_response(json!({ name: names })))
}

/// The `project_id` of a list route's query string, which the caller's key may act on.
fn listed_project(who: &Principal, q: &crate::domain::validate::Query) -> Result<String, ApiError> {
    let Some(project) = q.get("project_id").filter(|p| !p.is_empty()) else {
        return Err(Error::invalid(crate::domain::error::Issue {
            kind: "missing",
            loc: vec![json!("query"), json!("project_id")],
            msg: "Field required".into(),
            input: Value::Null,
            ctx: None,
        })
        .into());
    };
    who.check_project(project)?;
    Ok(project.to_string())
}

/// `GET /tags?project_id=`: the distinct tags of the project's object versions, sorted.
pub(crate) async fn tags_list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    list_labels(&state, &who, &q, "tags", |s, project| s.project_tags(project)).await
}

/// `GET /aliases?project_id=`: the distinct aliases of the project's objects, sorted.
pub(crate) async fn aliases_list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    list_labels(&state, &who, &q, "aliases", |s, project| s.project_aliases(project)).await
}

in_project! {
    TagsBody => project_id;
    AliasesSet => project_id;
    AliasesRemove => project_id;
    ObjCreate => obj.project_id;
    ObjRead => project_id;
    ObjQuery => project_id;
    ObjDelete => project_id;
}
