//! The run page (`/{entity}/{project}/weave/runs/{run_id}`): a run's summary (scorer
//! aggregates, latency, token usage and cost when present, status counts), the distribution
//! of each metric, and its examples with inputs, output, every score, latency and error;
//! filters (failed only, a metric below a threshold); each example opens its call tree.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::calls::pretty;
use super::charts;
use super::layout::{self, Crumb};
use super::table::{Cell, Column, Format, Row, Table};
use super::{ProjectPath, UiError, Viewer, blocking};
use crate::domain::error::Error;
use crate::domain::metrics::{self, MetricKind};
use crate::domain::page::Page;
use crate::domain::run_table::RunSummary;
use crate::domain::run_view::{self, RunPage, RunPageQuery};
use crate::domain::validate::Query;
use crate::http::AppState;

const PAGE_ROWS: u64 = 50;
const MAX_PAGE_ROWS: u64 = 500;

/// A project path with a run id.
#[derive(serde::Deserialize)]
pub struct RunPath {
    entity: String,
    project: String,
    run_id: String,
}

struct Params {
    query: RunPageQuery,
    format: Format,
    metric: String,
    below: String,
}

fn params(raw: Option<&str>) -> Result<Params, Error> {
    let q = Query::parse(raw);
    let metric = q.get("metric").unwrap_or("").trim().to_string();
    let below = q.get("below").unwrap_or("").trim().to_string();
    let threshold = if below.is_empty() {
        None
    } else {
        match below.parse::<f64>() {
            Ok(t) if t.is_finite() => Some(t),
            _ => return Err(Error::BadRequest(format!("below={below:?} is not a number"))),
        }
    };
    if threshold.is_some() && metric.is_empty() {
        return Err(Error::BadRequest("below= needs metric= (the metric to compare)".into()));
    }
    let failed_only = match q.get("failed").unwrap_or("") {
        "" | "0" => false,
        "1" => true,
        other => return Err(Error::BadRequest(format!("failed={other:?}: expected 1 or 0"))),
    };
    let page = Page::from_query(&q)?;
    let query = RunPageQuery {
        failed_only,
        below: threshold.map(|t| (metric.clone(), t)),
        page: Page {
            limit: Some(page.limit.unwrap_or(PAGE_ROWS).clamp(1, MAX_PAGE_ROWS)),
            offset: page.offset,
        },
    };
    Ok(Params { query, format: Format::parse(q.get("format"))?, metric, below })
}

impl Params {
    fn link(&self, here: &str, changes: &[(&str, String)]) -> String {
        let pairs: Vec<(&str, String)> = vec![
            ("failed", if self.query.failed_only { "1".into() } else { String::new() }),
            ("metric", self.metric.clone()),
            ("below", self.below.clone()),
            ("offset", self.query.page.offset.to_string()),
            ("limit", self.query.page.limit.unwrap_or(PAGE_ROWS).to_string()),
        ];
        layout::link_with(here, pairs, changes, &|_, _| false)
    }
}

/// The examples table of a run page.
fn examples_table(page: &RunPage, base: &str) -> Table {
    let mut columns = vec![
        Column::plain("example", "#"),
        Column::plain("inputs", "Inputs"),
        Column::plain("output", "Output"),
    ];
    for m in &page.metrics {
        columns.push(Column::plain(format!("score.{}", m.name), m.name.clone()));
    }
    columns.push(Column::plain("error", "Error"));
    let rows = page
        .shown
        .iter()
        .map(|s| {
            let href = format!("{base}/calls/{}", layout::path_segment(&s.example.call_id));
            let mut cells = vec![
                Cell::Link(s.number.to_string(), href),
                Cell::Json(s.example.inputs.clone()),
                Cell::Json(s.example.output.clone()),
            ];
            for m in &page.metrics {
                cells.push(
                    s.metrics.iter().find(|(n, _)| n == &m.name).map_or(Cell::Empty, |(_, v)| Cell::Num(*v)),
                );
            }
            cells.push(s.example.error.clone().map_or(Cell::Empty, Cell::Text));
            Row { cells, class: s.example.error.is_some().then_some("failed") }
        })
        .collect();
    Table { columns, rows }
}

/// Cards of the run's summary: its scorer aggregates, then token usage, cost and status counts.
fn summary_cards(run: &RunSummary) -> Markup {
    let summary = run.summary();
    let all = metrics::summary_metrics(summary);
    let aggregates: Vec<_> = all
        .iter()
        .filter(|m| !m.name.starts_with("status_counts.") && !m.name.starts_with("usage."))
        .collect();
    let usage: Vec<_> = all.iter().filter(|m| m.name.starts_with("usage.")).collect();
    let counts: Vec<_> = all.iter().filter(|m| m.name.starts_with("status_counts.")).collect();
    let cost = summary.pointer("/weave/costs").filter(|c| c.as_object().is_some_and(|o| !o.is_empty()));
    html! {
        div.cards {
            @for m in &aggregates {
                div.card { div.label { (m.name) } div.value { (layout::number(m.value)) } }
            }
            @for m in &usage {
                div.card { div.label { (m.name) } div.value { (layout::number(m.value)) } }
            }
            @for m in &counts {
                div.card { div.label { (m.name) } div.value { (layout::number(m.value)) } }
            }
        }
        @if let Some(c) = cost { h2 { "Cost" } (pretty(c, 5_000)) }
    }
}

/// `GET /{entity}/{project}/weave/runs/{run_id}`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(path): Path<RunPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let p = params(raw.as_deref())?;
    let project = ProjectPath { entity: path.entity.clone(), project: path.project.clone() };
    let (id, run_id, query) = (project.id(), path.run_id.clone(), p.query.clone());
    let page = blocking(&state, move |s| run_view::read(s, &id, &run_id, &query)).await?;
    let base = project.base();
    let here = format!("{base}/runs/{}", layout::path_segment(&path.run_id));
    let table = examples_table(&page, &base);
    if p.format != Format::Html {
        return Ok(table.export(p.format, &format!("run-{}", path.run_id)));
    }
    let run = &page.run;
    let name = run.display_name.clone().unwrap_or_else(|| run.id().to_string());
    let offset = p.query.page.offset;
    let limit = p.query.page.limit.unwrap_or(PAGE_ROWS);
    let body = html! {
        h1 { (name) }
        dl.kv {
            dt { "evaluation" } dd { code { (run.evaluation()) } }
            dt { "model" } dd { code { (run.model()) } }
            dt { "status" } dd { (run.status()) }
            dt { "started" } dd { (layout::time(run.started_at)) }
            @if let Some(d) = run.duration() { dt { "duration" } dd { (layout::duration(d)) } }
            dt { "examples" } dd { (page.total) @if page.failed > 0 { " (" span.bad { (page.failed) " failed" } ")" } }
        }
        p.actions {
            a href=(format!("{base}/calls/{}", layout::path_segment(run.id()))) { "Call tree" }
            " · "
            a href=(format!("{base}/runs?{}", layout::query_string([("evaluation", run.evaluation())]))) { "Runs of this evaluation" }
        }
        h2 { "Summary" }
        (summary_cards(run))
        @if !page.metrics.is_empty() {
            h2 { "Distributions" }
            div.charts {
                @for m in &page.metrics {
                    @let bins = if m.kind == MetricKind::Boolean { 2 } else { 20 };
                    (charts::histogram(&m.name, &[(name.clone(), m.values.clone())], bins))
                }
            }
        }
        h2 #examples { "Examples" }
        form.filters method="get" action=(here) {
            label { "Failed only " input type="checkbox" name="failed" value="1" checked[p.query.failed_only]; }
            label { "Metric "
                select name="metric" {
                    option value="" { "—" }
                    @for m in &page.metrics { option value=(m.name) selected[m.name == p.metric] { (m.name) } }
                }
            }
            label { "below " input type="number" step="any" name="below" value=(p.below); }
            button type="submit" { "Filter" }
        }
        @if table.rows.is_empty() { p.empty { "No examples match." } }
        @else { (table.html(None)) }
        nav.pager {
            @if offset > 0 { a rel="prev" href=(p.link(&here, &[("offset", offset.saturating_sub(limit).to_string())])) { "← Previous" } }
            span { (page.matching) " matching; rows " (offset.min(page.matching) + u64::from(!page.shown.is_empty())) "–" (offset + page.shown.len() as u64) }
            @if offset + limit < page.matching { a rel="next" href=(p.link(&here, &[("offset", (offset + limit).to_string())])) { "Next →" } }
        }
        p.exports { "Export these rows: "
            a href=(p.link(&here, &[("format", "csv".into())])) { "CSV" } " · "
            a href=(p.link(&here, &[("format", "jsonl".into())])) { "JSONL" }
        }
    };
    let crumbs = [
        Crumb::link(project.id(), format!("{base}/runs")),
        Crumb::link("Runs", format!("{base}/runs")),
        Crumb::here(name.clone()),
    ];
    Ok(layout::page(StatusCode::OK, &name, Some(&viewer), &crumbs, body))
}
