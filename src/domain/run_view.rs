//! The run page of the web UI: one evaluation run as the API lists it, and its examples
//! (however the run was logged, see [`super::examples`]), filtered and windowed, with the
//! distribution of every metric over all of them.

use std::collections::HashMap;

use serde_json::Value;

use super::error::{Error, Result};
use super::examples::{self, Example, Keep};
use super::metrics::{self, Direction, MetricKind};
use super::object::Version;
use super::page::Page;
use super::refs::{Edge, Ref, Target};
use super::resolve;
use super::run_table::{self, RunSummary};
use super::store::Store;

/// Most values of one metric kept for its distribution.
pub const MAX_DISTRIBUTION: usize = 100_000;

/// What the run page shows of the examples.
#[derive(Debug, Clone, Default)]
pub struct RunPageQuery {
    /// Only examples whose prediction or scorers failed.
    pub failed_only: bool,
    /// Only examples whose metric (by name) is below the threshold.
    pub below: Option<(String, f64)>,
    /// The window over the matching examples.
    pub page: Page,
}

/// One metric of a run: its name, kind, direction, and its values over every example.
#[derive(Debug, Clone)]
pub struct MetricValues {
    /// Path name.
    pub name: String,
    /// Boolean or number.
    pub kind: MetricKind,
    /// Which way is better.
    pub direction: Direction,
    /// Its values, in example order (at most [`MAX_DISTRIBUTION`]).
    pub values: Vec<f64>,
}

/// An example on the page, with its metrics.
#[derive(Debug, Clone)]
pub struct ShownExample {
    /// Its position among the run's examples, from 1.
    pub number: u64,
    /// The example (its inputs resolved when they were a ref).
    pub example: Example,
    /// Its metric values by name.
    pub metrics: Vec<(String, f64)>,
}

/// The run page's content.
#[derive(Debug, Clone)]
pub struct RunPage {
    /// The run.
    pub run: RunSummary,
    /// The window of matching examples.
    pub shown: Vec<ShownExample>,
    /// Examples matching the filters.
    pub matching: u64,
    /// Examples of the run.
    pub total: u64,
    /// Failed examples of the run.
    pub failed: u64,
    /// Every metric of the examples, in the order met.
    pub metrics: Vec<MetricValues>,
}

/// The example's inputs with a ref to a dataset row replaced by the row (kept as it is when
/// it cannot be read).
pub fn resolved_inputs(store: &dyn Store, inputs: &Value) -> Value {
    match inputs.as_str().filter(|s| s.starts_with("weave:///")).map(Ref::parse) {
        Some(Ok(r)) => resolve::read(store, &r).unwrap_or_else(|_| inputs.clone()),
        _ => inputs.clone(),
    }
}

/// [`resolved_inputs`] of several examples, in order. Refs to rows of the same dataset
/// version (`.../object/{name}:{digest}/attr/rows/id/{row}`, as the SDKs log examples) are read
/// together: the dataset once, then the rows in one read of its table. Anything else, and a
/// group whose dataset is not the plain shape, is read ref by ref.
pub fn resolved_inputs_of(store: &dyn Store, inputs: &[&Value]) -> Vec<Value> {
    let mut out: Vec<Option<Value>> = vec![None; inputs.len()];
    // (project, dataset name, dataset digest) → (position, row digest), in order.
    let mut groups: HashMap<(String, String, String), Vec<(usize, String)>> = HashMap::new();
    for (i, v) in inputs.iter().enumerate() {
        let parsed = v.as_str().filter(|s| s.starts_with("weave:///")).map(Ref::parse);
        if let Some(Ok(Ref { project_id, target: Target::Object { name, digest }, path })) = parsed
            && let [Edge::Attr(attr), Edge::Id(row)] = path.as_slice()
            && attr == "rows"
        {
            groups.entry((project_id, name, digest)).or_default().push((i, row.clone()));
        }
    }
    for ((project, name, digest), members) in groups {
        let rows = dataset_rows(store, &project, &name, &digest, &members);
        for (i, row) in &members {
            out[*i] = rows.as_ref().map(|rows| rows.get(row).cloned().unwrap_or_else(|| inputs[*i].clone()));
        }
    }
    out.into_iter()
        .zip(inputs)
        .map(|(v, inputs)| v.unwrap_or_else(|| resolved_inputs(store, inputs)))
        .collect()
}

/// The rows of a dataset version's table by digest, when the dataset is an object whose
/// `rows` is a ref to a table of the same project; `None` when it is not (or cannot be read),
/// for the caller to read ref by ref. A row the table lacks is left out.
fn dataset_rows(
    store: &dyn Store,
    project: &str,
    name: &str,
    digest: &str,
    members: &[(usize, String)],
) -> Option<HashMap<String, Value>> {
    let (dataset, _) = store.object(project, name, &Version::parse(digest)).ok()??;
    let table = Ref::parse(dataset.val.get("rows")?.as_str().filter(|s| s.starts_with("weave:///"))?).ok()?;
    let Ref { project_id, target: Target::Table { digest: table }, .. } = table else { return None };
    if project_id != project {
        return None;
    }
    let wanted: Vec<String> = members.iter().map(|(_, r)| r.clone()).collect();
    let rows = store.table_rows(project, &table, Some(&wanted), Page::default()).ok()??;
    // A digest listed twice is the same row twice; the last is kept, as a read of one row does.
    Some(rows.into_iter().map(|r| (r.digest, r.val)).collect())
}

/// The run page of run `run_id`; a 404 if there is no such run.
pub fn read(store: &dyn Store, project: &str, run_id: &str, q: &RunPageQuery) -> Result<RunPage> {
    let run = run_table::one(store, project, run_id)?
        .ok_or_else(|| Error::NotFound(format!("Evaluation run {run_id} not found")))?;
    let limit = q.page.limit.unwrap_or(50);
    let mut page = RunPage { run, shown: Vec::new(), matching: 0, total: 0, failed: 0, metrics: Vec::new() };
    // Every example's metrics, without inputs and outputs; then the shown ones whole.
    examples::of_run(store, project, run_id, Keep::Scores, &mut |e| {
        page.total += 1;
        let values = metrics::example_metrics(&e);
        for m in &values {
            let at = match page.metrics.iter().position(|x| x.name == m.name) {
                Some(at) => at,
                None => {
                    page.metrics.push(MetricValues {
                        name: m.name.clone(),
                        kind: m.kind,
                        direction: m.direction(),
                        values: Vec::new(),
                    });
                    page.metrics.len() - 1
                }
            };
            let known = &mut page.metrics[at];
            if m.kind == MetricKind::Number {
                known.kind = MetricKind::Number;
            }
            if known.values.len() < MAX_DISTRIBUTION {
                known.values.push(m.value);
            }
        }
        if e.error.is_some() {
            page.failed += 1;
        }
        let keep = (!q.failed_only || e.error.is_some())
            && q.below
                .as_ref()
                .is_none_or(|(name, t)| values.iter().any(|m| &m.name == name && m.value < *t));
        if keep {
            page.matching += 1;
            if page.matching > q.page.offset && (page.shown.len() as u64) < limit {
                let metrics = values.into_iter().map(|m| (m.name, m.value)).collect();
                page.shown.push(ShownExample { number: page.total, example: e, metrics });
            }
        }
        true
    })?;
    let ids: Vec<String> = page.shown.iter().map(|s| s.example.call_id.clone()).collect();
    let mut whole: HashMap<String, Example> =
        examples::of_calls(store, project, &ids)?.into_iter().map(|e| (e.call_id.clone(), e)).collect();
    page.shown.retain_mut(|s| match whole.remove(&s.example.call_id) {
        Some(e) => {
            s.example = e;
            true
        }
        None => false,
    });
    let inputs: Vec<&Value> = page.shown.iter().map(|s| &s.example.inputs).collect();
    let resolved = resolved_inputs_of(store, &inputs);
    for (s, inputs) in page.shown.iter_mut().zip(resolved) {
        s.example.inputs = inputs;
    }
    Ok(page)
}
