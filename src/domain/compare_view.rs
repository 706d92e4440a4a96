//! The compare view of the web UI: 2 to 8 runs read as examples, compared with a baseline
//! metric by metric ([`super::compare`]), and one metric shown example by example, aligned by
//! dataset row, with each run's output, sortable by delta and filtered to regressions.

use std::collections::HashMap;

use serde_json::Value;

use super::compare::{self, AlignedRow, Alignment, Comparison, ExampleMetrics, RunExamples, Sort};
use super::error::{Error, Result};
use super::examples::{self, Example, Keep};
use super::metrics::Direction;
use super::page::Page;
use super::run_table::{self, RunSummary};
use super::run_view::resolved_inputs_of;
use super::stats::Bootstrap;
use super::store::Store;

/// Most runs compared at once.
pub const MAX_RUNS: usize = compare::MAX_CANDIDATES + 1;

/// What the compare view shows.
#[derive(Debug, Clone)]
pub struct CompareQuery {
    /// The runs, 2 to [`MAX_RUNS`], each once.
    pub runs: Vec<String>,
    /// The baseline, one of `runs`.
    pub baseline: String,
    /// The metric of the example table (the first one met if `None`).
    pub metric: Option<String>,
    /// The candidate (position among the runs other than the baseline) the table sorts and
    /// filters by.
    pub candidate: usize,
    /// The table's order; `None` keeps the dataset's order.
    pub sort: Option<Sort>,
    /// Only rows where that candidate regressed.
    pub regressions_only: bool,
    /// The window over the table's rows.
    pub page: Page,
}

/// One row of the example table.
#[derive(Debug, Clone)]
pub struct ShownRow {
    /// The aligned values and deltas.
    pub row: AlignedRow,
    /// The example's inputs (resolved when a dataset row ref).
    pub inputs: Value,
    /// Each run's example for this row (its first trial), runs in the comparison's order.
    pub examples: Vec<Option<Example>>,
}

/// The compare view's content.
#[derive(Debug, Clone)]
pub struct ComparePage {
    /// The runs, baseline first.
    pub runs: Vec<RunSummary>,
    /// Every metric compared.
    pub comparison: Comparison,
    /// The table's metric.
    pub metric: String,
    /// Which way it is better.
    pub direction: Direction,
    /// The table's window.
    pub rows: Vec<ShownRow>,
    /// Rows matching the table's filter.
    pub matching: usize,
    /// The table's metric per run over all its rows, runs in order (for the charts).
    pub values: Vec<Vec<f64>>,
    /// (baseline, candidate) values of the table's metric on the rows both have.
    pub pairs: Vec<(f64, f64)>,
}

/// Checks the runs named: 2 to [`MAX_RUNS`] distinct ones, the baseline among them (first
/// when not given). Returns them baseline first.
pub fn order_runs(runs: &[String], baseline: Option<&str>) -> Result<(Vec<String>, String)> {
    let mut seen = std::collections::HashSet::new();
    let runs: Vec<String> =
        runs.iter().filter(|r| !r.is_empty() && seen.insert(r.as_str())).cloned().collect();
    if runs.len() < 2 || runs.len() > MAX_RUNS {
        return Err(Error::BadRequest(format!("Compare 2 to {MAX_RUNS} runs, not {}", runs.len())));
    }
    let baseline = baseline.filter(|b| !b.is_empty()).unwrap_or(&runs[0]).to_string();
    if !runs.contains(&baseline) {
        return Err(Error::BadRequest(format!("The baseline {baseline} is not one of the runs compared")));
    }
    let mut ordered = vec![baseline.clone()];
    ordered.extend(runs.into_iter().filter(|r| *r != baseline));
    Ok((ordered, baseline))
}

/// A run's examples as compared, with the call of each row's first trial.
fn read_run(
    store: &dyn Store,
    project: &str,
    run_id: &str,
) -> Result<(RunExamples, HashMap<String, String>)> {
    let mut rows = Vec::new();
    let mut first = HashMap::new();
    examples::of_run(store, project, run_id, Keep::Scores, &mut |e| {
        first.entry(e.row_key.clone()).or_insert_with(|| e.call_id.clone());
        rows.push(ExampleMetrics::of(&e));
        true
    })?;
    Ok((RunExamples { run_id: run_id.to_string(), examples: rows }, first))
}

/// The compare view of `q.runs`.
pub fn read(store: &dyn Store, project: &str, q: &CompareQuery) -> Result<ComparePage> {
    let mut runs = Vec::new();
    for id in &q.runs {
        runs.push(
            run_table::one(store, project, id)?
                .ok_or_else(|| Error::NotFound(format!("Evaluation run {id} not found")))?,
        );
    }
    // The runs' examples are read at once, each on a thread of its own (and a read connection
    // of its own, on a store that has several).
    let read: Vec<Result<(RunExamples, HashMap<String, String>)>> = std::thread::scope(|s| {
        let reads: Vec<_> = q.runs.iter().map(|id| s.spawn(move || read_run(store, project, id))).collect();
        reads.into_iter().map(|r| r.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut sides = Vec::new();
    let mut firsts = Vec::new();
    for r in read {
        let (side, first) = r?;
        sides.push(side);
        firsts.push(first);
    }
    let (baseline, candidates) =
        sides.split_first().ok_or_else(|| Error::BadRequest("No runs to compare".into()))?;
    let comparison = compare::compare(baseline, candidates, &Bootstrap::default())?;
    let metric = match &q.metric {
        Some(m) => m.clone(),
        None => match comparison.metrics.first() {
            Some(m) => m.name.clone(),
            None => {
                return Ok(ComparePage {
                    runs,
                    comparison,
                    metric: String::new(),
                    direction: Direction::HigherIsBetter,
                    rows: Vec::new(),
                    matching: 0,
                    values: Vec::new(),
                    pairs: Vec::new(),
                });
            }
        },
    };
    let mut alignment: Alignment = compare::align(baseline, candidates, &metric)?;
    let candidate = q.candidate.min(candidates.len() - 1);
    let values =
        (0..sides.len()).map(|r| alignment.rows.iter().filter_map(|row| row.values[r]).collect()).collect();
    let pairs =
        alignment.rows.iter().filter_map(|row| Some((row.values[0]?, row.values[candidate + 1]?))).collect();
    if let Some(sort) = q.sort {
        alignment.sort(candidate, sort);
    }
    let direction = alignment.direction;
    let regressed = |row: &AlignedRow| match (row.values[0], row.values[candidate + 1]) {
        (Some(b), Some(c)) => direction.judge(b, c) == Some(false),
        _ => false,
    };
    let matching_rows: Vec<AlignedRow> =
        alignment.rows.into_iter().filter(|row| !q.regressions_only || regressed(row)).collect();
    let matching = matching_rows.len();
    let limit = q.page.limit.unwrap_or(50) as usize;
    let window: Vec<AlignedRow> =
        matching_rows.into_iter().skip(q.page.offset as usize).take(limit).collect();
    // The shown rows' examples, one read per run.
    let mut by_run: Vec<HashMap<String, Example>> = Vec::new();
    for first in &firsts {
        let ids: Vec<String> = window.iter().filter_map(|row| first.get(&row.row_key).cloned()).collect();
        let found = examples::of_calls(store, project, &ids)?;
        by_run.push(found.into_iter().map(|e| (e.row_key.clone(), e)).collect());
    }
    let shown: Vec<(AlignedRow, Vec<Option<Example>>)> = window
        .into_iter()
        .map(|row| {
            let examples = by_run.iter_mut().map(|m| m.remove(&row.row_key)).collect();
            (row, examples)
        })
        .collect();
    // Each row's inputs from its first run's example, the rows' dataset refs read together.
    let firsts: Vec<Option<&Value>> =
        shown.iter().map(|(_, examples)| examples.iter().flatten().next().map(|e| &e.inputs)).collect();
    let mut resolved =
        resolved_inputs_of(store, &firsts.iter().flatten().copied().collect::<Vec<_>>()).into_iter();
    let inputs: Vec<Value> =
        firsts.iter().map(|f| f.and_then(|_| resolved.next()).unwrap_or(Value::Null)).collect();
    let rows = shown
        .into_iter()
        .zip(inputs)
        .map(|((row, examples), inputs)| ShownRow { row, inputs, examples })
        .collect();
    Ok(ComparePage { runs, comparison, metric, direction, rows, matching, values, pairs })
}
