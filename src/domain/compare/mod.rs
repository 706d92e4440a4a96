//! Comparing evaluation runs, as the web UI's compare view shows them: a baseline and one to
//! seven candidates, each a list of examples with their metrics ([`super::metrics`]).
//!
//! Examples align across runs by `row_key`. A run that holds the same row more than once (an
//! evaluation with several trials) counts the mean of its trials for that row. Per metric,
//! [`compare`] gives each run's mean, and each candidate's difference from the baseline over
//! the examples both have: the mean difference with a paired bootstrap interval, the exact
//! McNemar p-value for boolean metrics, and how many examples improved, regressed or stayed
//! the same (by the metric's direction). [`align`] gives the example-by-example view of one
//! metric. Everything here is deterministic for a given seed.
//!
//! It is CPU work: about 0.1 s of CPU for two runs of 10,000 examples with 10,000 resamples
//! (docs/benchmarks.md), and the bootstrap may use more than one thread. Call it off the async
//! runtime (a blocking task).

use std::collections::HashMap;

use serde::Serialize;

use super::error::{Error, Result};
use super::examples::Example;
use super::metrics::{Direction, Metric, MetricKind, example_metrics};
use super::stats::{Bootstrap, bootstrap_means, discordant, mcnemar_exact};

/// Most candidates compared with one baseline (the UI compares up to eight runs).
pub const MAX_CANDIDATES: usize = 7;

/// One example of a run, reduced to what comparing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleMetrics {
    /// What aligns the example across runs.
    pub row_key: String,
    /// Its metrics; a name appears at most once.
    pub metrics: Vec<Metric>,
}

impl ExampleMetrics {
    /// The metrics of an example row: its scores and its latency.
    pub fn of(example: &Example) -> Self {
        ExampleMetrics { row_key: example.row_key.clone(), metrics: example_metrics(example) }
    }
}

/// A run to compare: its id and its examples.
#[derive(Debug, Clone, PartialEq)]
pub struct RunExamples {
    /// The run's id, echoed in the results.
    pub run_id: String,
    /// Its examples, in the run's order.
    pub examples: Vec<ExampleMetrics>,
}

/// The comparison of runs: one entry per run (baseline first) in `runs` and in every
/// metric's `runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The runs, baseline first.
    pub runs: Vec<RunSide>,
    /// Every metric any run has, the baseline's first, in the order they were met.
    pub metrics: Vec<MetricComparison>,
    /// Every run has the same examples (row keys). When false the UI warns that the runs were
    /// on different datasets.
    pub same_examples: bool,
    /// Every run has every metric. When false the UI warns that the runs had different scorers.
    pub same_metrics: bool,
    /// Baseline examples every candidate also has.
    pub shared_by_all: usize,
    /// The interval's coverage, e.g. 0.95.
    pub level: f64,
    /// Bootstrap resamples drawn.
    pub resamples: usize,
}

/// A run's place in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSide {
    /// The run's id.
    pub run_id: String,
    /// Its distinct examples.
    pub examples: usize,
    /// Of these, the ones the baseline has too (all of them for the baseline).
    pub shared_with_baseline: usize,
    /// Examples it holds more than once (trials), counted by the mean of their values.
    pub repeated_examples: usize,
    /// Metrics other runs have and this one never does.
    pub missing_metrics: Vec<String>,
}

/// One metric across the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    /// Path name, e.g. `judge.correct`.
    pub name: String,
    /// Boolean when every value of it in every run is a boolean.
    pub kind: MetricKind,
    /// Which way is better.
    pub direction: Direction,
    /// One per run, baseline first.
    pub runs: Vec<RunMetric>,
}

/// One run's figures for one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMetric {
    /// Examples of the run with a value of the metric.
    pub n: usize,
    /// Mean over those; `None` when the run has no value of it.
    pub mean: Option<f64>,
    /// The difference from the baseline; `None` for the baseline itself and when no example
    /// has a value in both runs.
    pub vs_baseline: Option<VsBaseline>,
}

/// A candidate against the baseline on one metric, over the examples both have a value for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VsBaseline {
    /// Examples paired.
    pub n_shared: usize,
    /// The baseline's mean over them.
    pub baseline_mean: f64,
    /// The candidate's mean over them.
    pub mean: f64,
    /// Mean difference, candidate minus baseline.
    pub delta: f64,
    /// Lower bound of the interval of `delta` (paired bootstrap, percentile).
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Exact McNemar p-value, for boolean metrics whose paired values are all 0 or 1.
    pub p_value: Option<f64>,
    /// Examples where the candidate is better, by the metric's direction.
    pub improved: usize,
    /// Examples where it is worse.
    pub regressed: usize,
    /// Examples where the two are equal.
    pub unchanged: usize,
}

/// One metric example by example: every row key of any run, the baseline's first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    /// The metric.
    pub metric: String,
    /// Which way is better.
    pub direction: Direction,
    /// The run ids, baseline first (the order of `values`).
    pub run_ids: Vec<String>,
    /// The rows, in the baseline's order until sorted.
    pub rows: Vec<AlignedRow>,
}

/// One example across the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignedRow {
    /// The example's row key.
    pub row_key: String,
    /// Each run's value (mean of its trials), baseline first; `None` where it has none.
    pub values: Vec<Option<f64>>,
    /// Each candidate's difference from the baseline; `None` unless both have a value.
    pub deltas: Vec<Option<f64>>,
}

/// How to sort an alignment by one candidate's deltas. Rows without a delta go last, and
/// rows that tie keep their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Smallest delta first.
    Ascending,
    /// Largest delta first.
    Descending,
    /// Worst change first, by the metric's direction.
    RegressedFirst,
    /// Best change first.
    ImprovedFirst,
}

/// Compares `candidates` (1 to [`MAX_CANDIDATES`]) with `baseline`, metric by metric.
pub fn compare(baseline: &RunExamples, candidates: &[RunExamples], opts: &Bootstrap) -> Result<Comparison> {
    check_count(candidates)?;
    let prep = Prepared::new(baseline, candidates);
    let base = &prep.tables[0];
    let nm = prep.names.len();
    let mut metrics: Vec<MetricComparison> = (0..nm)
        .map(|m| MetricComparison {
            name: prep.names[m].to_string(),
            kind: if prep.boolean[m] { MetricKind::Boolean } else { MetricKind::Number },
            direction: Direction::of(prep.names[m]),
            runs: Vec::with_capacity(prep.tables.len()),
        })
        .collect();
    let mut runs = Vec::with_capacity(prep.tables.len());
    let mut in_all = vec![true; base.keys.len()];
    for (t, (table, run)) in prep.tables.iter().zip(std::iter::once(baseline).chain(candidates)).enumerate() {
        // The pairs of rows (baseline, this run) with the same key.
        let pairs: Vec<(usize, usize)> = if t == 0 {
            (0..base.keys.len()).map(|i| (i, i)).collect()
        } else {
            base.keys.iter().enumerate().filter_map(|(i, k)| table.index.get(k).map(|&j| (i, j))).collect()
        };
        if t > 0 {
            for (i, flag) in in_all.iter_mut().enumerate() {
                *flag &= table.index.contains_key(base.keys[i]);
            }
        }
        let vs = if t == 0 { vec![None; nm] } else { versus(&prep, base, table, &pairs, opts) };
        for ((m, metric), vs) in metrics.iter_mut().enumerate().zip(vs) {
            let (sum, n) =
                table.values[m].iter().filter(|v| !v.is_nan()).fold((0.0, 0), |(s, n), v| (s + v, n + 1));
            metric.runs.push(RunMetric { n, mean: (n > 0).then(|| sum / n as f64), vs_baseline: vs });
        }
        runs.push(RunSide {
            run_id: run.run_id.clone(),
            examples: table.keys.len(),
            shared_with_baseline: pairs.len(),
            repeated_examples: table.repeated,
            missing_metrics: (0..nm).filter(|&m| !table.has[m]).map(|m| prep.names[m].to_string()).collect(),
        });
    }
    Ok(Comparison {
        same_examples: runs
            .iter()
            .all(|r| r.examples == base.keys.len() && r.shared_with_baseline == r.examples),
        same_metrics: runs.iter().all(|r| r.missing_metrics.is_empty()),
        shared_by_all: in_all.iter().filter(|&&f| f).count(),
        runs,
        metrics,
        level: opts.level,
        resamples: opts.resamples.max(1),
    })
}

/// One metric of the runs example by example, rows in the baseline's order (then rows only
/// candidates have, in their order). A 404 when no run has the metric.
pub fn align(baseline: &RunExamples, candidates: &[RunExamples], metric: &str) -> Result<Alignment> {
    check_count(candidates)?;
    let prep = Prepared::new(baseline, candidates);
    let m = prep
        .ids
        .get(metric)
        .copied()
        .ok_or_else(|| Error::NotFound(format!("No run has metric {metric}")))?;
    let mut seen: HashMap<&str, ()> = HashMap::new();
    let mut rows = Vec::new();
    for table in &prep.tables {
        for key in &table.keys {
            if seen.insert(key, ()).is_some() {
                continue;
            }
            let values: Vec<Option<f64>> = prep
                .tables
                .iter()
                .map(|t| t.index.get(key).map(|&j| t.values[m][j]).filter(|v| !v.is_nan()))
                .collect();
            let deltas = values[1..].iter().map(|c| Some(c.as_ref()? - values[0]?)).collect();
            rows.push(AlignedRow { row_key: key.to_string(), values, deltas });
        }
    }
    Ok(Alignment {
        metric: metric.to_string(),
        direction: Direction::of(metric),
        run_ids: std::iter::once(baseline).chain(candidates).map(|r| r.run_id.clone()).collect(),
        rows,
    })
}

impl Alignment {
    /// Sorts the rows by candidate `candidate`'s deltas (0 is the first candidate).
    pub fn sort(&mut self, candidate: usize, by: Sort) {
        let better = if self.direction == Direction::HigherIsBetter { 1.0 } else { -1.0 };
        let key = |r: &AlignedRow| -> Option<f64> {
            let d = (*r.deltas.get(candidate)?)?;
            Some(match by {
                Sort::Ascending => d,
                Sort::Descending => -d,
                Sort::RegressedFirst => d * better,
                Sort::ImprovedFirst => -d * better,
            })
        };
        self.rows.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (a, b) => b.is_some().cmp(&a.is_some()),
        });
    }
}

fn check_count(candidates: &[RunExamples]) -> Result<()> {
    if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
        return Err(Error::BadRequest(format!(
            "Compare a baseline with 1 to {MAX_CANDIDATES} runs, not {}",
            candidates.len()
        )));
    }
    Ok(())
}

/// A candidate against the baseline, per metric, over the paired rows.
fn versus(
    prep: &Prepared,
    base: &Table,
    cand: &Table,
    pairs: &[(usize, usize)],
    opts: &Bootstrap,
) -> Vec<Option<VsBaseline>> {
    let nm = prep.names.len();
    // Each metric's paired (baseline, candidate) values where both have one.
    let paired: Vec<(Vec<f64>, Vec<f64>)> = (0..nm)
        .map(|m| {
            let (b, c) = (&base.values[m], &cand.values[m]);
            pairs.iter().map(|&(i, j)| (b[i], c[j])).filter(|(x, y)| !x.is_nan() && !y.is_nan()).unzip()
        })
        .collect();
    let diffs: Vec<Vec<f64>> =
        paired.iter().map(|(b, c)| c.iter().zip(b).map(|(c, b)| c - b).collect()).collect();
    // Metrics every pair has are resampled together, from one draw of the examples per
    // resample; each other metric from draws over its own pairs.
    let mut intervals = vec![None; nm];
    let full: Vec<usize> =
        (0..nm).filter(|&m| !diffs[m].is_empty() && diffs[m].len() == pairs.len()).collect();
    let columns: Vec<&[f64]> = full.iter().map(|&m| diffs[m].as_slice()).collect();
    for (&m, d) in full.iter().zip(bootstrap_means(&columns, opts).unwrap_or_default()) {
        intervals[m] = Some(d);
    }
    for m in (0..nm).filter(|m| !full.contains(m)) {
        intervals[m] = bootstrap_means(&[&diffs[m]], opts).and_then(|mut v| v.pop());
    }
    (0..nm)
        .map(|m| {
            let d = intervals[m]?;
            let (b, c) = &paired[m];
            let dir = Direction::of(prep.names[m]);
            let (mut improved, mut regressed) = (0, 0);
            for (x, y) in b.iter().zip(c) {
                match dir.judge(*x, *y) {
                    Some(true) => improved += 1,
                    Some(false) => regressed += 1,
                    None => {}
                }
            }
            let bits = |v: &[f64]| {
                v.iter().map(|&x| (x == 1.0).then_some(true).or((x == 0.0).then_some(false))).collect()
            };
            let p_value = if prep.boolean[m] {
                let (bb, cb): (Option<Vec<bool>>, Option<Vec<bool>>) = (bits(b), bits(c));
                bb.zip(cb).map(|(bb, cb)| {
                    let (only_b, only_c) = discordant(&bb, &cb);
                    mcnemar_exact(only_b, only_c)
                })
            } else {
                None
            };
            let n = b.len() as f64;
            Some(VsBaseline {
                n_shared: b.len(),
                baseline_mean: b.iter().sum::<f64>() / n,
                mean: c.iter().sum::<f64>() / n,
                delta: d.mean,
                low: d.low,
                high: d.high,
                p_value,
                improved,
                regressed,
                unchanged: b.len() - improved - regressed,
            })
        })
        .collect()
}

/// The runs' examples indexed: the metrics of all runs, and each run's rows.
struct Prepared<'a> {
    names: Vec<&'a str>,
    ids: HashMap<&'a str, usize>,
    /// Every value of the metric in every run is a boolean.
    boolean: Vec<bool>,
    /// Baseline first.
    tables: Vec<Table<'a>>,
}

/// One run's distinct rows and, per metric, each row's value.
struct Table<'a> {
    keys: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
    /// `values[metric][row]`: the mean of the row's trials; NaN when it has none.
    values: Vec<Vec<f64>>,
    /// Whether any row has the metric.
    has: Vec<bool>,
    repeated: usize,
}

impl<'a> Prepared<'a> {
    fn new(baseline: &'a RunExamples, candidates: &'a [RunExamples]) -> Self {
        let mut prep =
            Prepared { names: Vec::new(), ids: HashMap::new(), boolean: Vec::new(), tables: Vec::new() };
        for run in std::iter::once(baseline).chain(candidates) {
            let table = prep.table(run);
            prep.tables.push(table);
        }
        let nm = prep.names.len();
        for t in &mut prep.tables {
            let rows = t.keys.len();
            t.values.resize_with(nm, || vec![f64::NAN; rows]);
            t.has.resize(nm, false);
        }
        prep
    }

    fn table(&mut self, run: &'a RunExamples) -> Table<'a> {
        let mut keys = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(run.examples.len());
        let rows: Vec<usize> = run
            .examples
            .iter()
            .map(|e| {
                *index.entry(e.row_key.as_str()).or_insert_with(|| {
                    keys.push(e.row_key.as_str());
                    keys.len() - 1
                })
            })
            .collect();
        let n = keys.len();
        let mut sums: Vec<Vec<f64>> = Vec::new();
        let mut counts: Vec<Vec<u32>> = Vec::new();
        let mut trials = vec![0u32; n];
        // Examples mostly list the same metrics in the same order: try the id the metric at
        // this position had last time before hashing its name.
        let mut guess: Vec<usize> = Vec::new();
        for (e, &row) in run.examples.iter().zip(&rows) {
            trials[row] += 1;
            for (pos, metric) in e.metrics.iter().enumerate() {
                let id = match guess.get(pos) {
                    Some(&g) if self.names.get(g) == Some(&metric.name.as_str()) => g,
                    _ => self.id(&metric.name),
                };
                if pos < guess.len() {
                    guess[pos] = id;
                } else {
                    guess.push(id);
                }
                self.boolean[id] &= metric.kind == MetricKind::Boolean;
                if id >= sums.len() {
                    sums.resize_with(id + 1, || vec![0.0; n]);
                    counts.resize_with(id + 1, || vec![0; n]);
                }
                sums[id][row] += metric.value;
                counts[id][row] += 1;
            }
        }
        let has = counts.iter().map(|c| c.iter().any(|&k| k > 0)).collect();
        let values = sums
            .into_iter()
            .zip(counts)
            .map(|(s, c)| {
                s.iter().zip(&c).map(|(s, &c)| if c == 0 { f64::NAN } else { s / f64::from(c) }).collect()
            })
            .collect();
        Table { keys, index, values, has, repeated: trials.iter().filter(|&&t| t > 1).count() }
    }

    fn id(&mut self, name: &'a str) -> usize {
        *self.ids.entry(name).or_insert_with(|| {
            self.names.push(name);
            self.boolean.push(true);
            self.names.len() - 1
        })
    }
}

#[cfg(test)]
mod tests;
