//! The leaderboard: models × evaluations, one metric, and per cell one run of that pair (the
//! latest, or the best by the metric).
//!
//! The latest runs are read from the store one per (evaluation, model) pair
//! ([`Store::latest_runs`]: one index seek per pair, or one aggregation), whatever the number
//! of runs. Picking the best run reads every run of the project once.

use std::collections::HashMap;

use super::error::{Error, Result};
use super::run_rows::RunQuery;
use super::run_table::{RunSummary, for_each_run, metric_paths, summary_of};
use super::store::Store;

/// Most (evaluation, model) pairs a leaderboard reads.
pub const MAX_PAIRS: usize = 10_000;

/// Which run of a pair a cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pick {
    /// The newest run.
    #[default]
    Latest,
    /// The run with the best value of the metric (the newest of equals).
    Best,
}

impl Pick {
    /// `latest` (or absent) or `best` (400 otherwise).
    pub fn parse(v: Option<&str>) -> Result<Pick> {
        match v {
            None | Some("") | Some("latest") => Ok(Pick::Latest),
            Some("best") => Ok(Pick::Best),
            Some(other) => Err(Error::BadRequest(format!("Unknown pick {other:?}: expected latest or best"))),
        }
    }
    /// Its name in links.
    pub fn as_str(self) -> &'static str {
        match self {
            Pick::Latest => "latest",
            Pick::Best => "best",
        }
    }
}

/// What a leaderboard shows.
#[derive(Debug, Clone, Default)]
pub struct LeaderboardQuery {
    /// The metric's dotted path; the first one found if `None`.
    pub metric: Option<String>,
    /// Which run per cell.
    pub pick: Pick,
    /// Lower is better; guessed from the metric's name if `None`.
    pub lower: Option<bool>,
}

/// One cell: the run picked, and its value of the metric.
#[derive(Debug, Clone)]
pub struct LeaderCell {
    /// The run.
    pub run: RunSummary,
    /// Its value, if the run has the metric.
    pub value: Option<f64>,
    /// The best value of its evaluation's column.
    pub best: bool,
    /// 0 (worst of its column) to 9 (best), if it has a value.
    pub heat: Option<u8>,
}

/// A leaderboard.
#[derive(Debug, Clone, Default)]
pub struct Leaderboard {
    /// The columns: evaluation refs, in order.
    pub evaluations: Vec<String>,
    /// The rows: model refs, in order.
    pub models: Vec<String>,
    /// `cells[model][evaluation]`.
    pub cells: Vec<Vec<Option<LeaderCell>>>,
    /// The metrics the latest runs have, for choosing.
    pub metrics: Vec<String>,
    /// The metric shown, if any run has one.
    pub metric: Option<String>,
    /// Whether lower values of it are better.
    pub lower_is_better: bool,
}

/// Whether lower is better for a metric, guessed from its name (as the compare view does).
pub fn lower_is_better(metric: &str) -> bool {
    super::metrics::Direction::of(metric) == super::metrics::Direction::LowerIsBetter
}

fn better(a: f64, b: f64, lower: bool) -> bool {
    if lower { a < b } else { a > b }
}

/// The leaderboard of `project`.
pub fn build(store: &dyn Store, project: &str, q: &LeaderboardQuery) -> Result<Leaderboard> {
    if let Some(m) = &q.metric
        && (m.is_empty() || m.len() > 1_000 || m.split('.').any(str::is_empty))
    {
        return Err(Error::BadRequest(format!("Bad metric {m:?}: expected a dotted path")));
    }
    let mut latest = Vec::new();
    let mut failed = None;
    let mut buf = Vec::new();
    store.latest_runs(project, MAX_PAIRS, &mut |row| match summary_of(row, &mut buf) {
        Ok(run) => {
            latest.push(run);
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let metrics = metric_paths(latest.iter());
    // By default the scorer aggregate (a rate, a mean, as the runs table shows them) that the
    // most cells have.
    let metric = q.metric.clone().or_else(|| {
        let choices = super::run_table::column_metrics(&latest, usize::MAX);
        let cells = |m: &String| latest.iter().filter(|r| r.metric(m).is_some()).count();
        let best = choices.iter().map(cells).max().unwrap_or(0);
        choices.iter().find(|m| cells(m) == best).cloned().or_else(|| metrics.first().cloned())
    });
    let lower = q.lower.unwrap_or_else(|| metric.as_deref().is_some_and(lower_is_better));
    let mut evaluations: Vec<String> = latest.iter().map(|r| r.evaluation().to_string()).collect();
    evaluations.sort();
    evaluations.dedup();
    let mut models: Vec<String> = latest.iter().map(|r| r.model().to_string()).collect();
    models.sort();
    models.dedup();
    let e_at: HashMap<&str, usize> = evaluations.iter().enumerate().map(|(i, e)| (e.as_str(), i)).collect();
    let m_at: HashMap<&str, usize> = models.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut cells: Vec<Vec<Option<LeaderCell>>> = vec![vec![None; evaluations.len()]; models.len()];
    let value_of = |r: &RunSummary| metric.as_deref().and_then(|m| r.metric(m)).filter(|v| v.is_finite());
    match q.pick {
        Pick::Latest => {
            for run in latest {
                let (Some(&e), Some(&m)) = (e_at.get(run.evaluation()), m_at.get(run.model())) else {
                    continue;
                };
                let value = value_of(&run);
                cells[m][e] = Some(LeaderCell { run, value, best: false, heat: None });
            }
        }
        Pick::Best => {
            // Every run once, oldest first: a later run of equal value replaces an earlier one.
            for_each_run(store, project, &RunQuery::default(), &mut |run| {
                let (Some(&e), Some(&m)) = (e_at.get(run.evaluation()), m_at.get(run.model())) else {
                    return true;
                };
                let Some(v) = value_of(&run) else { return true };
                let slot = &mut cells[m][e];
                if slot.as_ref().and_then(|c| c.value).is_none_or(|old| !better(old, v, lower)) {
                    *slot = Some(LeaderCell { run, value: Some(v), best: false, heat: None });
                }
                true
            })?;
        }
    }
    // Per evaluation column: the best value marked, heat from the worst (0) to the best (9).
    for e in 0..evaluations.len() {
        let values: Vec<f64> = cells.iter().filter_map(|row| row[e].as_ref()?.value).collect();
        let (Some(lo), Some(hi)) =
            (values.iter().copied().reduce(f64::min), values.iter().copied().reduce(f64::max))
        else {
            continue;
        };
        let best = if lower { lo } else { hi };
        for row in cells.iter_mut() {
            let Some(cell) = row[e].as_mut() else { continue };
            let Some(v) = cell.value else { continue };
            cell.best = v == best;
            let goodness =
                if hi > lo { if lower { (hi - v) / (hi - lo) } else { (v - lo) / (hi - lo) } } else { 1.0 };
            cell.heat = Some((goodness * 9.0).round().clamp(0.0, 9.0) as u8);
        }
    }
    Ok(Leaderboard { evaluations, models, cells, metrics, metric, lower_is_better: lower })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_is_better_is_guessed_from_the_name() {
        assert!(lower_is_better("model_latency.mean"));
        assert!(lower_is_better("usage.total_tokens"));
        assert!(lower_is_better("Loss"));
        assert!(!lower_is_better("accuracy.true_fraction"));
        assert_eq!(Pick::parse(Some("best")).unwrap(), Pick::Best);
        assert!(Pick::parse(Some("worst")).is_err());
    }
}
