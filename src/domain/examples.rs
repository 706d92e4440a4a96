//! The examples of an evaluation run: one row per example the run predicted and scored,
//! however the run was logged (the SDKs' `Evaluation.evaluate`, `EvaluationLogger`, or the v2
//! prediction and score routes). The web UI's run and compare views and their exports read
//! runs through this view; `GET /predictions?evaluation_run_id=` agrees with it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::call::{Call, CallText, Micros, op_short_name, stored_json};
use super::call_query::CallQuery;
use super::digest::value_digest;
use super::error::Result;
use super::refs::ref_name;
use super::store::Store;
use super::view::{HOLDS_PREDICTION, PREDICT_AND_SCORE_OPS, is_predict_and_score, logged_output};

/// One example of a run: the model's prediction on it and every score it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The prediction's id, as `GET /predictions` lists it.
    pub id: String,
    /// The call whose subtree holds the prediction and its scores (the run's
    /// `predict_and_score` child): the root of the example's call tree.
    pub call_id: String,
    /// What aligns the same example across runs: the dataset row's digest when the example
    /// is a ref to a table row, else the digest of the example's JSON.
    pub row_key: String,
    /// The example as logged (a row ref stays a ref; readers resolve the ones they show).
    pub inputs: Value,
    /// The model's output.
    pub output: Value,
    /// Each scorer's result by scorer name: a number, a boolean or an object of them.
    pub scores: Map<String, Value>,
    /// The model's latency in seconds, when known.
    pub latency: Option<f64>,
    /// The exception, when the prediction or a scorer failed.
    pub error: Option<String>,
    /// When the example started.
    pub started_at: Micros,
}

/// What [`of_run`] keeps of each example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The whole example.
    All,
    /// All but its inputs and output (both `Null`): what statistics over every example of a
    /// run need. Outputs and inputs are dropped as the calls arrive, so a run's are never held
    /// all at once; [`of_calls`] reads the whole examples of the few that are shown.
    Scores,
}

/// Streams the examples of run `run_id` in start order to `sink` until it returns `false`.
///
/// Two reads, whatever the run's size: the run's `predict_and_score` children, then the
/// children of those that need them (a prediction `POST /predictions` wrote, whose parts are
/// its children; a logged one without a model latency or without an output). An example that
/// needs no children is made as its call arrives, and sent at once unless an earlier one waits
/// for its children: a run logged by the SDKs streams through without being held. Those that
/// wait are held (without their inputs and outputs when `keep` is [`Keep::Scores`]) until the
/// second read.
pub fn of_run(
    store: &dyn Store,
    project: &str,
    run_id: &str,
    keep: Keep,
    sink: &mut dyn FnMut(Example) -> bool,
) -> Result<()> {
    let make = |call: Call, children: &[Call], key: Option<String>| {
        let mut example = Example::made(call, children, key);
        if keep == Keep::Scores {
            example.output = Value::Null;
        }
        example
    };
    // The examples not sent yet, in order: made, or waiting for their call's children.
    let mut queue: Vec<Result<Example, (Call, Option<String>)>> = Vec::new();
    let mut open = true;
    store.children_text(project, &[run_id.to_string()], &mut |t| {
        let Some((c, key, needs)) = parsed(t, keep) else { return true };
        if needs {
            queue.push(Err((c, key)));
        } else if queue.is_empty() {
            open = sink(make(c, &[], key));
        } else {
            queue.push(Ok(make(c, &[], key)));
        }
        open
    })?;
    if !open {
        return Ok(());
    }
    let wanted: Vec<String> =
        queue.iter().filter_map(|p| p.as_ref().err().map(|(c, _)| c.id.clone())).collect();
    let mut under: HashMap<String, Vec<Call>> = HashMap::new();
    if !wanted.is_empty() {
        store.children_of(project, &wanted, &mut |mut c| {
            if keep == Keep::Scores {
                (c.inputs, c.summary) = (Value::Null, None);
                // A score's output is its result; any other child's is an output.
                if c.weave_attr("score") != Some("true") {
                    c.output = c.output.map(|_| Value::Null);
                }
            }
            under.entry(c.parent_id.clone().unwrap_or_default()).or_default().push(c);
            true
        })?;
    }
    for pending in queue {
        let example = pending.unwrap_or_else(|(call, key)| {
            let children = under.remove(&call.id).unwrap_or_default();
            make(call, &children, key)
        });
        if !sink(example) {
            break;
        }
    }
    Ok(())
}

/// A run's child as read by [`of_run`], parsed as far as its example needs: its attributes
/// and output (without the model's output for [`Keep::Scores`]), and of its inputs only
/// `example` (only its row key for [`Keep::Scores`], returned beside the call), with whether
/// its example [`needs_children`] (judged before the model's output is dropped: a logged
/// prediction with an output needs none, and streams through). `None` unless it is a
/// `predict_and_score` call.
fn parsed(t: &CallText<'_>, keep: Keep) -> Option<(Call, Option<String>, bool)> {
    if !PREDICT_AND_SCORE_OPS.contains(&op_short_name(t.op_name)) {
        return None;
    }
    let mut call = Call::with_ids("", t.op_name, t.started_at, t.id.to_string(), String::new());
    call.parent_id = t.parent_id.map(String::from);
    call.ended_at = t.ended_at;
    call.exception = t.exception.map(String::from);
    call.attributes = stored_json(t.attributes);
    call.output = t.output.map(stored_json);
    let example = example_of(t.inputs);
    let needs = needs_children(&call);
    match keep {
        Keep::All => {
            call.inputs = Value::Object(Map::from_iter([("example".to_string(), example)]));
            Some((call, None, needs))
        }
        Keep::Scores => {
            call.inputs = Value::Null;
            if let Some(Value::Object(out)) = &mut call.output {
                out.remove("output");
                out.remove("model_output");
            }
            Some((call, Some(row_key(&example)), needs))
        }
    }
}

/// `example` of a call's inputs (JSON text), `Null` when it has none, without parsing the rest.
fn example_of(inputs: &str) -> Value {
    #[derive(serde::Deserialize)]
    struct Inputs {
        #[serde(default)]
        example: Value,
    }
    // Only an object has keys (a struct would also read a list); a key given twice is read as
    // the whole value reads it (the last one).
    if inputs.trim_start().starts_with('{')
        && let Ok(i) = serde_json::from_str::<Inputs>(inputs)
    {
        return i.example;
    }
    stored_json(inputs).get("example").cloned().unwrap_or(Value::Null)
}

/// The examples whose `predict_and_score` calls have these ids (those that exist), in the
/// order of `call_ids`: two reads, as [`of_run`].
pub fn of_calls(store: &dyn Store, project: &str, call_ids: &[String]) -> Result<Vec<Example>> {
    if call_ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = CallQuery { call_ids: call_ids.to_vec(), ..CallQuery::default() };
    let mut calls = HashMap::new();
    store.calls(project, &query, &mut |c| {
        if is_predict_and_score(&c) {
            calls.insert(c.id.clone(), c);
        }
        true
    })?;
    let wanted: Vec<String> = calls.values().filter(|c| needs_children(c)).map(|c| c.id.clone()).collect();
    let mut under: HashMap<String, Vec<Call>> = HashMap::new();
    if !wanted.is_empty() {
        store.children_of(project, &wanted, &mut |c| {
            under.entry(c.parent_id.clone().unwrap_or_default()).or_default().push(c);
            true
        })?;
    }
    Ok(call_ids
        .iter()
        .filter_map(|id| calls.remove(id))
        .map(|call| {
            let children = under.remove(&call.id).unwrap_or_default();
            Example::of(call, &children)
        })
        .collect())
}

/// The number of examples of run `run_id` (one read).
pub fn count_of_run(store: &dyn Store, project: &str, run_id: &str) -> Result<u64> {
    let mut n = 0;
    store.children_of(project, &[run_id.to_string()], &mut |c| {
        n += u64::from(is_predict_and_score(&c));
        true
    })?;
    Ok(n)
}

/// Whether the example of `call` needs its children to be made: a logged one lacking its
/// output (the SDKs log `output: null` when the model raised, whose error only its model's call
/// holds) or its latency.
fn needs_children(call: &Call) -> bool {
    holds_prediction(call)
        || call.output.as_ref().and_then(logged_output).is_none_or(Value::is_null)
        || latency_of(call.output.as_ref()).is_none()
}

fn holds_prediction(call: &Call) -> bool {
    call.weave_attr(HOLDS_PREDICTION) == Some("true")
}

/// `model_latency` of a `predict_and_score` output: a number, or an object with a numeric `mean`.
fn latency_of(output: Option<&Value>) -> Option<f64> {
    let latency = output?.get("model_latency")?;
    latency.as_f64().or_else(|| latency.get("mean")?.as_f64())
}

/// What aligns an example across runs: the row digest of a table-row ref
/// (`weave:///e/p/object/Dataset:d/attr/rows/id/<row digest>`), else the Weave digest of the
/// example's JSON.
pub fn row_key(example: &Value) -> String {
    if let Some(r) = example.as_str()
        && r.starts_with("weave:///")
        && let Some((_, digest)) = r.rsplit_once("/attr/rows/id/")
        && !digest.is_empty()
        && !digest.contains('/')
    {
        return digest.to_string();
    }
    value_digest(example)
}

impl Example {
    /// The example of a run's `predict_and_score` call, given its children when
    /// [`needs_children`] says it needs them (else none).
    ///
    /// A prediction `POST /predictions` wrote is read from its parts: the flagged prediction
    /// (its id, output and error) and the flagged scores beside it, by scorer name (the later
    /// of two with one name). A logged prediction is read from its call's output (`output`,
    /// `scores`, `model_latency`), its error from its exception; its model's call (the first
    /// child) gives what the output lacks: the output while running, the latency, the error.
    pub fn of(call: Call, children: &[Call]) -> Example {
        Example::made(call, children, None)
    }

    /// [`Example::of`], given the row key when it was taken before the inputs were dropped.
    fn made(mut call: Call, children: &[Call], row_key_of: Option<String>) -> Example {
        let flagged = |key: &str, c: &&Call| c.weave_attr(key) == Some("true");
        let holds = holds_prediction(&call);
        let predict = match children.iter().find(|c| crate::domain::view::is_flagged_prediction(c)) {
            Some(p) => Some(p),
            None if holds => None,
            None => children.iter().find(|c| !flagged("score", c)),
        };
        let latency = latency_of(call.output.as_ref()).or_else(|| {
            let p = predict?;
            Some((p.ended_at? - p.started_at) as f64 / 1e6)
        });
        let mut out = match call.output.take() {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        };
        let output =
            match (holds, out.as_mut().and_then(|o| o.remove("output").or_else(|| o.remove("model_output"))))
            {
                (false, Some(o)) => o,
                _ => predict.and_then(|p| p.output.clone()).unwrap_or(Value::Null),
            };
        let scores = match out.as_mut().and_then(|o| o.remove("scores")) {
            Some(Value::Object(s)) if !holds => s,
            _ => {
                let mut scores = Map::new();
                for s in children.iter().filter(|c| flagged("score", c)) {
                    let scorer = s.weave_attr("scorer").unwrap_or_default();
                    let name = ref_name(scorer).unwrap_or(scorer).to_string();
                    scores.insert(name, s.output.clone().unwrap_or(Value::Null));
                }
                scores
            }
        };
        let error = call.exception.take().or_else(|| predict.and_then(|p| p.exception.clone()));
        let inputs = match &mut call.inputs {
            Value::Object(i) => i.remove("example").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let id = match predict {
            Some(p) if holds => p.id.clone(),
            _ => call.id.clone(),
        };
        Example {
            id,
            row_key: row_key_of.unwrap_or_else(|| row_key(&inputs)),
            inputs,
            output,
            scores,
            latency,
            error,
            started_at: call.started_at,
            call_id: call.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn row_keys_are_row_digests_of_row_refs_else_digests_of_the_example() {
        let r = "weave:///e/p/object/Dataset:abc/attr/rows/id/Rowdigest123";
        assert_eq!(row_key(&json!(r)), "Rowdigest123");
        // Weave's digest of `{"q": 1}`: SHA-256 of `{"q": 1}` as Python's json.dumps writes it.
        assert_eq!(row_key(&json!({"q": 1})), value_digest(&json!({"q": 1})));
        assert_eq!(row_key(&json!({"q": 1})), crate::domain::digest::bytes_digest(b"{\"q\": 1}"));
        // Key order does not matter; a string that is not a row ref is digested as JSON.
        assert_eq!(row_key(&json!({"b": 2, "a": 1})), row_key(&json!({"a": 1, "b": 2})));
        assert_eq!(row_key(&json!("hello")), value_digest(&json!("hello")));
        assert_eq!(
            row_key(&json!("weave:///e/p/object/D:abc")),
            value_digest(&json!("weave:///e/p/object/D:abc"))
        );
    }

    #[test]
    fn the_example_of_inputs_text_is_read_as_the_whole_inputs_give_it() {
        for text in [
            r#"{"self": "E", "example": "weave:///e/p/object/D:x/attr/rows/id/R1", "model": "M"}"#,
            r#"{"example": {"q": [1, 2.5, "x"]}, "other": {"deep": [null]}}"#,
            r#"{"example": 1, "example": 2}"#,
            r#"{"example": null}"#,
            r#"{"self": "E"}"#,
            r#"[{"example": 1}]"#,
            r#"["x"]"#,
            "not json",
            "null",
            "",
        ] {
            let whole = stored_json(text).get("example").cloned().unwrap_or(Value::Null);
            assert_eq!(example_of(text), whole, "{text}");
        }
    }

    fn pas(output: Option<Value>) -> Call {
        let run = Call::new("e/p", "Evaluation.evaluate", 0);
        let mut c = Call::new("e/p", "weave:///e/p/op/Evaluation.predict_and_score:d", 10).under(&run);
        c.inputs = json!({"self": "E", "model": "M", "example": "weave:///e/p/object/D:x/attr/rows/id/R1"});
        c.output = output;
        c
    }

    #[test]
    fn a_logged_example_with_an_output_needs_no_children_even_when_its_output_is_dropped() {
        let text = |output: &'static str| CallText {
            id: "c",
            parent_id: Some("run"),
            op_name: "weave:///e/p/op/Evaluation.predict_and_score:d",
            started_at: 10,
            ended_at: Some(20),
            exception: None,
            attributes: "{}",
            inputs: r#"{"example": {"q": 1}}"#,
            output: Some(output),
        };
        let whole = text(r#"{"output": 3, "scores": {"acc": true}, "model_latency": 0.5}"#);
        for keep in [Keep::All, Keep::Scores] {
            let (call, _, needs) = parsed(&whole, keep).expect("a predict_and_score call");
            assert!(!needs, "{keep:?}: streamed through, not held for its children");
            assert_eq!(call.output.as_ref().and_then(|o| o.get("output")).is_some(), keep == Keep::All);
        }
        // Without a model output, the model's call (a child) is read for it, in either mode.
        let bare = text(r#"{"scores": {"acc": true}, "model_latency": 0.5}"#);
        assert!(parsed(&bare, Keep::Scores).expect("parsed").2);
    }

    #[test]
    fn a_logged_example_is_read_from_its_output() {
        let call = pas(Some(json!({"output": 3, "scores": {"acc": true}, "model_latency": {"mean": 0.25}})));
        assert!(!needs_children(&call));
        let e = Example::of(call.clone(), &[]);
        assert_eq!((e.id.as_str(), e.row_key.as_str()), (call.id.as_str(), "R1"));
        assert_eq!((e.output, e.latency, e.error), (json!(3), Some(0.25), None));
        assert_eq!(Value::Object(e.scores), json!({"acc": true}));
    }

    #[test]
    fn a_logged_example_without_latency_or_output_reads_its_model_call() {
        let mut call = pas(Some(json!({"output": 3, "scores": {}, "model_latency": null})));
        let mut predict = Call::new("e/p", "M.predict", 11).under(&call);
        predict.ended_at = Some(1_511);
        predict.output = Some(json!(4));
        assert!(needs_children(&call));
        assert_eq!(Example::of(call.clone(), std::slice::from_ref(&predict)).latency, Some(0.0015));
        call.output = None;
        predict.exception = Some("boom".into());
        let e = Example::of(call, &[predict]);
        assert_eq!((e.output, e.error.as_deref()), (json!(4), Some("boom")));
    }

    #[test]
    fn a_logged_example_whose_model_raised_has_its_model_calls_error() {
        // What `Evaluation.evaluate` logs when the model raises: no output, no scores, a latency.
        let call = pas(Some(json!({"output": null, "scores": {}, "model_latency": 0.001})));
        let mut predict = Call::new("e/p", "M.predict", 11).under(&call);
        predict.ended_at = Some(1_011);
        predict.exception = Some("TypeError: unhashable type: 'list'".into());
        assert!(needs_children(&call));
        let e = Example::of(call, &[predict]);
        assert_eq!((e.output, e.error.as_deref()), (Value::Null, Some("TypeError: unhashable type: 'list'")));
    }
}
