//! Tables: create, query and count rows.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::error::{Error, Result};
use crate::domain::page::Page;
use crate::domain::store;
use crate::domain::writes::objects;
use crate::http::error::ApiError;
use crate::http::extract::{InProject, ProjectBody};
use crate::http::{AppState, blocking};

#[derive(Deserialize)]
pub(crate) struct TableInsert {
    project_id: String,
    rows: Vec<Value>,
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
    let (digest, row_digests) =
        store::write_async(state.store.as_ref(), move |w| objects::create_table(w, &t.project_id, &t.rows))
            .await?;
    Ok(json_response(json!({ "digest": digest, "row_digests": row_digests })))
}

#[derive(Deserialize, Default)]
pub(crate) struct RowFilter {
    row_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(crate) struct TableQuery {
    project_id: String,
    digest: String,
    filter: Option<RowFilter>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `POST /table/query`: a table's rows, in order.
pub(crate) async fn table_query(
    State(state): State<AppState>,
    ProjectBody(req, _): ProjectBody<TableQuery>,
) -> Result<Response, ApiError> {
    let only = req.filter.unwrap_or_default().row_digests;
    let window = Page::from_body(req.limit, req.offset)?;
    let rows = blocking(&state, move |s| {
        s.table_rows(&req.project_id, &req.digest, only.as_deref(), window)?
            .ok_or_else(|| Error::NotFound(format!("Table {} not found", req.digest)))
    })
    .await?;
    Ok(json_response(json!({ "rows": rows })))
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
    TableQuery => project_id;
    TableStats => project_id;
}
