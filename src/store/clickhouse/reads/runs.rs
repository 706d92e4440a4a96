//! Run lists (evaluation runs, the latest run of each pair, the values runs take) and the
//! projects' summaries.

use super::limit_offset;
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::run_rows::{RunDimension, RunQuery, RunRow};
use crate::domain::store::ProjectSummary;
use crate::store::clickhouse::client::{Client, Query};

/// A row of a run list.
type RunTuple = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<Micros>,
    bool,
    bool,
    Option<String>,
    Option<String>,
);

/// Which runs a run list reads: those passing `filters` (SQL over the calls table, after its
/// own conditions), the inner select ending with `inner`; or, for a window, the ids a `page`
/// CTE (`id`, `trace_id`) selects, whose traces alone are then read for failed descendants.
struct Selection<'a> {
    filters: &'a str,
    inner: &'a str,
    /// `WITH page AS (...)`, over the same conditions, when a window is read.
    page: Option<String>,
}

/// Streams the runs `sel` selects of `project`, in the outer `order`.
fn stream_runs(
    client: &Client,
    q: &mut Query,
    p: &str,
    sel: &Selection<'_>,
    order: &str,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    let Selection { filters, inner, page } = sel;
    let (with, in_page, traces_in_page) = match page {
        Some(cte) => (
            format!("{cte} "),
            " AND id IN (SELECT id FROM page)",
            " AND trace_id IN (SELECT trace_id FROM page)",
        ),
        None => (String::new(), "", ""),
    };
    q.push(&format!(
        "{with}SELECT r.id, r.evaluation, r.model, r.run_id, r.display_name, r.op_name, \
           toUnixTimestamp64Micro(r.started_at), toUnixTimestamp64Micro(r.ended_at), \
           toBool(r.exception IS NOT NULL), toBool(f.n > toUInt64(r.exception IS NOT NULL)), \
           r.summary, if(r.logged_run, r.output, NULL) \
         FROM (SELECT id, trace_id, evaluation, model, run_id, display_name, op_name, started_at, \
                 ended_at, exception, summary, output, logged_run \
               FROM calls FINAL WHERE project_id = {p} AND kind = 'run' AND deleted_at IS NULL{filters}{in_page}{inner}) AS r \
         LEFT JOIN (SELECT trace_id, count() AS n FROM calls FINAL \
               WHERE project_id = {p} AND exception IS NOT NULL AND deleted_at IS NULL{traces_in_page} \
               GROUP BY trace_id) AS f ON f.trace_id = r.trace_id \
         {order} FORMAT JSONCompactEachRow"
    ));
    client.query_rows::<RunTuple>(q, &mut |t| {
        let row = RunRow {
            id: &t.0,
            evaluation: t.1.as_deref().unwrap_or(""),
            model: t.2.as_deref().unwrap_or(""),
            source_run_id: t.3.as_deref(),
            display_name: t.4.as_deref(),
            op_name: &t.5,
            started_at: t.6,
            ended_at: t.7,
            failed: t.8,
            descendant_failed: t.9,
            summary: t.10.as_deref(),
            output: t.11.as_deref(),
        };
        Ok(sink(&row))
    })
}

pub(super) fn eval_runs(
    client: &Client,
    project: &str,
    query: &RunQuery,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    let mut q = Query::default();
    let mut filters = String::new();
    for (column, values) in [("evaluation", &query.evaluations), ("model", &query.models), ("id", &query.ids)]
    {
        if !values.is_empty() {
            filters.push_str(&format!(" AND {column} IN {}", q.strings(values)));
        }
    }
    let dir = if query.newest_first { "DESC" } else { "ASC" };
    if let Some(c) = &query.after {
        let cmp = if query.newest_first { "<" } else { ">" };
        let (t, id) = (q.int(c.started_at), q.string(&c.id));
        filters.push_str(&format!(" AND (toUnixTimestamp64Micro(started_at), id) {cmp} ({t}, {id})"));
    }
    let p = q.string(project);
    let order = format!("ORDER BY r.started_at {dir}, r.id {dir}");
    // A window, or runs named by id: their ids first, from the narrow columns the order and
    // filters need, then only those rows whole and only their traces' failures; the whole
    // list is read in one pass.
    let page = if query.page.limit.is_some() || !query.ids.is_empty() {
        let window = limit_offset(&mut q, query.page);
        Some(format!(
            "WITH page AS (SELECT id, trace_id FROM calls FINAL WHERE project_id = {p} AND kind = 'run' \
             AND deleted_at IS NULL{filters} ORDER BY started_at {dir}, id {dir}{window})"
        ))
    } else if query.page.offset > 0 {
        let window = limit_offset(&mut q, query.page);
        let sel = Selection { filters: &filters, inner: "", page: None };
        return stream_runs(client, &mut q, &p, &sel, &format!("{order}{window}"), sink);
    } else {
        None
    };
    let sel = Selection { filters: &filters, inner: "", page };
    stream_runs(client, &mut q, &p, &sel, &order, sink)
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
        "SELECT {column} FROM calls FINAL WHERE project_id = {p} AND kind = 'run' \
         AND deleted_at IS NULL AND {column} IS NOT NULL AND {column} != '' \
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
    let inner = " ORDER BY evaluation, model, started_at DESC, id DESC LIMIT 1 BY evaluation, model";
    let order = format!("ORDER BY r.evaluation, r.model LIMIT {n}");
    stream_runs(client, &mut q, &p, &Selection { filters, inner, page: None }, &order, sink)
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
