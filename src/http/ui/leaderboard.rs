//! The leaderboard page (`/{entity}/{project}/weave/leaderboard`): models × evaluations, one
//! metric (`?metric=<dotted path>`, the first found by default), per cell the latest run of
//! the pair (`?pick=latest`) or its best (`?pick=best`), `?lower=1` when lower is better (by
//! default guessed from the metric's name). Cells are shaded by how good they are within
//! their evaluation's column, the best of each column is marked, and each links to its run.
//! `?format=csv|jsonl` exports the same cells.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout::{self, Crumb};
use super::table::{Cell, Column, Format, Row, Table};
use super::{ProjectOf, UiError, Viewer, blocking};
use crate::domain::error::Error;
use crate::domain::leaderboard::{self, Leaderboard, LeaderboardQuery, Pick};
use crate::domain::validate::Query;
use crate::http::AppState;

/// The page's query string, parsed.
struct Params {
    query: LeaderboardQuery,
    format: Format,
}

fn params(raw: Option<&str>) -> Result<Params, Error> {
    let q = Query::parse(raw);
    let metric = q.get("metric").map(str::trim).filter(|m| !m.is_empty()).map(String::from);
    let lower = match q.get("lower").unwrap_or("") {
        "" => None,
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        other => return Err(Error::BadRequest(format!("Bad lower {other:?}: expected 1 or 0"))),
    };
    let query = LeaderboardQuery { metric, pick: Pick::parse(q.get("pick"))?, lower };
    Ok(Params { query, format: Format::parse(q.get("format"))? })
}

/// The leaderboard as a table: a row per model, a column per evaluation.
fn leaderboard_table(lb: &Leaderboard, base: &str) -> Table {
    let mut columns = vec![Column::plain("model", "Model")];
    columns.extend(lb.evaluations.iter().map(|e| Column::plain(e.clone(), layout::ref_short(e))));
    let rows = lb
        .models
        .iter()
        .zip(&lb.cells)
        .map(|(model, cells)| {
            let mut row = vec![Cell::Markup(
                html! { span title=(model) { (layout::ref_short(model)) } },
                model.clone(),
            )];
            row.extend(cells.iter().map(|cell| {
                let Some(c) = cell else { return Cell::Empty };
                let href = format!("{base}/runs/{}", layout::path_segment(c.run.id()));
                let inner = match c.value {
                    Some(v) => Cell::NumLink(v, href),
                    None => Cell::Empty,
                };
                let mut class = c.heat.map(|h| format!("h{h}")).unwrap_or_default();
                if c.best {
                    class.push_str(" best");
                }
                if class.is_empty() { inner } else { Cell::Styled(Box::new(inner), class.trim().to_string()) }
            }));
            Row { cells: row, class: None }
        })
        .collect();
    Table { columns, rows }
}

/// `GET /{entity}/{project}/weave/leaderboard`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    path: ProjectOf,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    viewer.check_entity(&path.entity)?;
    let p = params(raw.as_deref())?;
    let (project, query) = (path.id(), p.query.clone());
    let lb = blocking(&state, move |s| leaderboard::build(s, &project, &query)).await?;
    let base = path.base();
    let table = leaderboard_table(&lb, &base);
    if p.format != Format::Html {
        return Ok(table.export(p.format, &format!("{}-leaderboard", path.project)));
    }
    let metric = lb.metric.clone().unwrap_or_default();
    let mut metrics = lb.metrics.clone();
    if !metric.is_empty() && !metrics.contains(&metric) {
        metrics.insert(0, metric.clone());
    }
    let lower = match p.query.lower {
        None => "",
        Some(true) => "1",
        Some(false) => "0",
    };
    let export = |format: &str| {
        let pairs = [
            ("metric", metric.as_str()),
            ("pick", p.query.pick.as_str()),
            ("lower", lower),
            ("format", format),
        ];
        format!(
            "{base}/leaderboard?{}",
            layout::query_string(pairs.into_iter().filter(|(_, v)| !v.is_empty()))
        )
    };
    let body = html! {
        h1 { "Leaderboard" }
        nav.tabs {
            a href=(format!("{base}/runs")) { "Runs" }
            a.current href=(format!("{base}/leaderboard")) { "Leaderboard" }
        }
        form.filters method="get" action=(format!("{base}/leaderboard")) {
            label { "Metric "
                select name="metric" {
                    @for m in &metrics {
                        option value=(m) selected[*m == metric] { (m) }
                    }
                }
            }
            label { "Run per cell "
                select name="pick" {
                    option value="latest" selected[p.query.pick == Pick::Latest] { "latest" }
                    option value="best" selected[p.query.pick == Pick::Best] { "best" }
                }
            }
            label { "Better is "
                select name="lower" {
                    option value="" selected[lower.is_empty()] {
                        "guessed (" @if lb.lower_is_better { "lower" } @else { "higher" } ")"
                    }
                    option value="0" selected[lower == "0"] { "higher" }
                    option value="1" selected[lower == "1"] { "lower" }
                }
            }
            button type="submit" { "Show" }
        }
        @if table.rows.is_empty() {
            p.empty { "No runs name both an evaluation and a model yet." }
        } @else {
            p.hint {
                (if metric.is_empty() { "No numeric metric found" } else { metric.as_str() })
                ", " (if p.query.pick == Pick::Best { "best run" } else { "latest run" }) " per cell; "
                (if lb.lower_is_better { "lower" } else { "higher" }) " is better; ★ marks the best of each evaluation."
            }
            (table.html(None))
            p.exports { "Export: "
                a href=(export("csv")) { "CSV" } " · "
                a href=(export("jsonl")) { "JSONL" }
            }
        }
    };
    let crumbs = [Crumb::link(path.id(), format!("{base}/runs")), Crumb::here("Leaderboard")];
    Ok(layout::page(StatusCode::OK, &format!("Leaderboard · {}", path.id()), Some(&viewer), &crumbs, body))
}
