//! The compare page (`/{entity}/{project}/weave/compare?runs=A,B[,…]&baseline=A`): per metric,
//! each run's value and its difference from the baseline with a 95% paired-bootstrap interval
//! (and an exact McNemar p-value for boolean scorers), counts of improved / regressed /
//! unchanged examples, charts, and an example-by-example table aligned by dataset row with the
//! outputs side by side and diffed against the baseline. Weave's own link shape
//! (`.../weave/compare-evaluations?evaluationCallIds=[...]`) redirects here.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::calls::pretty;
use super::charts::{self, Bar};
use super::layout::{self, Crumb};
use super::table::{Cell, Column, Format, Row, Table, short_json};
use super::{ProjectOf, UiError, Viewer, blocking, see_other};
use crate::domain::compare::Sort;
use crate::domain::compare_view::{self, ComparePage, CompareQuery};
use crate::domain::error::Error;
use crate::domain::metrics::{Direction, MetricKind};
use crate::domain::page::Page;
use crate::domain::validate::Query;
use crate::http::AppState;

const PAGE_ROWS: u64 = 50;
const MAX_PAGE_ROWS: u64 = 500;

/// Which table an export holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Metrics,
    Examples,
}

struct Params {
    query: CompareQuery,
    format: Format,
    which: Which,
    candidate_id: String,
    sort: String,
}

fn sort_of(name: &str) -> Result<Option<Sort>, Error> {
    Ok(match name {
        "" | "dataset" => None,
        "delta_asc" => Some(Sort::Ascending),
        "delta_desc" => Some(Sort::Descending),
        "regressed" => Some(Sort::RegressedFirst),
        "improved" => Some(Sort::ImprovedFirst),
        other => {
            return Err(Error::BadRequest(format!(
                "Unknown sort {other:?}: expected dataset, delta_asc, delta_desc, regressed or improved"
            )));
        }
    })
}

fn params(raw: Option<&str>) -> Result<Params, Error> {
    let q = Query::parse(raw);
    let named = q.list(&["runs", "run"])?;
    let (runs, baseline) = compare_view::order_runs(&named, q.get("baseline"))?;
    let candidate_id = q.get("candidate").unwrap_or("").to_string();
    let candidate = if candidate_id.is_empty() {
        0
    } else {
        runs.iter().skip(1).position(|r| *r == candidate_id).ok_or_else(|| {
            Error::BadRequest(format!("candidate {candidate_id} is not one of the runs compared"))
        })?
    };
    let sort = q.get("sort").unwrap_or("").to_string();
    let regressions_only = match q.get("regressions").unwrap_or("") {
        "" | "0" => false,
        "1" => true,
        other => return Err(Error::BadRequest(format!("regressions={other:?}: expected 1 or 0"))),
    };
    let which = match q.get("table").unwrap_or("metrics") {
        "metrics" | "" => Which::Metrics,
        "examples" => Which::Examples,
        other => return Err(Error::BadRequest(format!("table={other:?}: expected metrics or examples"))),
    };
    let page = Page::from_query(&q)?;
    let query = CompareQuery {
        runs,
        baseline,
        metric: q.get("metric").filter(|m| !m.is_empty()).map(String::from),
        candidate,
        sort: sort_of(&sort)?,
        regressions_only,
        page: Page {
            limit: Some(page.limit.unwrap_or(PAGE_ROWS).clamp(1, MAX_PAGE_ROWS)),
            offset: page.offset,
        },
    };
    Ok(Params { query, format: Format::parse(q.get("format"))?, which, candidate_id, sort })
}

impl Params {
    fn link(&self, here: &str, metric: &str, changes: &[(&str, String)]) -> String {
        let pairs: Vec<(&str, String)> = vec![
            ("runs", self.query.runs.join(",")),
            ("baseline", self.query.baseline.clone()),
            ("metric", metric.to_string()),
            ("candidate", self.candidate_id.clone()),
            ("sort", self.sort.clone()),
            ("regressions", if self.query.regressions_only { "1".into() } else { String::new() }),
            ("offset", self.query.page.offset.to_string()),
        ];
        layout::link_with(here, pairs, changes, &|_, _| false)
    }
}

fn run_label(page: &ComparePage, i: usize) -> String {
    let r = &page.runs[i];
    let model = layout::ref_label(r.model());
    let name = r.display_name.clone().unwrap_or_else(|| r.id().chars().take(8).collect());
    format!("{model} · {name}")
}

fn arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::HigherIsBetter => "↑ higher is better",
        Direction::LowerIsBetter => "↓ lower is better",
    }
}

/// The per-metric table: each run's mean, each candidate's delta, interval, p-value, counts.
fn metrics_table(page: &ComparePage) -> Table {
    let mut columns = vec![Column::plain("metric", "Metric"), Column::plain("direction", "Better")];
    for i in 0..page.runs.len() {
        columns.push(Column::plain(format!("mean.{}", page.runs[i].id()), run_label(page, i)));
    }
    for i in 1..page.runs.len() {
        let id = page.runs[i].id();
        let label = run_label(page, i);
        columns.push(Column::plain(format!("delta.{id}"), format!("Δ {label}")));
        columns.push(Column::plain(format!("ci_low.{id}"), "95% CI low"));
        columns.push(Column::plain(format!("ci_high.{id}"), "95% CI high"));
        columns.push(Column::plain(format!("p_value.{id}"), "McNemar p"));
        columns.push(Column::plain(format!("improved.{id}"), "improved"));
        columns.push(Column::plain(format!("regressed.{id}"), "regressed"));
        columns.push(Column::plain(format!("unchanged.{id}"), "unchanged"));
    }
    let rows = page
        .comparison
        .metrics
        .iter()
        .map(|m| {
            let mut cells = vec![
                Cell::Text(m.name.clone()),
                Cell::Text(if m.direction == Direction::LowerIsBetter { "lower" } else { "higher" }.into()),
            ];
            cells.extend(m.runs.iter().map(|r| r.mean.map_or(Cell::Empty, Cell::Num)));
            for r in m.runs.iter().skip(1) {
                match &r.vs_baseline {
                    Some(v) => {
                        let judged = m.direction.judge(0.0, v.delta);
                        let significant = v.low > 0.0 || v.high < 0.0;
                        let class = match (judged, significant) {
                            (Some(true), true) => "good",
                            (Some(false), true) => "bad",
                            _ => "muted",
                        };
                        let shown = html! { span class=(class) title={ "over " (v.n_shared) " shared examples" } {
                            @if v.delta > 0.0 { "+" } (layout::number(v.delta))
                        } };
                        cells.push(Cell::MarkedNum(shown, v.delta));
                        cells.push(Cell::Num(v.low));
                        cells.push(Cell::Num(v.high));
                        cells.push(v.p_value.map_or(Cell::Empty, Cell::Num));
                        cells.push(Cell::Num(v.improved as f64));
                        cells.push(Cell::Num(v.regressed as f64));
                        cells.push(Cell::Num(v.unchanged as f64));
                    }
                    None => cells.extend(std::iter::repeat_n(Cell::Empty, 7)),
                }
            }
            Row { cells, class: None }
        })
        .collect();
    Table { columns, rows }
}

/// A word diff of `text` against `base`: removed words struck, added ones marked.
fn diff(base: &str, text: &str) -> Markup {
    let (base, text) = (cut(base, 4_000), cut(text, 4_000));
    let d = similar::TextDiff::from_words(base.as_str(), text.as_str());
    html! {
        @for change in d.iter_all_changes() {
            @match change.tag() {
                similar::ChangeTag::Equal => { (change.value()) }
                similar::ChangeTag::Delete => { del.diff { (change.value()) } }
                similar::ChangeTag::Insert => { ins.diff { (change.value()) } }
            }
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn output_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// The example table: the row, each run's value of the metric and output, deltas.
fn examples_table(page: &ComparePage, base: &str) -> Table {
    let mut columns = vec![Column::plain("row", "Row"), Column::plain("inputs", "Inputs")];
    for i in 0..page.runs.len() {
        let id = page.runs[i].id();
        columns
            .push(Column::plain(format!("value.{id}"), format!("{} · {}", page.metric, run_label(page, i))));
        if i > 0 {
            columns.push(Column::plain(format!("delta.{id}"), "Δ"));
        }
        columns.push(Column::plain(format!("output.{id}"), "Output"));
    }
    let baseline_text =
        |row: &compare_view::ShownRow| row.examples[0].as_ref().map(|e| output_text(&e.output));
    let rows = page
        .rows
        .iter()
        .map(|row| {
            let key: String = row.row.row_key.chars().take(10).collect();
            let first_call = row.examples.iter().flatten().next().map(|e| e.call_id.clone()).unwrap_or_default();
            let mut cells = vec![
                Cell::Markup(
                    html! { a href=(format!("{base}/calls/{}", layout::path_segment(&first_call))) title=(row.row.row_key) { (key) } },
                    row.row.row_key.clone(),
                ),
                Cell::Json(row.inputs.clone()),
            ];
            let base_text = baseline_text(row);
            for (i, ex) in row.examples.iter().enumerate() {
                cells.push(row.row.values[i].map_or(Cell::Empty, Cell::Num));
                if i > 0 {
                    let d = row.row.deltas[i - 1];
                    let class = match d.and_then(|d| page.direction.judge(0.0, d)) {
                        Some(true) => "good",
                        Some(false) => "bad",
                        None => "muted",
                    };
                    cells.push(match d {
                        Some(d) => Cell::MarkedNum(html! { span class=(class) { @if d > 0.0 { "+" } (layout::number(d)) } }, d),
                        None => Cell::Empty,
                    });
                }
                cells.push(match ex {
                    None => Cell::Empty,
                    Some(e) => {
                        let text = output_text(&e.output);
                        let shown = match (&base_text, i) {
                            (Some(b), i) if i > 0 && *b != text => html! { div.json { (diff(b, &text)) } },
                            _ => html! { div.json { (cut(&text, 4_000)) } },
                        };
                        let shown = match &e.error {
                            Some(err) => html! { (shown) div.bad { (short_json(&Value::String(err.clone()), 200)) } },
                            None => shown,
                        };
                        Cell::Markup(shown, text)
                    }
                });
            }
            Row { cells, class: None }
        })
        .collect();
    Table { columns, rows }
}

/// The charts of a comparison: each metric's per-run means with the candidates' intervals,
/// the table metric's distributions, and its baseline-versus-candidate scatter.
fn charts_markup(page: &ComparePage) -> Markup {
    let labels: Vec<String> = (0..page.runs.len()).map(|i| run_label(page, i)).collect();
    html! {
        div.charts {
            @for m in &page.comparison.metrics {
                @let bars: Vec<Bar> = m.runs.iter().enumerate().filter_map(|(i, r)| {
                    let interval = r.vs_baseline.as_ref().map(|v| (v.baseline_mean + v.low, v.baseline_mean + v.high));
                    let value = match &r.vs_baseline { Some(v) => v.mean, None => r.mean? };
                    Some(Bar { label: labels[i].clone(), value, interval })
                }).collect();
                (charts::bars(&format!("{} ({})", m.name, arrow(m.direction)), &bars))
            }
        }
        @if !page.metric.is_empty() {
            div.charts {
                @let series: Vec<(String, Vec<f64>)> = labels.iter().cloned().zip(page.values.iter().cloned()).collect();
                @let boolean = page.comparison.metrics.iter().any(|m| m.name == page.metric && m.kind == MetricKind::Boolean);
                (charts::histogram(&format!("{}: distribution per run", page.metric), &series, if boolean { 2 } else { 20 }))
                @if page.runs.len() > 1 {
                    (charts::scatter(&format!("{}: per example", page.metric), &labels[0], &labels[1.min(labels.len() - 1)], &page.pairs))
                }
            }
        }
    }
}

/// `GET /{entity}/{project}/weave/compare`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    path: ProjectOf,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let p = params(raw.as_deref())?;
    let (project, query) = (path.id(), p.query.clone());
    let page = blocking(&state, move |s| compare_view::read(s, &project, &query)).await?;
    let base = path.base();
    let here = format!("{base}/compare");
    if p.format != Format::Html {
        let (table, name) = match p.which {
            Which::Metrics => (metrics_table(&page), "compare-metrics"),
            Which::Examples => (examples_table(&page, &base), "compare-examples"),
        };
        return Ok(table.export(p.format, name));
    }
    let metrics = metrics_table(&page);
    let examples = examples_table(&page, &base);
    let c = &page.comparison;
    let cand = p.query.candidate.min(page.runs.len().saturating_sub(2)) + 1;
    let offset = p.query.page.offset as usize;
    let limit = p.query.page.limit.unwrap_or(PAGE_ROWS) as usize;
    let link = |changes: &[(&str, String)]| p.link(&here, &page.metric, changes);
    let body = html! {
        h1 { "Compare " (page.runs.len()) " runs" }
        ol.runs {
            @for (i, r) in page.runs.iter().enumerate() {
                li {
                    span class=(format!("s{i}")) { "■ " }
                    a href=(format!("{base}/runs/{}", layout::path_segment(r.id()))) { (run_label(&page, i)) }
                    " — " code { (layout::ref_label(r.evaluation())) }
                    " · " (c.runs[i].examples) " examples"
                    @if i == 0 { " " strong { "(baseline)" } }
                    @else { " · " (c.runs[i].shared_with_baseline) " shared with the baseline · "
                        a href=(link(&[("baseline", r.id().to_string()), ("candidate", String::new())])) { "make baseline" } }
                }
            }
        }
        @if !c.same_examples { p.warning role="alert" { "These runs did not all see the same examples (different datasets, or examples missing): deltas are over the examples each pair shares." } }
        @if !c.same_metrics { p.warning role="alert" { "These runs do not all have the same metrics (different scorers): "
            @for r in &c.runs { @if !r.missing_metrics.is_empty() { (r.run_id.chars().take(8).collect::<String>()) " lacks " (r.missing_metrics.join(", ")) "; " } } } }
        h2 { "Metrics" }
        p.hint { "Δ is the candidate's mean minus the baseline's over the examples both have, with a "
            (format!("{:.0}%", c.level * 100.0)) " interval from a paired bootstrap (" (c.resamples) " resamples); "
            "boolean metrics also get an exact McNemar p-value. Green and red mark intervals that exclude zero." }
        (metrics.html(None))
        p.exports { "Export: " a href=(link(&[("format", "csv".into())])) { "CSV" } " · " a href=(link(&[("format", "jsonl".into())])) { "JSONL" } }
        h2 { "Charts" }
        (charts_markup(&page))
        h2 #examples { "Examples" }
        form.filters method="get" action=(here) {
            input type="hidden" name="runs" value=(p.query.runs.join(","));
            input type="hidden" name="baseline" value=(p.query.baseline);
            label { "Metric "
                select name="metric" { @for m in &c.metrics { option value=(m.name) selected[m.name == page.metric] { (m.name) } } }
            }
            @if page.runs.len() > 2 {
                label { "Against "
                    select name="candidate" { @for (i, r) in page.runs.iter().enumerate().skip(1) {
                        option value=(r.id()) selected[i == cand] { (run_label(&page, i)) } } }
                }
            }
            label { "Order "
                select name="sort" {
                    @for (v, l) in [("dataset", "dataset order"), ("regressed", "worst change first"), ("improved", "best change first"), ("delta_asc", "Δ ascending"), ("delta_desc", "Δ descending")] {
                        option value=(v) selected[p.sort == v || (p.sort.is_empty() && v == "dataset")] { (l) }
                    }
                }
            }
            label { "Regressions only " input type="checkbox" name="regressions" value="1" checked[p.query.regressions_only]; }
            button type="submit" { "Show" }
        }
        @if examples.rows.is_empty() { p.empty { "No examples match." } } @else { (examples.html(None)) }
        nav.pager {
            @if offset > 0 { a rel="prev" href=(link(&[("offset", offset.saturating_sub(limit).to_string())])) { "← Previous" } }
            span { (page.matching) " rows" }
            @if offset + limit < page.matching { a rel="next" href=(link(&[("offset", (offset + limit).to_string())])) { "Next →" } }
        }
        p.exports { "Export these rows: "
            a href=(link(&[("format", "csv".into()), ("table", "examples".into())])) { "CSV" } " · "
            a href=(link(&[("format", "jsonl".into()), ("table", "examples".into())])) { "JSONL" } }
        @if let Some(first) = page.rows.first() {
            details { summary { "First row's inputs in full" } (pretty(&first.inputs, 20_000)) }
        }
    };
    let crumbs = [Crumb::link(path.id(), format!("{base}/runs")), Crumb::here("Compare")];
    Ok(layout::page(StatusCode::OK, "Compare", Some(&viewer), &crumbs, body))
}

/// `GET /{entity}/{project}/weave/compare-evaluations?evaluationCallIds=[...]`: Weave's link
/// shape, redirected to the compare page.
pub async fn weave_link(
    viewer: Viewer,
    path: ProjectOf,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let q = Query::parse(raw.as_deref());
    let given = q.get("evaluationCallIds").unwrap_or("");
    let ids: Vec<String> = match serde_json::from_str::<Vec<String>>(given) {
        Ok(ids) => ids,
        Err(_) => given
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    let (runs, _) = compare_view::order_runs(&ids, None)?;
    let joined = runs.join(",");
    Ok(see_other(&format!("{}/compare?{}", path.base(), layout::query_string([("runs", joined.as_str())]))))
}
