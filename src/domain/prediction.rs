//! Predictions: a flagged `<Model>.predict` call under an `Evaluation.predict_and_score` call
//! of a run (what `POST /predictions` writes), or a `predict_and_score` call of a run logged
//! through the trace API (the SDKs' `Evaluation.evaluate`, `EvaluationLogger`), read as one.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::call::{Call, now};
use super::error::{Error, Result};
use super::eval_run::PREDICT_AND_SCORE_OP;
use super::refs::{check_ref, method_op, ref_name};
use super::run_rows::RunCursor;
use super::store::{Store, Writer};
use super::validate::Fields;
use super::view::{Kind, ViewColumns, is_logged_prediction, logged_output, mark_holds_prediction};
use super::writes::runs::get_run;

/// Body of `POST /predictions`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePrediction {
    /// Model ref.
    pub model: String,
    /// The example's inputs.
    pub inputs: Map<String, Value>,
    /// The model's output.
    pub output: Value,
    /// The run this prediction belongs to.
    pub evaluation_run_id: Option<String>,
    /// The GenAI spans (`{trace_id, span_id}`) the prediction produced, kept in the
    /// prediction call's `attributes.weave.genai_span_ref`.
    pub genai_span_ref: Option<Vec<Map<String, Value>>>,
}

impl CreatePrediction {
    /// Validates a request body.
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut f = Fields::of(body, &["body"])?;
        let req = CreatePrediction {
            model: f.req_str("model"),
            inputs: f.req_object("inputs"),
            output: f.req_any("output"),
            evaluation_run_id: f.opt_str("evaluation_run_id"),
            genai_span_ref: f.opt_records("genai_span_ref", &["trace_id", "span_id"]),
        };
        f.finish()?;
        check_ref(&req.model)?;
        Ok(req)
    }
}

/// `PredictionReadRes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRead {
    /// The prediction's id.
    pub prediction_id: String,
    /// Model ref.
    pub model: String,
    /// The example's inputs.
    pub inputs: Value,
    /// The model's output.
    pub output: Value,
    /// The run it belongs to.
    pub evaluation_run_id: Option<String>,
    /// Who wrote it.
    pub wb_user_id: Option<String>,
}

impl PredictionRead {
    /// The view of a prediction call. A logged `predict_and_score` call reads as its example
    /// (`inputs.example`) and its model's output ([`logged_output`]).
    pub fn of(mut call: Call) -> Self {
        let v = ViewColumns::of(&call);
        if is_logged_prediction(&call) {
            let take = |v: Option<&mut Value>, key: &str| match v {
                Some(Value::Object(m)) => m.remove(key).unwrap_or(Value::Null),
                _ => Value::Null,
            };
            return PredictionRead {
                inputs: take(Some(&mut call.inputs), "example"),
                output: call.output.as_ref().and_then(logged_output).cloned().unwrap_or(Value::Null),
                prediction_id: call.id,
                model: v.model.unwrap_or_default(),
                evaluation_run_id: v.run_id,
                wb_user_id: call.wb_user_id,
            };
        }
        PredictionRead {
            prediction_id: call.id,
            model: v.model.unwrap_or_default(),
            inputs: inputs_of(call.inputs),
            output: call.output.unwrap_or(Value::Null),
            evaluation_run_id: v.run_id,
            wb_user_id: call.wb_user_id,
        }
    }
}

/// The 404 for a prediction id.
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Prediction {id} not found"))
}

/// Whether `call` is read as a prediction by its id: a call of the prediction view (flagged
/// with `"true"` or JSON `true`, or logged under a run).
pub fn is_prediction(call: &Call) -> bool {
    ViewColumns::of(call).kind == Kind::Prediction
}

/// Where live prediction `id` stands in prediction lists (`after=` of the list: keyset
/// paging), whatever filters the list has; a 404 naming it if there is no such prediction.
pub fn position(store: &dyn Store, project: &str, id: &str) -> Result<RunCursor> {
    match store.call(project, id)? {
        Some(c) if is_prediction(&c) => Ok(RunCursor { started_at: c.started_at, id: c.id }),
        _ => Err(not_found(id)),
    }
}

/// Reads a live prediction call, or a 404.
pub fn get(w: &mut dyn Writer, project: &str, id: &str) -> Result<Call> {
    w.call(project, id)?.filter(is_prediction).ok_or_else(|| not_found(id))
}

/// The inputs of a prediction call as Weave answers them: the inner `inputs` of
/// `{"self": model, "inputs": {...}}` (how Weave and weft store them), `{}` when absent; a
/// prediction stored with its inputs flat (by weft before it stored them as Weave does) reads
/// as those.
pub fn inputs_of(inputs: Value) -> Value {
    match inputs {
        Value::Object(mut m) if m.contains_key("inputs") || m.contains_key("self") => {
            match m.remove("inputs") {
                Some(Value::Object(inner)) => Value::Object(inner),
                _ => json!({}),
            }
        }
        Value::Object(m) => Value::Object(m),
        _ => json!({}),
    }
}

/// Records a prediction: under run `evaluation_run_id` (which must exist), a running
/// `predict_and_score` call holding a `<Model>.predict` call ended with the output.
pub fn create(
    w: &mut dyn Writer,
    project: &str,
    req: &CreatePrediction,
    user: Option<&str>,
) -> Result<String> {
    let at = now();
    let mut predict = Call::new(project, &method_op(&req.model, "Model", "predict"), at);
    let mut weave = json!({ "prediction": "true", "model": req.model });
    if let Some(run_id) = &req.evaluation_run_id {
        let run = get_run(w, project, run_id)?;
        let mut parent = Call::new(project, PREDICT_AND_SCORE_OP, at).child_of(&run.trace_id, &run.id);
        let evaluation = run.evaluation.unwrap_or_default();
        parent.inputs = json!({ "self": evaluation, "model": req.model, "example": req.inputs });
        mark_holds_prediction(&mut parent);
        parent.wb_user_id = user.map(String::from);
        w.insert_fresh_call(&parent)?;
        predict = predict.under(&parent);
        weave["evaluation_run_id"] = json!(run_id);
    }
    if let Some(refs) = &req.genai_span_ref {
        weave["genai_span_ref"] = json!(refs);
    }
    predict.attributes = json!({ "weave": weave });
    predict.inputs = json!({ "self": req.model, "inputs": req.inputs });
    predict.output = Some(req.output.clone());
    predict.ended_at = Some(at);
    predict.summary = Some(json!({}));
    predict.wb_user_id = user.map(String::from);
    w.insert_fresh_call(&predict)?;
    Ok(predict.id)
}

/// Finishes a prediction: ends its `predict_and_score` parent with the output, the scores
/// recorded beside it (by scorer name) and the model's latency in seconds. A prediction logged
/// through the trace API is its own `predict_and_score` call, ended by its logger: nothing to do.
pub fn finish(w: &mut dyn Writer, project: &str, id: &str) -> Result<()> {
    let predict = get(w, project, id)?;
    if is_logged_prediction(&predict) {
        return Ok(());
    }
    let Some(parent_id) = predict.parent_id.as_deref() else {
        return Ok(());
    };
    let Some(mut parent) = w.call(project, parent_id)? else {
        return Ok(());
    };
    let mut scores = Map::new();
    for sibling in w.children(project, parent_id)? {
        // A score whose output is `null` is left out, as Weave leaves it out.
        if ViewColumns::of(&sibling).kind == Kind::Score
            && sibling.output.as_ref().is_some_and(|o| !o.is_null())
        {
            let scorer = sibling.weave_attr("scorer").unwrap_or_default();
            let name = ref_name(scorer).unwrap_or(scorer).to_string();
            scores.insert(name, sibling.output.unwrap_or(Value::Null));
        }
    }
    let latency = predict.ended_at.map_or(0, |e| e - predict.started_at) as f64 / 1e6;
    let at = now();
    parent.output = Some(json!({
        "output": predict.output.unwrap_or(Value::Null),
        "scores": scores,
        "model_latency": { "mean": latency },
    }));
    parent.ended_at = Some(at.max(parent.started_at));
    parent.summary = Some(json!({}));
    // A parent written before the mark existed gets it now: `update_call` derives the view
    // columns again, and the mark keeps the parent from reading as a prediction of its own.
    mark_holds_prediction(&mut parent);
    w.update_call(&parent)
}
