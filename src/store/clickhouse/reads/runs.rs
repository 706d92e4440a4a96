//! Run lists (evaluation runs, the latest run of each pair, the values runs take) and the
//! projects' summaries.

use std::collections::HashMap;

use super::limit_offset;
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::run_rows::{RunDimension, RunQuery, RunRow};
use crate::domain::store::ProjectSummary;
use crate::store::clickhouse::IN_CHUNK;
use crate::store::clickhouse::client::{Client, Query};
use crate::store::clickhouse::rows::FAILED_VIEW;

/// A row of a run list as `call_views` holds it (what the list shows), then `X`: whether a
/// call of its trace other than itself failed ([`RunTuple`]), or its trace ([`HeldTuple`]).
type ViewTuple<X> = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<Micros>,
    bool,
    Option<String>,
    Option<String>,
    X,
);

/// A row of a run list.
type RunTuple = ViewTuple<bool>;

/// The run list's row of `t`.
fn run_row<X>(t: &ViewTuple<X>, descendant_failed: bool) -> RunRow<'_> {
    RunRow {
        id: &t.0,
        evaluation: t.1.as_deref().unwrap_or(""),
        model: t.2.as_deref().unwrap_or(""),
        source_run_id: t.3.as_deref(),
        display_name: t.4.as_deref(),
        op_name: &t.5,
        started_at: t.6,
        ended_at: t.7,
        failed: t.8,
        descendant_failed,
        summary: t.9.as_deref(),
        output: t.10.as_deref(),
    }
}

/// Streams the runs of project `p` that `page` selects from `call_views` (their rows there
/// carry what the list shows), in the outer `order`, each with whether a call of its trace
/// other than itself failed (from the `failed` rows of the same traces).
fn stream_runs(
    client: &Client,
    q: &mut Query,
    p: &str,
    page: &str,
    order: &str,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    q.push(&format!(
        "WITH page AS ({page}) \
         SELECT r.id, r.evaluation, r.model, r.run_id, r.display_name, r.op_name, \
           toUnixTimestamp64Micro(r.started_at), toUnixTimestamp64Micro(r.ended_at), \
           r.failed, r.summary, r.output, toBool(f.n > toUInt64(r.failed)) \
         FROM page AS r \
         LEFT JOIN (SELECT trace_id, count() AS n FROM call_views FINAL \
               WHERE project_id = {p} AND kind = '{FAILED_VIEW}' AND NOT deleted \
                 AND trace_id IN (SELECT trace_id FROM page) \
               GROUP BY trace_id) AS f ON f.trace_id = r.trace_id \
         {order} FORMAT JSONCompactEachRow"
    ));
    client.query_rows::<RunTuple>(q, &mut |t| {
        let row = run_row(&t, t.11);
        Ok(sink(&row))
    })
}

/// The `FROM` of the live runs of project `p` in `call_views` passing `filters`; `prewhere`
/// (a ` PREWHERE` on key columns only, exact before `FINAL` merges a row's versions, or empty)
/// lets ClickHouse read the other columns of the rows it keeps only.
fn live_runs(p: &str, prewhere: &str, filters: &str) -> String {
    format!(
        "FROM call_views FINAL{prewhere} WHERE project_id = {p} AND kind = 'run' AND NOT deleted{filters}"
    )
}

/// The runs `from` ([`live_runs`]) selects, with what a run list shows, ending with `tail`
/// (their order and window).
fn runs_index(from: &str, tail: &str) -> String {
    format!(
        "SELECT id, trace_id, evaluation, model, run_id, display_name, op_name, started_at, \
           ended_at, failed, summary, output {from}{tail}"
    )
}

pub(super) fn eval_runs(
    client: &Client,
    project: &str,
    query: &RunQuery,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    let mut q = Query::default();
    let mut filters = String::new();
    for (column, values) in [("evaluation", &query.evaluations), ("model", &query.models)] {
        if !values.is_empty() {
            filters.push_str(&format!(" AND {column} IN {}", q.strings(values)));
        }
    }
    // `id` is a key column of `call_views`: filtered before `FINAL`, the runs named are the
    // only rows whose other columns are read.
    let prewhere = if query.ids.is_empty() {
        String::new()
    } else {
        format!(" PREWHERE id IN {}", q.strings(&query.ids))
    };
    let dir = if query.newest_first { "DESC" } else { "ASC" };
    if let Some(c) = &query.after {
        let cmp = if query.newest_first { "<" } else { ">" };
        let (t, id) = (q.int(c.started_at), q.string(&c.id));
        filters.push_str(&format!(" AND (toUnixTimestamp64Micro(started_at), id) {cmp} ({t}, {id})"));
    }
    let p = q.string(project);
    // The window from the runs' rows of the index (in its order), then only its traces'
    // failures.
    let window = if query.page.limit.is_some() || query.page.offset > 0 {
        limit_offset(&mut q, query.page)
    } else {
        String::new()
    };
    let tail = format!(" ORDER BY started_at {dir}, id {dir}{window}");
    let held = query.page.limit.map(|l| l <= HELD_WINDOW).unwrap_or(false)
        || (!query.ids.is_empty() && query.ids.len() as u64 <= HELD_WINDOW);
    if held {
        return held_window(client, q, project, &live_runs(&p, &prewhere, &filters), &tail, sink);
    }
    let page = runs_index(&live_runs(&p, &prewhere, &filters), &tail);
    let order = format!("ORDER BY r.started_at {dir}, r.id {dir}");
    stream_runs(client, &mut q, &p, &page, &order, sink)
}

/// Most runs of a window read as two queries ([`held_window`]).
const HELD_WINDOW: u64 = 1000;

/// A row of [`held_window`]'s first query: what the list shows and the run's trace (whether
/// another call of it failed is read next).
type HeldTuple = ViewTuple<String>;

/// A window of at most [`HELD_WINDOW`] runs in two queries, where one would read the window
/// twice (ClickHouse evaluates a `WITH` subquery where it is used): the window's rows from
/// `call_views` (held), then the failed calls of their traces, by the traces' ids.
fn held_window(
    client: &Client,
    mut q: Query,
    project: &str,
    from: &str,
    tail: &str,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    q.push(&format!(
        "SELECT id, evaluation, model, run_id, display_name, op_name, \
           toUnixTimestamp64Micro(started_at), toUnixTimestamp64Micro(ended_at), failed, summary, \
           output, trace_id {from}{tail} FORMAT JSONCompactEachRow"
    ));
    let rows: Vec<HeldTuple> = client.query_all(&q)?;
    let mut traces: Vec<&str> = rows.iter().map(|t| t.11.as_str()).collect();
    traces.sort_unstable();
    traces.dedup();
    let mut failures: HashMap<String, u64> = HashMap::new();
    for chunk in traces.chunks(IN_CHUNK) {
        let mut f = Query::default();
        let (p, list) = (f.string(project), f.strings(chunk));
        f.push(&format!(
            "SELECT trace_id, count() FROM call_views FINAL WHERE project_id = {p} \
             AND kind = '{FAILED_VIEW}' AND NOT deleted AND trace_id IN {list} GROUP BY trace_id \
             FORMAT JSONCompactEachRow"
        ));
        failures.extend(client.query_all::<(String, u64)>(&f)?);
    }
    for t in &rows {
        let failed_in_trace = failures.get(&t.11).copied().unwrap_or(0);
        let row = run_row(t, failed_in_trace > u64::from(t.8));
        if !sink(&row) {
            break;
        }
    }
    Ok(())
}

pub(super) fn run_values(
    client: &Client,
    project: &str,
    dimension: RunDimension,
    max: usize,
) -> Result<Vec<String>> {
    let column = crate::store::run_column(dimension);
    let mut q = Query::default();
    let (p, n) = (q.string(project), q.uint(max as u64));
    q.push(&format!(
        "SELECT {column} FROM call_views FINAL WHERE project_id = {p} AND kind = 'run' \
         AND NOT deleted AND {column} IS NOT NULL AND {column} != '' \
         GROUP BY {column} ORDER BY {column} LIMIT {n} FORMAT JSONCompactEachRow"
    ));
    super::names(client, &q)
}

pub(super) fn latest_runs(
    client: &Client,
    project: &str,
    max_pairs: usize,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    let mut q = Query::default();
    let (p, n) = (q.string(project), q.uint(max_pairs as u64));
    let filters = " AND evaluation IS NOT NULL AND evaluation != '' AND model IS NOT NULL AND model != ''";
    // The newest run of each pair: sorted newest first within the pair, one row by pair.
    let page = runs_index(
        &live_runs(&p, "", filters),
        &format!(
            " ORDER BY evaluation, model, started_at DESC, id DESC LIMIT 1 BY evaluation, model LIMIT {n}"
        ),
    );
    let order = format!("ORDER BY r.evaluation, r.model LIMIT {n}");
    stream_runs(client, &mut q, &p, &page, &order, sink)
}

pub(super) fn projects(client: &Client, sink: &mut dyn FnMut(ProjectSummary) -> bool) -> Result<()> {
    let q = Query::new(
        "SELECT project_id, countIf(kind = 'run'), \
           toUnixTimestamp64Micro(if(countIf(kind = 'run') > 0, maxIf(started_at, kind = 'run'), max(started_at))) \
         FROM calls FINAL WHERE deleted_at IS NULL GROUP BY project_id ORDER BY project_id \
         FORMAT JSONCompactEachRow"
            .to_string(),
    );
    client.query_rows::<(String, u64, Micros)>(&q, &mut |(project_id, runs, last_activity)| {
        Ok(sink(ProjectSummary { project_id, runs, last_activity }))
    })
}
