//! The runs table of the web UI: evaluation runs as the API lists them (the same JSON, so the
//! page, its exports and `GET /evaluation_runs` agree), filtered by status and free text as
//! well, sorted by any column, one window at a time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde_json::Value;

use super::call::Micros;
use super::error::{Error, Result};
use super::page::Page;
use super::run_rows::RunQuery;
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
    /// The window.
    pub page: Page,
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

/// The window of runs a runs table shows, and whether more follow it.
pub fn list(store: &dyn Store, project: &str, q: &RunTableQuery) -> Result<(Vec<RunSummary>, bool)> {
    let limit = q.page.limit.unwrap_or(50);
    let wanted = q.page.offset.saturating_add(limit).saturating_add(1);
    if wanted > MAX_RANKED.saturating_add(limit).saturating_add(1) {
        return Err(Error::BadRequest(format!(
            "offset past {MAX_RANKED}: narrow the list with filters instead"
        )));
    }
    let needle = q.text.as_deref().map(str::to_lowercase).filter(|t| !t.is_empty());
    let query = RunQuery {
        evaluations: q.evaluations.clone(),
        models: q.models.clone(),
        ids: Vec::new(),
        page: Page::default(),
    };
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut failed = None;
    let mut buf = Vec::new();
    store.eval_runs(project, &query, &mut |row| {
        buf.clear();
        row.write_json(&mut buf);
        let json: Value = match serde_json::from_slice(&buf) {
            Ok(v) => v,
            Err(e) => {
                failed = Some(Error::Storage(format!("a run's JSON did not parse: {e}")));
                return false;
            }
        };
        let run = RunSummary {
            json,
            started_at: row.started_at,
            ended_at: row.ended_at,
            display_name: row.display_name.map(String::from),
        };
        if !matches(&run, q, needle.as_deref()) {
            return true;
        }
        seq += 1;
        // Rows arrive oldest first: for "newest first", a later row wins ties.
        let tie = if q.sort.descending && q.sort.key == "started" { u64::MAX - seq } else { seq };
        heap.push(Ranked { key: key_of(&run, &q.sort), seq: tie, descending: q.sort.descending, run });
        if heap.len() as u64 > wanted {
            heap.pop();
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let ranked = heap.into_sorted_vec();
    let more = ranked.len() as u64 > q.page.offset.saturating_add(limit);
    let rows = ranked.into_iter().skip(q.page.offset as usize).take(limit as usize).map(|r| r.run).collect();
    Ok((rows, more))
}

/// The metrics a table of `runs` shows, as dotted summary paths (what `m:<path>` sorts by): each
/// scorer's aggregates, one per score (a fraction of true for booleans, the mean for numbers,
/// other numbers as they are), model latency last; at most `max`. Weave's own bookkeeping
/// (`weave`, `status_counts`) is left out.
pub fn metric_paths(runs: &[RunSummary], max: usize) -> Vec<String> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for pick in ["true_fraction", "mean"] {
                    if m.get(pick).is_some_and(Value::is_number) {
                        path.push(pick.to_string());
                        out.push(path.join("."));
                        path.pop();
                        return;
                    }
                }
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Number(_) | Value::Bool(_) if !path.is_empty() => out.push(path.join(".")),
            _ => {}
        }
    }
    let mut paths: Vec<String> = Vec::new();
    for run in runs {
        let Some(summary) = run.summary().as_object() else { continue };
        for (k, v) in summary {
            if k == "weave" || k == "status_counts" {
                continue;
            }
            let mut found = Vec::new();
            walk(v, &mut vec![k.clone()], &mut found);
            for p in found {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
    }
    let latency = |p: &String| p.starts_with("model_latency");
    paths.sort_by(|a, b| latency(a).cmp(&latency(b)).then(a.cmp(b)));
    paths.truncate(max);
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let paths = metric_paths(&runs, 10);
        assert_eq!(
            paths,
            ["abs_error.mean", "accuracy", "exact.correct.true_fraction", "passed", "model_latency.mean"]
        );
        assert_eq!(runs[0].metric(&paths[2]), Some(0.5));
        assert_eq!(metric_paths(&runs, 2), ["abs_error.mean", "accuracy"]);
    }
}
