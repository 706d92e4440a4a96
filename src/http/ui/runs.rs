//! The runs page (`/{entity}/{project}/weave`, the link the SDK prints, and `.../weave/runs`):
//! every evaluation run of a project with its evaluation, model, status, start, duration and
//! scorer aggregates (one numeric column per metric found on the page, `m:<dotted path>`);
//! filters, sorting by any column, paging; runs picked to compare.
//!
//! Newest first (the default) or oldest first, pages are read from the store from a cursor,
//! `(started_at, id)`, that the "Older →" and "← Newer" links carry (`?after=` / `?before=`):
//! every page costs about the same however many runs the project has, and paging while runs
//! are added skips none and repeats none. The evaluation and model filters (selects of the
//! project's evaluations and models) are read through the store's indexes too; the status
//! filter and the search apply to the rows as they stream, so a rare match scans. Sorting by
//! any other column (evaluation, model, status, duration, name, a metric) ranks the matching
//! runs in memory and pages by offset, up to `run_table::MAX_RANKED` rows deep.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout::{self, Crumb};
use super::table::{Cell, Column, Format, Row, Sorting, Table};
use super::{ProjectOf, UiError, Viewer, blocking};
use crate::domain::error::Error;
use crate::domain::page::Page;
use crate::domain::run_rows::{RunCursor, RunDimension};
use crate::domain::run_table::{self, Position, RunPage, RunSort, RunSummary, RunTableQuery};
use crate::domain::validate::Query;
use crate::http::AppState;

/// Rows per page by default, and at most.
const PAGE_ROWS: u64 = 50;
const MAX_PAGE_ROWS: u64 = 500;

/// Most evaluations and models the filters offer.
const MAX_CHOICES: usize = 1_000;

/// The page's query string, parsed.
struct Params {
    table: RunTableQuery,
    format: Format,
    evaluation: String,
    model: String,
    status: String,
    text: String,
}

/// A query-string error as a 400 (the page has no field-by-field error shape).
pub fn bad_request(e: Error) -> Error {
    match e {
        Error::Validation(issues) => Error::BadRequest(
            issues
                .iter()
                .map(|i| format!("{}: {}", i.loc.last().map_or(String::new(), |l| l.to_string()), i.msg))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => other,
    }
}

fn params(raw: Option<&str>) -> Result<Params, Error> {
    let q = Query::parse(raw);
    let one = |k: &str| q.get(k).unwrap_or("").trim().to_string();
    let (evaluation, model, status, text) = (one("evaluation"), one("model"), one("status"), one("q"));
    if !["", "running", "completed", "failed"].contains(&status.as_str()) {
        return Err(Error::BadRequest(format!(
            "Unknown status {status:?}: expected running, completed or failed"
        )));
    }
    let page = Page::from_query(&q).map_err(bad_request)?;
    let limit = page.limit.unwrap_or(PAGE_ROWS).clamp(1, MAX_PAGE_ROWS);
    let sort = RunSort::parse(q.get("sort"), q.get("dir"))?;
    let cursor = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(RunCursor::decode).transpose();
    let position = match (cursor("after")?, cursor("before")?) {
        (None, None) => Position::Start,
        (Some(c), None) => Position::After(c),
        (None, Some(c)) => Position::Before(c),
        (Some(_), Some(_)) => return Err(Error::BadRequest("Give after or before, not both".into())),
    };
    if position != Position::Start && sort.key != "started" {
        return Err(Error::BadRequest("after and before page a list sorted by start only".into()));
    }
    let table = RunTableQuery {
        evaluations: if evaluation.is_empty() { vec![] } else { vec![evaluation.clone()] },
        models: if model.is_empty() { vec![] } else { vec![model.clone()] },
        status: (!status.is_empty()).then(|| status.clone()),
        text: (!text.is_empty()).then(|| text.clone()),
        sort,
        page: Page { limit: Some(limit), offset: page.offset },
        position,
    };
    Ok(Params { table, format: Format::parse(q.get("format"))?, evaluation, model, status, text })
}

impl Params {
    /// This page's query string with some parameters changed (an empty value drops one).
    fn link(&self, base: &str, changes: &[(&str, String)]) -> String {
        let sort = &self.table.sort;
        let (after, before) = match &self.table.position {
            Position::Start => (String::new(), String::new()),
            Position::After(c) => (c.encode(), String::new()),
            Position::Before(c) => (String::new(), c.encode()),
        };
        let pairs: Vec<(&str, String)> = vec![
            ("evaluation", self.evaluation.clone()),
            ("model", self.model.clone()),
            ("status", self.status.clone()),
            ("q", self.text.clone()),
            ("sort", sort.key.clone()),
            ("dir", if sort.descending { "desc" } else { "asc" }.to_string()),
            ("offset", self.table.page.offset.to_string()),
            ("after", after),
            ("before", before),
            ("limit", self.table.page.limit.unwrap_or(PAGE_ROWS).to_string()),
        ];
        let started = self.table.sort.key == "started";
        let omit = |k: &str, v: &str| {
            k == "limit" && v == PAGE_ROWS.to_string()
                || k == "sort" && v == "started"
                || k == "dir" && v == "desc" && started
        };
        layout::link_with(&format!("{base}/runs"), pairs, changes, &omit)
    }
}

/// Metric columns a page of runs shows at most.
const MAX_METRICS: usize = 12;

/// A metric's column header: its summary path without the aggregate's name
/// (`exact.correct.true_fraction` → `exact.correct`).
fn metric_label(path: &str) -> &str {
    path.strip_suffix(".true_fraction").or_else(|| path.strip_suffix(".mean")).unwrap_or(path)
}

/// A ref's cell: its short name on one line (the whole ref in its title); exports keep the name.
fn ref_cell(r: &str) -> Cell {
    let label = layout::ref_label(r).to_string();
    Cell::Markup(html! { span.ref title=(r) { (label) } }, label)
}

/// The table of a page of runs: the run's fields, then a column per scorer metric of the runs
/// shown (keyed `m:<summary path>`, the key that sorts by it).
pub fn runs_table(runs: &[RunSummary], base: &str, metrics: &[String]) -> Table {
    let mut columns = vec![
        Column::sortable("run", "Run"),
        Column::sortable("evaluation", "Evaluation"),
        Column::sortable("model", "Model"),
        Column::sortable("status", "Status"),
        Column::sortable("started", "Started"),
        Column::sortable("duration", "Duration"),
    ];
    columns.extend(metrics.iter().map(|m| Column::sortable(format!("m:{m}"), metric_label(m))));
    let rows = runs
        .iter()
        .map(|r| {
            let name = r.display_name.clone().unwrap_or_else(|| r.id().to_string());
            let href = format!("{base}/runs/{}", layout::path_segment(r.id()));
            let pick = html! {
                input type="checkbox" name="run" value=(r.id()) aria-label={ "Compare " (name) };
                " "
                a href=(href) { (name) }
            };
            let mut cells = vec![
                Cell::Markup(pick, r.id().to_string()),
                ref_cell(r.evaluation()),
                ref_cell(r.model()),
                Cell::Text(r.status().to_string()),
                Cell::Time(r.started_at),
                r.duration().map_or(Cell::Empty, Cell::Seconds),
            ];
            cells.extend(metrics.iter().map(|m| r.metric(m).map_or(Cell::Empty, Cell::Num)));
            Row { cells, class: (r.status() == "failed").then_some("failed") }
        })
        .collect();
    Table { columns, rows }
}

/// The choices of a filter: the store's values, and the current one if it is not among them.
fn choices(mut values: Vec<String>, current: &str) -> Vec<String> {
    if !current.is_empty() && !values.iter().any(|v| v == current) {
        values.insert(0, current.to_string());
    }
    values
}

/// `GET /{entity}/{project}/weave` and `/{entity}/{project}/weave/runs`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    path: ProjectOf,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let p = params(raw.as_deref())?;
    let (project, query) = (path.id(), p.table.clone());
    let html = p.format == Format::Html;
    let (page, evaluations, models) = blocking(&state, move |s| {
        let page = run_table::list(s, &project, &query)?;
        let (e, m) = if html {
            (
                s.run_values(&project, RunDimension::Evaluation, MAX_CHOICES)?,
                s.run_values(&project, RunDimension::Model, MAX_CHOICES)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok((page, e, m))
    })
    .await?;
    let RunPage { rows: runs, .. } = &page;
    let mut metrics = run_table::column_metrics(runs, MAX_METRICS);
    if let Some(m) = p.table.sort.key.strip_prefix("m:")
        && !metrics.iter().any(|x| x == m)
    {
        metrics.push(m.to_string());
    }
    let base = path.base();
    let table = runs_table(runs, &base, &metrics);
    if !html {
        return Ok(table.export(p.format, &format!("{}-runs", path.project)));
    }
    let link = |key: &str, desc: bool| {
        let key = if key == "run" { "name" } else { key };
        p.link(
            &base,
            &[
                ("sort", key.to_string()),
                ("dir", if desc { "desc" } else { "asc" }.to_string()),
                ("offset", String::new()),
                ("after", String::new()),
                ("before", String::new()),
            ],
        )
    };
    let sort_key = if p.table.sort.key == "name" { "run" } else { p.table.sort.key.as_str() };
    let sorting = Sorting { key: sort_key, descending: p.table.sort.descending, link: &link };
    let offset = p.table.page.offset;
    let limit = p.table.page.limit.unwrap_or(PAGE_ROWS);
    let by_start = p.table.sort.key == "started";
    let (prev_label, next_label) = match (by_start, p.table.sort.descending) {
        (true, true) => ("← Newer", "Older →"),
        (true, false) => ("← Older", "Newer →"),
        _ => ("← Previous", "Next →"),
    };
    let clear = |k: &'static str| (k, String::new());
    let (prev, next, first) = if by_start {
        (
            page.prev().map(|c| p.link(&base, &[clear("offset"), clear("after"), ("before", c.encode())])),
            page.next().map(|c| p.link(&base, &[clear("offset"), clear("before"), ("after", c.encode())])),
            page.more_before.then(|| p.link(&base, &[clear("offset"), clear("after"), clear("before")])),
        )
    } else {
        (
            (offset > 0).then(|| p.link(&base, &[("offset", offset.saturating_sub(limit).to_string())])),
            page.more_after.then(|| p.link(&base, &[("offset", (offset + limit).to_string())])),
            None,
        )
    };
    let evaluations = choices(evaluations, &p.evaluation);
    let models = choices(models, &p.model);
    let body = html! {
        h1 { "Evaluation runs" }
        nav.tabs {
            a.current href=(format!("{base}/runs")) { "Runs" }
            a href=(format!("{base}/leaderboard")) { "Leaderboard" }
        }
        form.filters method="get" action=(format!("{base}/runs")) {
            label { "Evaluation "
                select name="evaluation" {
                    option value="" selected[p.evaluation.is_empty()] { "any" }
                    @for e in &evaluations {
                        option value=(e) selected[p.evaluation == *e] { (layout::ref_short(e)) }
                    }
                }
            }
            label { "Model "
                select name="model" {
                    option value="" selected[p.model.is_empty()] { "any" }
                    @for m in &models {
                        option value=(m) selected[p.model == *m] { (layout::ref_short(m)) }
                    }
                }
            }
            label { "Status "
                select name="status" {
                    @for s in ["", "running", "completed", "failed"] {
                        option value=(s) selected[p.status == s] { @if s.is_empty() { "any" } @else { (s) } }
                    }
                }
            }
            label { "Search " input type="search" name="q" value=(p.text); }
            input type="hidden" name="sort" value=(p.table.sort.key);
            input type="hidden" name="dir" value=(if p.table.sort.descending { "desc" } else { "asc" });
            button type="submit" { "Filter" }
        }
        @if table.rows.is_empty() {
            p.empty { "No evaluation runs match." }
        } @else {
            form method="get" action=(format!("{base}/compare")) {
                (table.html(Some(&sorting)))
                p.actions {
                    button type="submit" { "Compare selected" }
                    " (2 to 8 runs)"
                }
            }
        }
        nav.pager {
            @if let Some(href) = &first {
                a rel="first" href=(href) { @if p.table.sort.descending { "Newest" } @else { "Oldest" } }
            }
            @if let Some(href) = &prev {
                a rel="prev" href=(href) { (prev_label) }
            }
            @if by_start {
                span { (table.rows.len()) " runs" }
            } @else {
                span { "Rows " (offset + 1) "–" (offset + table.rows.len() as u64) }
            }
            @if let Some(href) = &next {
                a rel="next" href=(href) { (next_label) }
            }
        }
        @if !by_start {
            p.hint { "Sorted by this column, runs are ranked in memory: pages go "
                (run_table::MAX_RANKED) " rows deep at most." }
        }
        p.exports { "Export this page: "
            a href=(p.link(&base, &[("format", "csv".into())])) { "CSV" } " · "
            a href=(p.link(&base, &[("format", "jsonl".into())])) { "JSONL" }
        }
    };
    let crumbs = [Crumb::link(path.id(), format!("{base}/runs")), Crumb::here("Runs")];
    Ok(layout::page(StatusCode::OK, &format!("Runs · {}", path.id()), Some(&viewer), &crumbs, body))
}
