//! The projects page (`/`): the projects the viewer's key can see, with their run counts and
//! latest activity.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout::{self, Crumb};
use super::table::{Cell, Column, Format, Row, Table};
use super::{UiError, Viewer, blocking};
use crate::domain::store::ProjectSummary;
use crate::domain::validate::Query;
use crate::http::AppState;

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let q = Query::parse(raw.as_deref());
    let format = Format::parse(q.get("format"))?;
    let key = viewer.0.key.clone();
    let projects = blocking(&state, move |s| {
        let mut out = Vec::new();
        s.projects(&mut |p: ProjectSummary| {
            let entity = p.project_id.split('/').next().unwrap_or("");
            if key.allows(entity) {
                out.push(p);
            }
            out.len() < 10_000
        })?;
        Ok(out)
    })
    .await?;
    let table = Table {
        columns: vec![
            Column::plain("project", "Project"),
            Column::plain("runs", "Evaluation runs"),
            Column::plain("last_activity", "Last activity"),
        ],
        rows: projects
            .iter()
            .map(|p| {
                let (entity, project) = p.project_id.split_once('/').unwrap_or(("", &p.project_id));
                let href =
                    format!("/{}/{}/weave", layout::path_segment(entity), layout::path_segment(project));
                Row {
                    cells: vec![
                        Cell::Link(p.project_id.clone(), href),
                        Cell::Num(p.runs as f64),
                        Cell::Time(p.last_activity),
                    ],
                    class: None,
                }
            })
            .collect(),
    };
    if format != Format::Html {
        return Ok(table.export(format, "projects"));
    }
    let body = html! {
        h1 { "Projects" }
        @if table.rows.is_empty() {
            p.empty { "No project this key can see has any calls yet. Point the SDK here with "
                code { "WF_TRACE_SERVER_URL" } " and run an evaluation." }
        } @else {
            (table.html(None))
            p.exports { "Export: " a href="/?format=csv" { "CSV" } " · " a href="/?format=jsonl" { "JSONL" } }
        }
    };
    Ok(layout::page(StatusCode::OK, "Projects", Some(&viewer), &[Crumb::here("Projects")], body))
}
