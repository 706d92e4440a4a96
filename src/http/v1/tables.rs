//! Tables: create (from rows or from stored rows' digests), update, query and count rows.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::error::{Error, Result};
use crate::domain::page::Page;
use crate::domain::store;
use crate::domain::table::{self, SortField, TableQuery as Query, TableUpdate};
use crate::domain::writes::objects;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody};
use crate::http::{AppState, blocking};

#[derive(Deserialize)]
pub(crate) struct TableInsert {
    project_id: String,
    rows: Vec<Value>,
    expected_digest: Option<String>,
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
    let (digest, row_digests) = store::write_async(state.store.as_ref(), move |w| {
        objects::create_table(w, &t.project_id, &t.rows, t.expected_digest.as_deref())
    })
    .await?;
    Ok(json_response(json!({ "digest": digest, "row_digests": row_digests })))
}

#[derive(Deserialize)]
pub(crate) struct TableCreateFromDigests {
    project_id: String,
    row_digests: Vec<String>,
    expected_digest: Option<String>,
}

/// `POST /table/create_from_digests`: a table of rows the project holds, named by digest.
pub(crate) async fn table_create_from_digests(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<TableCreateFromDigests>,
) -> Result<Response, ApiError> {
    let digest = store::write_async(state.store.as_ref(), move |w| {
        objects::create_table_from_digests(
            w,
            &req.project_id,
            &req.row_digests,
            req.expected_digest.as_deref(),
        )
    })
    .await?;
    Ok(json_response(json!({ "digest": digest })))
}

#[derive(Deserialize)]
pub(crate) struct TableUpdateReq {
    project_id: String,
    base_digest: String,
    updates: Vec<TableUpdate>,
}

/// `POST /table/update`: a new table from a stored one and appends, pops and inserts.
pub(crate) async fn table_update(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<TableUpdateReq>,
) -> Result<Response, ApiError> {
    let (digest, updated) = store::write_async(state.store.as_ref(), move |w| {
        objects::update_table(w, &req.project_id, &req.base_digest, req.updates)
    })
    .await?;
    Ok(json_response(json!({ "digest": digest, "updated_row_digests": updated })))
}

#[derive(Deserialize, Default)]
pub(crate) struct RowFilter {
    row_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SortBy {
    field: String,
    direction: String,
}

#[derive(Deserialize)]
pub(crate) struct TableQueryReq {
    project_id: String,
    digest: String,
    filter: Option<RowFilter>,
    #[serde(default, deserialize_with = "crate::domain::body::opt_int")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::domain::body::opt_int")]
    offset: Option<i64>,
    sort_by: Option<Vec<SortBy>>,
}

/// `POST /table/query`: a table's rows, in table order or sorted by fields of the rows,
/// streamed.
pub(crate) async fn table_query(
    State(state): State<AppState>,
    ProjectBody(req, who): ProjectBody<TableQueryReq>,
) -> Result<Response, ApiError> {
    let sort_by = req
        .sort_by
        .unwrap_or_default()
        .iter()
        .map(|s| SortField::parse(&s.field, &s.direction))
        .collect::<Result<Vec<_>>>()?;
    let q = Query {
        only: req.filter.unwrap_or_default().row_digests,
        sort_by,
        page: Page::from_body(req.limit, req.offset)?,
    };
    let (project, digest) = (req.project_id, req.digest);
    crate::http::stream::json_list(&state, &who, "rows", move |s, emit| {
        table::query(s, &project, &digest, &q, &mut |row| {
            emit(&|buf| {
                let _ = serde_json::to_writer(&mut *buf, &row);
            })
        })
    })
    .await
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

in_project! {
    TableCreate => table.project_id;
    TableCreateFromDigests => project_id;
    TableUpdateReq => project_id;
    TableQueryReq => project_id;
    TableStats => project_id;
}
