//! The runs table of the web UI: evaluation runs as the API lists them (the same JSON, so the
//! page, its exports and `GET /evaluation_runs` agree), filtered by status and free text as
//! well, sorted by any column, one window at a time.
//!
//! Sorted by start (the default, newest first), a page is read from the store in that order
//! from a keyset cursor, `(started_at, id)`, so any page of any number of runs costs a seek
//! and a page of rows; evaluation and model filters are index ranges in the store. Status and
//! free-text filters are applied to the rows as they stream in that order: a page reads until
//! it has its rows, so a rare match scans. Any other sort ranks the matching runs in memory,
//! `offset + limit` at a time, up to [`MAX_RANKED`].

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde_json::Value;

use super::call::Micros;
use super::error::{Error, Result};
use super::page::Page;
use super::run_rows::{RunCursor, RunQuery, RunRow};
use super::store::Store;

/// One run, as `GET /evaluation_runs` answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's JSON (`evaluation_run_id`, `evaluation`, `model`, `status`, `started_at`,
    /// `finished_at`, `summary`, `source_evaluation_run_id`).
    pub json: Value,
    /// Start time.
    pub started_at: Micros,
    /// End time, if finished.
    pub ended_at: Option<Micros>,
    /// Display name, if set.
    pub display_name: Option<String>,
}

impl RunSummary {
    fn str_field(&self, k: &str) -> &str {
        self.json.get(k).and_then(Value::as_str).unwrap_or("")
    }
    /// The run's id.
    pub fn id(&self) -> &str {
        self.str_field("evaluation_run_id")
    }
    /// Evaluation ref.
    pub fn evaluation(&self) -> &str {
        self.str_field("evaluation")
    }
    /// Model ref.
    pub fn model(&self) -> &str {
        self.str_field("model")
    }
    /// `running`, `completed` or `failed`.
    pub fn status(&self) -> &str {
        self.str_field("status")
    }
    /// The run's summary object.
    pub fn summary(&self) -> &Value {
        self.json.get("summary").unwrap_or(&Value::Null)
    }
    /// The run's position in the list order.
    pub fn cursor(&self) -> RunCursor {
        RunCursor { started_at: self.started_at, id: self.id().to_string() }
    }
    /// Duration in seconds, if finished.
    pub fn duration(&self) -> Option<f64> {
        self.ended_at.map(|e| (e - self.started_at) as f64 / 1e6)
    }
    /// A number in the summary at a dotted path (`scorer.correct.true_fraction`); booleans
    /// count as 0 and 1.
    pub fn metric(&self, path: &str) -> Option<f64> {
        let mut v = self.summary();
        for part in path.split('.') {
            v = v.get(part)?;
        }
        match v {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

/// What a runs table shows: filters, sort and window.
#[derive(Debug, Clone, Default)]
pub struct RunTableQuery {
    /// Exact evaluation refs (any of).
    pub evaluations: Vec<String>,
    /// Exact model refs (any of).
    pub models: Vec<String>,
    /// `running`, `completed` or `failed`, if filtered.
    pub status: Option<String>,
    /// Text every shown run contains (in its id, name, evaluation or model), case-insensitive.
    pub text: Option<String>,
    /// The sort.
    pub sort: RunSort,
    /// The window: its limit, and for sorts other than by start its offset.
    pub page: Page,
    /// Where a page of a table sorted by start begins.
    pub position: Position,
}

/// Where a page of a table sorted by start begins: keyset paging, never an offset.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Position {
    /// At the top of the table.
    #[default]
    Start,
    /// Just after this run, in the table's order (the next page).
    After(RunCursor),
    /// Just before this run, in the table's order (the previous page).
    Before(RunCursor),
}

/// A page of the runs table.
#[derive(Debug, Clone, Default)]
pub struct RunPage {
    /// The rows, in the table's order.
    pub rows: Vec<RunSummary>,
    /// Rows follow the last one.
    pub more_after: bool,
    /// Rows precede the first one.
    pub more_before: bool,
}

impl RunPage {
    /// The cursor of the next page's start, if rows follow.
    pub fn next(&self) -> Option<RunCursor> {
        self.rows.last().filter(|_| self.more_after).map(RunSummary::cursor)
    }
    /// The cursor of the previous page's end, if rows precede.
    pub fn prev(&self) -> Option<RunCursor> {
        self.rows.first().filter(|_| self.more_before).map(RunSummary::cursor)
    }
}

/// A sort of the runs table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSort {
    /// `started`, `duration`, `evaluation`, `model`, `status`, `name`, or `m:<metric path>`.
    pub key: String,
    /// Largest first.
    pub descending: bool,
}

impl Default for RunSort {
    fn default() -> Self {
        RunSort { key: "started".into(), descending: true }
    }
}

/// The furthest a table sorted by anything but its start may be paged (its rows are ranked in
/// memory, `offset + limit` of them at a time).
pub const MAX_RANKED: u64 = 100_000;

impl RunSort {
    /// Checks the key (400 naming it otherwise).
    pub fn parse(key: Option<&str>, dir: Option<&str>) -> Result<RunSort> {
        let key = key.filter(|k| !k.is_empty()).unwrap_or("started");
        let known = ["started", "duration", "evaluation", "model", "status", "name"];
        if !known.contains(&key) && key.strip_prefix("m:").is_none_or(str::is_empty) {
            return Err(Error::BadRequest(format!(
                "Unknown sort {key:?}: expected one of {} or m:<metric>",
                known.join(", ")
            )));
        }
        let descending = match dir {
            None | Some("") => key == "started",
            Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "Unknown sort direction {other:?}: expected asc or desc"
                )));
            }
        };
        Ok(RunSort { key: key.to_string(), descending })
    }
}

/// A sort key's value for one run: missing values sort last either way.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Text(String),
}

fn key_of(run: &RunSummary, sort: &RunSort) -> Option<Key> {
    match sort.key.as_str() {
        "started" => Some(Key::Num(run.started_at as f64)),
        "duration" => run.duration().map(Key::Num),
        "evaluation" => Some(Key::Text(run.evaluation().to_string())),
        "model" => Some(Key::Text(run.model().to_string())),
        "status" => Some(Key::Text(run.status().to_string())),
        "name" => Some(Key::Text(run.display_name.clone().unwrap_or_else(|| run.id().to_string()))),
        other => other.strip_prefix("m:").and_then(|m| run.metric(m)).map(Key::Num),
    }
}

/// A ranked run: ordered so that the heap's top is the one to drop first.
struct Ranked {
    key: Option<Key>,
    seq: u64,
    descending: bool,
    run: RunSummary,
}

impl Ranked {
    /// Order in the table: by key (missing last), then by arrival.
    fn table_order(&self, other: &Self) -> Ordering {
        let by_key = match (&self.key, &other.key) {
            (Some(a), Some(b)) => {
                let o = a.partial_cmp(b).unwrap_or(Ordering::Equal);
                if self.descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_key.then(self.seq.cmp(&other.seq))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.table_order(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.table_order(other)
    }
}

fn matches(run: &RunSummary, q: &RunTableQuery, needle: Option<&str>) -> bool {
    if q.status.as_deref().is_some_and(|s| s != run.status()) {
        return false;
    }
    needle.is_none_or(|n| {
        [run.id(), run.evaluation(), run.model(), run.display_name.as_deref().unwrap_or("")]
            .iter()
            .any(|f| f.to_lowercase().contains(n))
    })
}

/// A run row as a [`RunSummary`] (its JSON parsed once).
pub fn summary_of(row: &RunRow<'_>, buf: &mut Vec<u8>) -> Result<RunSummary> {
    buf.clear();
    row.write_json(buf);
    let json: Value = serde_json::from_slice(buf)
        .map_err(|e| Error::Storage(format!("a run's JSON did not parse: {e}")))?;
    Ok(RunSummary {
        json,
        started_at: row.started_at,
        ended_at: row.ended_at,
        display_name: row.display_name.map(String::from),
    })
}

/// Streams the runs of `query` as summaries to `f` until it returns `false`.
pub fn for_each_run(
    store: &dyn Store,
    project: &str,
    query: &RunQuery,
    f: &mut dyn FnMut(RunSummary) -> bool,
) -> Result<()> {
    let mut failed = None;
    let mut buf = Vec::new();
    store.eval_runs(project, query, &mut |row| match summary_of(row, &mut buf) {
        Ok(run) => f(run),
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// The page of runs a runs table shows.
pub fn list(store: &dyn Store, project: &str, q: &RunTableQuery) -> Result<RunPage> {
    if q.sort.key == "started" { keyset_page(store, project, q) } else { ranked_page(store, project, q) }
}

/// A page of the table sorted by start, read in that order from the store from its cursor.
fn keyset_page(store: &dyn Store, project: &str, q: &RunTableQuery) -> Result<RunPage> {
    let limit = q.page.limit.unwrap_or(50);
    let needle = q.text.as_deref().map(str::to_lowercase).filter(|t| !t.is_empty());
    let scanned = q.status.is_some() || needle.is_some();
    let (newest_first, after, backwards) = match &q.position {
        Position::Start => (q.sort.descending, None, false),
        Position::After(c) => (q.sort.descending, Some(c.clone()), false),
        // The page before a cursor: read away from it in the other order, then turn it round.
        Position::Before(c) => (!q.sort.descending, Some(c.clone()), true),
    };
    let skip = if backwards { 0 } else { q.page.offset };
    let query = RunQuery {
        evaluations: q.evaluations.clone(),
        models: q.models.clone(),
        ids: Vec::new(),
        // Without filters of its own the store windows the rows; with them, rows stream until
        // the page is full.
        page: if scanned { Page::default() } else { Page { limit: Some(limit + 1), offset: skip } },
        newest_first,
        after,
    };
    let mut rows = Vec::new();
    let mut seen = 0u64;
    for_each_run(store, project, &query, &mut |run| {
        if scanned {
            if !matches(&run, q, needle.as_deref()) {
                return true;
            }
            seen += 1;
            if seen <= skip {
                return true;
            }
        }
        rows.push(run);
        (rows.len() as u64) < limit + 1
    })?;
    let beyond = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let mut page =
        RunPage { rows, more_after: beyond, more_before: q.position != Position::Start || skip > 0 };
    if backwards {
        page.rows.reverse();
        page = RunPage { rows: page.rows, more_after: true, more_before: beyond };
    }
    Ok(page)
}

/// A page of the table sorted by anything but start: the matching runs ranked in memory,
/// `offset + limit` of them at a time.
fn ranked_page(store: &dyn Store, project: &str, q: &RunTableQuery) -> Result<RunPage> {
    let limit = q.page.limit.unwrap_or(50);
    let wanted = q.page.offset.saturating_add(limit).saturating_add(1);
    if wanted > MAX_RANKED.saturating_add(limit).saturating_add(1) {
        return Err(Error::BadRequest(format!(
            "offset past {MAX_RANKED}: narrow the list with filters instead"
        )));
    }
    let needle = q.text.as_deref().map(str::to_lowercase).filter(|t| !t.is_empty());
    let query =
        RunQuery { evaluations: q.evaluations.clone(), models: q.models.clone(), ..Default::default() };
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::new();
    let mut seq = 0u64;
    for_each_run(store, project, &query, &mut |run| {
        if !matches(&run, q, needle.as_deref()) {
            return true;
        }
        seq += 1;
        heap.push(Ranked { key: key_of(&run, &q.sort), seq, descending: q.sort.descending, run });
        if heap.len() as u64 > wanted {
            heap.pop();
        }
        true
    })?;
    let ranked = heap.into_sorted_vec();
    let more_after = ranked.len() as u64 > q.page.offset.saturating_add(limit);
    let rows = ranked.into_iter().skip(q.page.offset as usize).take(limit as usize).map(|r| r.run).collect();
    Ok(RunPage { rows, more_after, more_before: q.page.offset > 0 })
}

/// Most metric columns a page shows.
pub const MAX_METRICS: usize = 40;

/// The dotted paths of the numeric scorer aggregates in the summaries of `runs` (numbers
/// and booleans, nested objects walked a few levels deep), in the order first found;
/// `weave` and `status_counts` are not metrics.
pub fn metric_paths<'a>(runs: impl IntoIterator<Item = &'a RunSummary>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for run in runs {
        for m in super::metrics::summary_metrics(run.summary()) {
            if out.len() >= MAX_METRICS {
                return out;
            }
            if !m.name.starts_with("status_counts.") && !out.contains(&m.name) {
                out.push(m.name);
            }
        }
    }
    out
}

/// The metric columns a table of `runs` shows, as dotted summary paths (what `m:<path>`
/// sorts by): of [`metric_paths`], one aggregate per score (the fraction of true of a
/// boolean, the mean of a number, other numbers as they are), model latency last; at most `max`.
pub fn column_metrics(runs: &[RunSummary], max: usize) -> Vec<String> {
    let all = metric_paths(runs.iter());
    let aggregate = |p: &str| p.ends_with(".true_fraction") || p.ends_with(".mean");
    let parent = |p: &str| p.rsplit_once('.').map_or(String::new(), |(head, _)| head.to_string());
    let summarised: std::collections::HashSet<String> =
        all.iter().filter(|p| aggregate(p)).map(|p| parent(p)).collect();
    let mut paths: Vec<String> =
        all.into_iter().filter(|p| aggregate(p) || !summarised.contains(&parent(p))).collect();
    let latency = |p: &String| p.starts_with("model_latency");
    paths.sort_by(|a, b| latency(a).cmp(&latency(b)).then(a.cmp(b)));
    paths.truncate(max);
    paths
}

/// One run as the API lists it; `None` if there is no such live run.
pub fn one(store: &dyn Store, project: &str, id: &str) -> Result<Option<RunSummary>> {
    let query = RunQuery {
        ids: vec![id.to_string()],
        page: Page { limit: Some(1), offset: 0 },
        ..RunQuery::default()
    };
    let mut found = None;
    let mut failed = None;
    let mut buf = Vec::new();
    store.eval_runs(project, &query, &mut |row| {
        row.write_json(&mut buf);
        match serde_json::from_slice(&buf) {
            Ok(json) => {
                found = Some(RunSummary {
                    json,
                    started_at: row.started_at,
                    ended_at: row.ended_at,
                    display_name: row.display_name.map(String::from),
                })
            }
            Err(e) => failed = Some(Error::Storage(format!("a run's JSON did not parse: {e}"))),
        }
        false
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metric_paths_skip_weave_and_status_counts() {
        let run = RunSummary {
            json: json!({"summary": {
                "acc": {"true_fraction": 0.5, "true_count": 1, "label": "x"},
                "latency": {"mean": 1.5},
                "ok": true,
                "weave": {"latency_ms": 3},
                "status_counts": {"success": 2},
            }}),
            started_at: 0,
            ended_at: None,
            display_name: None,
        };
        assert_eq!(metric_paths([&run]), ["acc.true_fraction", "acc.true_count", "latency.mean", "ok"]);
        assert_eq!(run.metric("acc.true_fraction"), Some(0.5));
    }

    fn run(summary: Value) -> RunSummary {
        RunSummary { json: json!({ "summary": summary }), started_at: 0, ended_at: None, display_name: None }
    }

    #[test]
    fn metric_paths_pick_one_aggregate_per_score() {
        let runs = [
            run(json!({
                "model_latency": {"mean": 0.2},
                "exact": {"correct": {"true_count": 1, "true_fraction": 0.5}},
                "weave": {"latency_ms": 93},
                "status_counts": {"success": 8},
            })),
            run(json!({"abs_error": {"mean": 1.5}, "accuracy": 0.92, "passed": true, "note": "x"})),
            run(Value::Null),
        ];
        let paths = column_metrics(&runs, 10);
        assert_eq!(
            paths,
            ["abs_error.mean", "accuracy", "exact.correct.true_fraction", "passed", "model_latency.mean"]
        );
        assert_eq!(runs[0].metric(&paths[2]), Some(0.5));
        assert_eq!(column_metrics(&runs, 2), ["abs_error.mean", "accuracy"]);
    }
}
