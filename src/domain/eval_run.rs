//! Evaluation runs: a view over root `Evaluation.evaluate` calls, and the writes that make them.

use serde_json::{Map, Value, json};

use super::error::{Error, Result};
use super::page::Page;
use super::refs::check_ref;
use super::run_rows::{RunCursor, RunQuery};
use super::store::Store;
use super::validate::Fields;

/// Op name of the call that holds one prediction and its scores.
pub const PREDICT_AND_SCORE_OP: &str = "Evaluation.predict_and_score";
/// Op name of the call that records a run's aggregated scores.
pub const SUMMARIZE_OP: &str = "Evaluation.summarize";

/// Body of `POST /evaluation_runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRun {
    /// Evaluation ref.
    pub evaluation: String,
    /// Model ref.
    pub model: String,
    /// The run this one re-scores.
    pub source_evaluation_run_id: Option<String>,
}

impl CreateRun {
    /// Validates a request body.
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut f = Fields::of(body, &["body"])?;
        let req = CreateRun {
            evaluation: f.req_str("evaluation"),
            model: f.req_str("model"),
            source_evaluation_run_id: f.opt_str("source_evaluation_run_id"),
        };
        f.finish()?;
        check_ref(&req.evaluation)?;
        check_ref(&req.model)?;
        Ok(req)
    }
}

/// Body of `POST /evaluation_runs/{id}/finish`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FinishRun {
    /// Summary to store on the run.
    pub summary: Option<Map<String, Value>>,
}

impl FinishRun {
    /// Validates a request body.
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut f = Fields::of(body, &["body"])?;
        let req = FinishRun { summary: f.opt_object("summary") };
        f.finish()?;
        Ok(req)
    }

    /// [`FinishRun::from_json`], the summary moved out of `body` rather than copied.
    pub fn from_owned(mut body: Value) -> Result<Self> {
        let summary = match body.get_mut("summary") {
            Some(Value::Object(m)) => Some(std::mem::take(m)),
            _ => None,
        };
        // Only the summary's type is checked, and an empty map has the same.
        let mut req = FinishRun::from_json(&body)?;
        if req.summary.is_some() {
            req.summary = summary;
        }
        Ok(req)
    }
}

/// The 404 for a run id.
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Evaluation run {id} not found"))
}

/// Where live run `id` stands in run lists (`after=` of the list: keyset paging), whatever
/// filters the list has; a 404 naming it if there is no such live run. One index seek.
pub fn position(store: &dyn Store, project: &str, id: &str) -> Result<RunCursor> {
    let query = RunQuery {
        ids: vec![id.to_string()],
        page: Page { limit: Some(1), offset: 0 },
        ..Default::default()
    };
    let mut found = None;
    store.eval_runs(project, &query, &mut |row| {
        found = Some(RunCursor { started_at: row.started_at, id: row.id.to_string() });
        false
    })?;
    found.ok_or_else(|| not_found(id))
}

/// Means of the numeric scores (per scorer) and numeric outputs of `predict_and_score` outputs.
pub fn aggregate(outputs: &[Value]) -> Value {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
    let mut sums: Vec<(String, f64, u64)> = Vec::new();
    let mut add = |key: &str, x: f64| match sums.iter_mut().find(|(k, _, _)| k == key) {
        Some(e) => {
            e.1 += x;
            e.2 += 1;
        }
        None => sums.push((key.to_string(), x, 1)),
    };
    for out in outputs {
        if let Some(Value::Object(scores)) = out.get("scores") {
            for (scorer, v) in scores {
                if let Some(x) = number(v) {
                    add(scorer, x);
                }
            }
        }
        if let Some(x) = out.get("output").and_then(number) {
            add("output", x);
        }
    }
    let mut result = Map::new();
    for (k, sum, n) in sums {
        result.insert(k, json!({ "mean": sum / n as f64 }));
    }
    Value::Object(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_finish_body_moved_reads_as_one_copied() {
        for body in [
            json!({"summary": {"acc": 0.5, "nested": {"a": [1, 2]}}}),
            json!({"summary": {}}),
            json!({"summary": null}),
            json!({}),
            json!({"summary": 3}),
            json!({"summary": [1]}),
            json!({"summary": {"a": 1}, "other": 2}),
            json!([1]),
            json!(null),
        ] {
            let copied = FinishRun::from_json(&body).map(|r| r.summary);
            let moved = FinishRun::from_owned(body.clone()).map(|r| r.summary);
            assert_eq!(format!("{copied:?}"), format!("{moved:?}"), "{body}");
        }
    }

    #[test]
    fn aggregate_takes_means_of_numbers_only() {
        let outs = [
            json!({"output": 1, "scores": {"acc": true, "f1": 0.5, "note": "x"}}),
            json!({"output": "text", "scores": {"acc": false, "f1": 1.5}}),
        ];
        assert_eq!(
            aggregate(&outs),
            json!({"acc": {"mean": 0.5}, "f1": {"mean": 1.0}, "output": {"mean": 1.0}})
        );
        assert_eq!(aggregate(&[]), json!({}));
    }
}
