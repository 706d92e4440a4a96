//! `POST /v2/{entity}/{project}/eval_results/query`: the per-example results of one or more
//! evaluation runs, however each was logged (the SDKs' `Evaluation.evaluate`,
//! `EvaluationLogger`, the v2 prediction and score routes): rows of examples (grouped by row
//! digest, ordered by it), each run's trials on them (output, scores, latency, tokens), and
//! per run and scorer the aggregates of the scores.
//!
//! Memory holds keys, not results: a first pass over each run's examples (scores only, as the
//! web UI reads them, [`examples::of_run`]) keeps one key per trial (row digest, run, call id),
//! from which rows are grouped, intersected, counted and windowed; the summary is aggregated in
//! a second pass, example by example; the window's rows are then read a chunk at a time and
//! sent as they are made.
//!
//! `filters` and `sort_by` ([`Plan`]) read the values of the fields they name from the first
//! pass, kept beside each key; rows are filtered and sorted from those, and the summary is of
//! the filtered rows, as in Weave.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::body::refuse_unread;
use super::call::{Call, format_time};
use super::call_query::CallQuery;
use super::costs::Prices;
use super::error::{Error, Issue, Result};
use super::eval_filters::{Plan, Trial, row_ref_digest};
use super::examples::{self, Example, Keep};
use super::page::Page;
use super::store::Store;
use super::validate::{Fields, check_ids};

/// Rows read and sent together: what memory holds of the answer at once.
const CHUNK_ROWS: usize = 256;

/// The body of `eval_results/query`.
#[derive(Debug, Clone)]
pub struct EvalResultsQuery {
    /// The runs (root `Evaluation.evaluate` calls), each once, in the order given.
    pub evaluation_ids: Vec<String>,
    /// Only rows every run has a trial on.
    pub require_intersection: bool,
    /// Each row's example (`raw_data_row`).
    pub include_raw_data_rows: bool,
    /// A row ref as `raw_data_row` read as the row it names.
    pub resolve_row_refs: bool,
    /// The rows, and `total_rows`.
    pub include_rows: bool,
    /// The aggregates per run and scorer.
    pub include_summary: bool,
    /// Intersection for the summary (`require_intersection` if `None`).
    pub summary_require_intersection: Option<bool>,
    /// Each trial's model call and scorer calls read from the children of its
    /// `predict_and_score` call.
    pub include_children: bool,
    /// Each trial's model call priced (`total_cost`), and their sum per run in the summary.
    pub include_costs: bool,
    /// The filters and sorts.
    pub plan: Plan,
    /// The window over the rows.
    pub page: Page,
}

/// The fields the body has.
const FIELDS: [&str; 16] = [
    "evaluation_call_ids",
    "evaluation_run_ids",
    "require_intersection",
    "include_raw_data_rows",
    "resolve_row_refs",
    "include_rows",
    "include_summary",
    "summary_require_intersection",
    "include_predict_and_score_children",
    "include_costs",
    "sort_by",
    "filters",
    "filter_logic_operator",
    "limit",
    "offset",
    "project_id",
];

impl EvalResultsQuery {
    /// Validates a request body (422 as Weave's request model; 400 for filter and sort fields
    /// Weave refuses).
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut f = Fields::of(body, &["body"])?;
        let mut ids = f.opt_str_list("evaluation_call_ids");
        ids.extend(f.opt_str_list("evaluation_run_ids"));
        let mut int = |name: &str| match body.get(name) {
            Some(Value::Null) => None,
            _ => f.opt_int(name),
        };
        let (limit, offset) = (int("limit"), int("offset"));
        let q = EvalResultsQuery {
            evaluation_ids: Vec::new(),
            require_intersection: f.opt_bool("require_intersection", false),
            include_raw_data_rows: f.opt_bool("include_raw_data_rows", false),
            resolve_row_refs: f.opt_bool("resolve_row_refs", false),
            include_rows: f.opt_bool("include_rows", true),
            include_summary: f.opt_bool("include_summary", false),
            summary_require_intersection: match body.get("summary_require_intersection") {
                None | Some(Value::Null) => None,
                Some(_) => Some(f.opt_bool("summary_require_intersection", false)),
            },
            include_children: f.opt_bool("include_predict_and_score_children", true),
            include_costs: f.opt_bool("include_costs", false),
            plan: Plan::default(),
            page: Page::default(),
        };
        let logic = f.opt_str("filter_logic_operator");
        f.finish()?;
        refuse_unread(body, &FIELDS)?;
        if let Some(op) = logic.clone().filter(|op| op != "and" && op != "or") {
            return Err(Error::invalid(Issue {
                kind: "literal_error",
                loc: vec![json!("body"), json!("filter_logic_operator")],
                msg: "Input should be 'and' or 'or'".into(),
                input: json!(op),
                ctx: Some(json!({"expected": "'and' or 'or'"})),
            }));
        }
        let plan = Plan::from_body(body, logic.as_deref())?;
        let mut seen = HashSet::new();
        let evaluation_ids: Vec<String> = ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        if evaluation_ids.is_empty() {
            return Err(Error::invalid(Issue {
                kind: "value_error",
                loc: vec![json!("body")],
                msg:
                    "Value error, At least one of evaluation_call_ids or evaluation_run_ids must be provided"
                        .into(),
                input: body.clone(),
                ctx: None,
            }));
        }
        check_ids("evaluation_call_ids", &evaluation_ids)?;
        let page = Page::from_body(limit, offset)?;
        Ok(EvalResultsQuery { evaluation_ids, page, plan, ..q })
    }
}

/// One trial as the first pass keeps it.
struct Key {
    row: String,
    run: usize,
    started_at: i64,
    call_id: String,
    /// The values of the plan's fields.
    values: Box<[Value]>,
    /// Whether the example is a dataset row ref, whose `inputs.*` values are read from the row.
    row_ref: bool,
}

/// What is answered beside the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Rows selected, before the window.
    pub total_rows: u64,
    /// The summary, when asked for.
    pub summary: Option<Value>,
    /// Non-fatal warnings.
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The answer's members but `rows`, as JSON text to follow them (`,"total_rows":...}`).
    pub fn tail(&self) -> Vec<u8> {
        let mut out = b",".to_vec();
        let members = json!({
            "total_rows": self.total_rows,
            "summary": self.summary,
            "warnings": self.warnings,
        });
        let text = members.to_string();
        out.extend_from_slice(&text.as_bytes()[1..]);
        out
    }
}

/// Answers `q`: computes the counts and the summary, then streams the window's rows to `sink`
/// (until it returns `false`), and returns what goes beside them.
pub fn query(
    store: &dyn Store,
    project: &str,
    q: &EvalResultsQuery,
    sink: &mut dyn FnMut(&Value) -> bool,
) -> Result<Outcome> {
    let runs = &q.evaluation_ids;
    let plan = &q.plan;
    let keep = if plan.reads_payloads() { Keep::All } else { Keep::Scores };
    let mut keys = Vec::new();
    for (run, id) in runs.iter().enumerate() {
        examples::of_run(store, project, id, keep, &mut |ex| {
            let values = plan.values_of(&ex);
            let row_ref = plan.reads_inputs() && row_ref_digest(&ex.inputs).is_some();
            keys.push(Key {
                row: ex.row_key,
                run,
                started_at: ex.started_at,
                call_id: ex.call_id,
                values,
                row_ref,
            });
            true
        })?;
    }
    keys.sort_by(|a, b| {
        (&a.row, a.run, a.started_at, &a.call_id).cmp(&(&b.row, b.run, b.started_at, &b.call_id))
    });
    // Each row: the range of its keys.
    let mut rows: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match rows.last_mut() {
            Some(r) if keys[r.start].row == k.row => r.end = i + 1,
            _ => rows.push(i..i + 1),
        }
    }
    if plan.reads_inputs() {
        inputs_from_rows(store, project, plan, &mut keys, &rows)?;
    }
    let trials = |r: &std::ops::Range<usize>| -> Vec<Trial<'_>> {
        keys[r.clone()].iter().map(|k| Trial { run: &runs[k.run], values: &k.values }).collect()
    };
    let mut kept = Vec::with_capacity(rows.len());
    for r in &rows {
        kept.push(plan.keeps(&keys[r.start].row, &trials(r))?);
    }
    let in_all = |r: &std::ops::Range<usize>| {
        let present: HashSet<usize> = keys[r.clone()].iter().map(|k| k.run).collect();
        present.len() == runs.len()
    };
    let select = |intersect: bool| -> Vec<std::ops::Range<usize>> {
        rows.iter()
            .zip(&kept)
            .filter(|(r, kept)| **kept && (!(intersect && runs.len() > 1) || in_all(r)))
            .map(|(r, _)| r.clone())
            .collect()
    };
    let prices = if q.include_costs { Some(super::reads::project_prices(store, project)?) } else { None };

    let summary = if q.include_summary {
        let chosen = select(q.summary_require_intersection.unwrap_or(q.require_intersection));
        Some(summarize(store, project, q, &keys, &chosen, prices.as_ref())?)
    } else {
        None
    };
    let mut warnings = Vec::new();
    let mut total_rows = 0;
    if q.include_rows {
        let mut chosen = select(q.require_intersection);
        total_rows = chosen.len() as u64;
        if plan.sorts() {
            // Rows are in digest order: a stable sort leaves ties so, as Weave ends its order.
            let mut ranked: Vec<_> = chosen
                .into_iter()
                .map(|r| (plan.sort_key(&keys[r.start].row, &trials(&r), runs), r))
                .collect();
            ranked.sort_by(|(a, _), (b, _)| plan.compare(a, b));
            chosen = ranked.into_iter().map(|(_, r)| r).collect();
        }
        let skip = usize::try_from(q.page.offset).unwrap_or(usize::MAX);
        let take = q.page.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let window: Vec<_> = chosen.into_iter().skip(skip).take(take).collect();
        for chunk in window.chunks(CHUNK_ROWS) {
            let made = rows_of(store, project, q, &keys, chunk, prices.as_ref(), &mut warnings)?;
            for row in &made {
                if !sink(row) {
                    return Ok(Outcome { total_rows, summary, warnings });
                }
            }
        }
    }
    Ok(Outcome { total_rows, summary, warnings })
}

/// The rows of `chunk` (ranges of `keys`), read in three store reads: their calls, the calls'
/// children, and (when asked) the dataset rows their examples name.
fn rows_of(
    store: &dyn Store,
    project: &str,
    q: &EvalResultsQuery,
    keys: &[Key],
    chunk: &[std::ops::Range<usize>],
    prices: Option<&Prices>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>> {
    let runs = &q.evaluation_ids;
    let ids: Vec<String> =
        chunk.iter().flat_map(|r| keys[r.clone()].iter().map(|k| k.call_id.clone())).collect();
    let mut calls: HashMap<String, Call> = HashMap::new();
    store.calls(project, &CallQuery { call_ids: ids.clone(), ..CallQuery::default() }, &mut |c| {
        calls.insert(c.id.clone(), c);
        true
    })?;
    let mut under: HashMap<String, Vec<Call>> = HashMap::new();
    store.children_of(project, &ids, &mut |c| {
        under.entry(c.parent_id.clone().unwrap_or_default()).or_default().push(c);
        true
    })?;
    let mut out = Vec::with_capacity(chunk.len());
    let mut raw_rows: Vec<Value> = Vec::with_capacity(chunk.len());
    for r in chunk {
        let mut evaluations: Vec<(usize, Vec<Value>)> = Vec::new();
        let mut raw = Value::Null;
        for k in &keys[r.clone()] {
            let Some(call) = calls.remove(&k.call_id) else { continue };
            let children = under.remove(&k.call_id).unwrap_or_default();
            let trial = trial_of(call, &children, q.include_children, prices, &mut raw);
            match evaluations.last_mut() {
                Some((run, trials)) if *run == k.run => trials.push(trial),
                _ => evaluations.push((k.run, vec![trial])),
            }
        }
        raw_rows.push(if q.include_raw_data_rows { raw } else { Value::Null });
        out.push(json!({
            "row_digest": keys[r.start].row,
            "evaluations": evaluations
                .into_iter()
                .map(|(run, trials)| json!({"evaluation_call_id": runs[run], "trials": trials}))
                .collect::<Vec<_>>(),
        }));
    }
    if q.include_raw_data_rows && q.resolve_row_refs {
        resolve_rows(store, project, &mut raw_rows, warnings)?;
    }
    for (row, raw) in out.iter_mut().zip(raw_rows) {
        row["raw_data_row"] = raw;
    }
    Ok(out)
}

/// Reads row refs (`.../attr/rows/id/<digest>`) among `raw` as the table rows they name.
fn resolve_rows(
    store: &dyn Store,
    project: &str,
    raw: &mut [Value],
    warnings: &mut Vec<String>,
) -> Result<()> {
    let digests: Vec<(usize, String)> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let r = v.as_str()?;
            let (_, d) = r.rsplit_once("/attr/rows/id/")?;
            (r.starts_with("weave:///") && !d.is_empty() && !d.contains('/')).then(|| (i, d.to_string()))
        })
        .collect();
    if digests.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = digests.iter().map(|(_, d)| d.as_str()).collect();
    let mut found = 0;
    store.table_row_texts(project, &names, &mut |k, text| {
        raw[digests[k].0] = crate::domain::object::row_value(text);
        found += 1;
        true
    })?;
    if found < digests.len() {
        warnings.push(format!(
            "{} dataset row ref(s) could not be resolved; raw_data_row holds the ref",
            digests.len() - found
        ));
    }
    Ok(())
}

/// Whether a child call is a scorer's: flagged a score (by the v2 routes or the SDK's
/// evaluation metadata), or named as one.
fn is_score_call(c: &Call) -> bool {
    let op = c.op_name.to_lowercase();
    c.weave_attr("score") == Some("true")
        || c.attributes
            .get("_weave_eval_meta")
            .and_then(|m| m.get("score"))
            .is_some_and(|s| s.as_bool() == Some(true))
        || op.contains(".score")
        || op.contains("scorer")
}

/// The model's call among a trial's children: the flagged prediction, else the first child
/// that is not a scorer's and takes the model as `self` or is named as a prediction.
fn predict_call<'a>(children: &'a [Call], model: Option<&Value>) -> Option<&'a Call> {
    if let Some(p) = children.iter().find(|c| crate::domain::view::is_flagged_prediction(c)) {
        return Some(p);
    }
    children.iter().find(|c| {
        if is_score_call(c) {
            return false;
        }
        let op = c.op_name.to_lowercase();
        (model.is_some() && c.inputs.get("self") == model) || op.contains("predict") || op.contains("invoke")
    })
}

/// `summary.usage`'s `total_tokens`, summed over models; `None` when none is given.
fn total_tokens(summary: Option<&Value>) -> Option<i64> {
    let usage = summary?.get("usage")?.as_object()?;
    let counts: Vec<i64> =
        usage.values().filter_map(|u| u.get("total_tokens")?.as_f64()).map(|t| t as i64).collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// The cost of a call's `summary.usage` at `prices`: the sum of its models' priced entries;
/// `None` when no model of it has a price.
fn cost_of(call: &Call, prices: &Prices) -> Option<f64> {
    let usage = call.summary.as_ref()?.get("usage")?;
    let costs = prices.costs(usage, call.started_at)?;
    let total = costs
        .as_object()?
        .values()
        .flat_map(|c| {
            ["prompt_tokens_total_cost", "completion_tokens_total_cost", "cache_read_input_tokens_total_cost"]
                .into_iter()
                .chain(["cache_creation_input_tokens_total_cost"])
                .filter_map(|k| c.get(k).and_then(Value::as_f64))
        })
        .sum();
    Some(total)
}

/// What a trial's model used: the model's call among the trial's children (when read), its
/// tokens (the trial's own when there is no such call) and, with `prices`, its cost.
fn usage_of<'a>(
    call: &'a Call,
    children: &'a [Call],
    prices: Option<&Prices>,
) -> (Option<&'a Call>, Option<i64>, Option<f64>) {
    let predict = predict_call(children, call.inputs.get("model"));
    let used = predict.unwrap_or(call);
    (predict, total_tokens(used.summary.as_ref()), prices.and_then(|p| cost_of(used, p)))
}

/// One trial: a run's `predict_and_score` call on the row, with its children (when
/// `with_children`); `raw` takes the example when it has none yet.
fn trial_of(
    call: Call,
    children: &[Call],
    with_children: bool,
    prices: Option<&Prices>,
    raw: &mut Value,
) -> Value {
    let children: &[Call] = if with_children { children } else { &[] };
    let (predict, tokens, cost) = usage_of(&call, children, prices);
    let predict = predict.cloned();
    let scorers: Vec<&Call> = children.iter().filter(|c| is_score_call(c)).collect();
    let id = call.id.clone();
    // The GenAI spans of the trial: its model call's, then its own, as Weave combines them.
    let mut span_refs = Vec::new();
    for c in predict.iter().chain([&call]) {
        genai_span_refs(c, &mut span_refs);
    }
    let ex: Example = Example::of(call, children);
    if raw.is_null() {
        *raw = ex.inputs.clone();
    }
    let latency = match &predict {
        Some(p) => p.ended_at.map(|e| (e - p.started_at) as f64 / 1e6).or(ex.latency),
        None => ex.latency,
    };
    let mut scorer_call_ids = Map::new();
    for key in ex.scores.keys() {
        let key_lower = key.to_lowercase();
        let name = |c: &Call| {
            let scorer = c.weave_attr("scorer").unwrap_or(&c.op_name);
            crate::domain::refs::ref_name(scorer).unwrap_or(scorer).to_lowercase()
        };
        if let Some(c) = scorers.iter().find(|c| {
            let n = name(c);
            let op = c.op_name.to_lowercase();
            n == key_lower || op.contains(&key_lower) || key_lower.contains(&op)
        }) {
            scorer_call_ids.insert(key.clone(), json!(c.id));
        }
    }
    let mut trial = json!({
        "predict_and_score_call_id": id,
        "predict_call_id": predict.as_ref().map(|p| p.id.clone()),
        "model_output": ex.output,
        "scores": ex.scores,
        "model_latency_seconds": latency,
        "total_tokens": tokens,
        "scorer_call_ids": scorer_call_ids,
    });
    if prices.is_some() {
        trial["total_cost"] = json!(cost);
    }
    if !span_refs.is_empty() {
        trial["genai_span_ref"] = Value::Array(span_refs);
    }
    trial
}

/// Adds to `out` the GenAI span refs in `call`'s `attributes.weave.genai_span_ref` (a list, or
/// one ref), each `{trace_id, span_id}` with both strings; malformed items are skipped, as
/// Weave skips them, and a ref already in `out` is not added again.
fn genai_span_refs(call: &Call, out: &mut Vec<Value>) {
    let Some(v) = call.attributes.get("weave").and_then(|w| w.get("genai_span_ref")) else { return };
    let items = match v {
        Value::Array(items) => items.as_slice(),
        one => std::slice::from_ref(one),
    };
    for item in items {
        let (Some(trace), Some(span)) =
            (item.get("trace_id").and_then(Value::as_str), item.get("span_id").and_then(Value::as_str))
        else {
            continue;
        };
        let r = json!({ "trace_id": trace, "span_id": span });
        if !out.contains(&r) {
            out.push(r);
        }
    }
}

/// Per run, the sums of its trials' model tokens and (with `prices`) costs over the rows
/// `chosen` (`None` where no trial has one), read a chunk of trials at a time.
fn usage_per_run(
    store: &dyn Store,
    project: &str,
    q: &EvalResultsQuery,
    keys: &[Key],
    chosen: &[std::ops::Range<usize>],
    prices: Option<&Prices>,
) -> Result<Vec<(Option<i64>, Option<f64>)>> {
    let mut sums: Vec<(Option<i64>, Option<f64>)> = vec![(None, None); q.evaluation_ids.len()];
    let trials: Vec<&Key> = chosen.iter().flat_map(|r| keys[r.clone()].iter()).collect();
    for chunk in trials.chunks(CHUNK_ROWS) {
        let ids: Vec<String> = chunk.iter().map(|k| k.call_id.clone()).collect();
        let mut calls: HashMap<String, Call> = HashMap::new();
        store.calls(project, &CallQuery { call_ids: ids.clone(), ..CallQuery::default() }, &mut |c| {
            calls.insert(c.id.clone(), c);
            true
        })?;
        let mut under: HashMap<String, Vec<Call>> = HashMap::new();
        if q.include_children {
            store.children_of(project, &ids, &mut |c| {
                under.entry(c.parent_id.clone().unwrap_or_default()).or_default().push(c);
                true
            })?;
        }
        for k in chunk {
            let Some(call) = calls.get(&k.call_id) else { continue };
            let children = under.get(&k.call_id).map(Vec::as_slice).unwrap_or_default();
            let (_, tokens, cost) = usage_of(call, children, prices);
            let sum = &mut sums[k.run];
            if let Some(t) = tokens {
                sum.0 = Some(sum.0.unwrap_or(0) + t);
            }
            if let Some(c) = cost {
                sum.1 = Some(sum.1.unwrap_or(0.0) + c);
            }
        }
    }
    Ok(sums)
}

/// Reads the dataset rows of the examples that are refs to one, a chunk at a time, and sets
/// the `inputs.*` values of their trials from them.
fn inputs_from_rows(
    store: &dyn Store,
    project: &str,
    plan: &Plan,
    keys: &mut [Key],
    rows: &[std::ops::Range<usize>],
) -> Result<()> {
    let wanted: Vec<&std::ops::Range<usize>> =
        rows.iter().filter(|r| keys[(*r).clone()].iter().any(|k| k.row_ref)).collect();
    for chunk in wanted.chunks(CHUNK_ROWS) {
        let digests: Vec<String> = chunk.iter().map(|r| keys[r.start].row.clone()).collect();
        let names: Vec<&str> = digests.iter().map(String::as_str).collect();
        let mut read: Vec<Option<Value>> = vec![None; chunk.len()];
        store.table_row_texts(project, &names, &mut |i, text| {
            read[i] = Some(crate::domain::object::row_value(text));
            true
        })?;
        for (r, row) in chunk.iter().zip(read) {
            let Some(row) = row else { continue };
            for k in keys[(*r).clone()].iter_mut().filter(|k| k.row_ref) {
                plan.set_row_inputs(&mut k.values, &row);
            }
        }
    }
    Ok(())
}

/// The stats of one flattened score dimension of one run.
#[derive(Default)]
struct Stat {
    value_type: &'static str,
    trial_count: u64,
    numeric_count: u64,
    numeric_sum: f64,
    pass_true_count: u64,
    pass_known_count: u64,
}

/// Adds a scorer's result to the stats of its leaves, as Weave flattens it: booleans are
/// binary, numbers continuous, strings text, objects walked (at most 32 levels), anything else
/// (lists, nulls) none.
fn add_score(
    stats: &mut Vec<((String, Option<String>), Stat)>,
    scorer: &str,
    path: &mut Vec<String>,
    v: &Value,
) {
    let kind = match v {
        Value::Bool(_) => "binary",
        Value::Number(_) => "continuous",
        Value::String(_) => "text",
        Value::Object(m) => {
            if path.len() < 32 {
                for (k, inner) in m {
                    path.push(k.clone());
                    add_score(stats, scorer, path, inner);
                    path.pop();
                }
            }
            return;
        }
        _ => return,
    };
    let key = (scorer.to_string(), (!path.is_empty()).then(|| path.join(".")));
    let i = match stats.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            stats.push((key, Stat { value_type: kind, ..Stat::default() }));
            stats.len() - 1
        }
    };
    let s = &mut stats[i].1;
    s.trial_count += 1;
    match v {
        Value::Bool(b) => {
            s.pass_known_count += 1;
            s.pass_true_count += u64::from(*b);
        }
        Value::Number(n) => {
            s.numeric_count += 1;
            s.numeric_sum += n.as_f64().unwrap_or(0.0);
        }
        _ => {}
    }
}

/// The summary of the trials on the rows `chosen`: per run (in the order the rows first show
/// it), its trial count, what its root call names, and its scorers' stats.
fn summarize(
    store: &dyn Store,
    project: &str,
    q: &EvalResultsQuery,
    keys: &[Key],
    chosen: &[std::ops::Range<usize>],
    prices: Option<&Prices>,
) -> Result<Value> {
    let runs = &q.evaluation_ids;
    let usage = usage_per_run(store, project, q, keys, chosen, prices)?;
    let mut order: Vec<usize> = Vec::new();
    let mut trial_counts = vec![0u64; runs.len()];
    let mut wanted: HashSet<&str> = HashSet::new();
    for r in chosen {
        for k in &keys[r.clone()] {
            if trial_counts[k.run] == 0 {
                order.push(k.run);
            }
            trial_counts[k.run] += 1;
            wanted.insert(k.call_id.as_str());
        }
    }
    let mut evaluations = Vec::with_capacity(order.len());
    for run in order {
        let mut stats: Vec<((String, Option<String>), Stat)> = Vec::new();
        examples::of_run(store, project, &runs[run], Keep::Scores, &mut |ex| {
            if wanted.contains(ex.call_id.as_str()) {
                for (scorer, v) in &ex.scores {
                    add_score(&mut stats, scorer, &mut Vec::new(), v);
                }
            }
            true
        })?;
        let root = store.call(project, &runs[run])?;
        let input = |k: &str| root.as_ref().and_then(|c| c.inputs.get(k)).filter(|v| v.is_string()).cloned();
        evaluations.push(json!({
            "evaluation_call_id": runs[run],
            "trial_count": trial_counts[run],
            "evaluation_ref": input("self").or_else(|| input("this")),
            "model_ref": input("model"),
            "display_name": root.as_ref().and_then(|c| c.display_name.clone()),
            "trace_id": root.as_ref().map(|c| c.trace_id.clone()),
            "started_at": root.as_ref().map(|c| format_time(c.started_at)),
            "predict_total_tokens": usage[run].0,
            "predict_total_cost": usage[run].1,
            "scorer_stats": stats.into_iter().map(|((scorer_key, path), s)| json!({
                "scorer_key": scorer_key,
                "path": path,
                "value_type": s.value_type,
                "trial_count": s.trial_count,
                "numeric_count": s.numeric_count,
                "numeric_mean": (s.numeric_count > 0).then(|| s.numeric_sum / s.numeric_count as f64),
                "pass_true_count": s.pass_true_count,
                "pass_known_count": s.pass_known_count,
                "pass_rate": (s.pass_known_count > 0).then(|| s.pass_true_count as f64 / s.pass_known_count as f64),
                "pass_signal_coverage": (s.trial_count > 0).then(|| s.pass_known_count as f64 / s.trial_count as f64),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(json!({ "row_count": chosen.len(), "evaluations": evaluations }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_need_a_run_and_name_known_fields() {
        let q = EvalResultsQuery::from_json(
            &json!({"evaluation_call_ids": ["a", "b"], "evaluation_run_ids": ["a"]}),
        )
        .unwrap();
        assert_eq!(q.evaluation_ids, ["a", "b"]);
        assert!(q.include_rows && q.include_children && !q.include_summary);
        assert!(matches!(EvalResultsQuery::from_json(&json!({})), Err(Error::Validation(_))));
        assert!(matches!(
            EvalResultsQuery::from_json(&json!({"evaluation_call_ids": ["a"], "limit": -1})),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            EvalResultsQuery::from_json(
                &json!({"evaluation_call_ids": ["a"], "sort_by": [{"field": "x", "direction": "asc"}]})
            ),
            Err(Error::BadRequest(_))
        ));
        assert!(
            EvalResultsQuery::from_json(&json!({"evaluation_call_ids": ["a"], "include_costs": true}))
                .unwrap()
                .include_costs
        );
        assert!(
            EvalResultsQuery::from_json(
                &json!({"evaluation_call_ids": ["a"], "sort_by": [], "filters": null})
            )
            .is_ok()
        );
    }

    #[test]
    fn scores_are_flattened_into_typed_leaves() {
        let mut stats = Vec::new();
        add_score(
            &mut stats,
            "f1",
            &mut Vec::new(),
            &json!({"passed": true, "score": 0.5, "why": "ok", "l": [1]}),
        );
        add_score(&mut stats, "exact", &mut Vec::new(), &json!(false));
        let kinds: Vec<_> = stats.iter().map(|((k, p), s)| (k.as_str(), p.clone(), s.value_type)).collect();
        assert_eq!(
            kinds,
            [
                ("f1", Some("passed".into()), "binary"),
                ("f1", Some("score".into()), "continuous"),
                ("f1", Some("why".into()), "text"),
                ("exact", None, "binary"),
            ]
        );
    }
}
