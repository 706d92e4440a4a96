//! Scores: a `<Scorer>.score` call beside the prediction it scores.

use serde::Serialize;
use serde_json::{Value, json};

use super::call::{Call, now};
use super::error::{Error, Result};
use super::prediction;
use super::refs::{check_ref, method_op};
use super::store::Writer;
use super::validate::Fields;
use super::view::{Kind, ViewColumns};
use super::writes::runs::get_run;

/// Body of `POST /scores`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateScore {
    /// The prediction scored.
    pub prediction_id: String,
    /// Scorer ref.
    pub scorer: String,
    /// The score.
    pub value: f64,
    /// The run the score belongs to (defaults to the prediction's).
    pub evaluation_run_id: Option<String>,
}

impl CreateScore {
    /// Validates a request body.
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut f = Fields::of(body, &["body"])?;
        let req = CreateScore {
            prediction_id: f.req_str("prediction_id"),
            scorer: f.req_str("scorer"),
            value: f.req_number("value"),
            evaluation_run_id: f.opt_str("evaluation_run_id"),
        };
        f.finish()?;
        check_ref(&req.scorer)?;
        Ok(req)
    }
}

/// `ScoreReadRes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRead {
    /// The score's id.
    pub score_id: String,
    /// Scorer ref.
    pub scorer: String,
    /// The score.
    pub value: f64,
    /// The run it belongs to.
    pub evaluation_run_id: Option<String>,
    /// Who wrote it.
    pub wb_user_id: Option<String>,
}

impl ScoreRead {
    /// The view of a score call.
    pub fn of(call: Call) -> Self {
        ScoreRead {
            scorer: call.weave_attr("scorer").unwrap_or_default().to_string(),
            value: call.output.as_ref().and_then(Value::as_f64).unwrap_or(0.0),
            evaluation_run_id: ViewColumns::of(&call).run_id,
            score_id: call.id,
            wb_user_id: call.wb_user_id,
        }
    }
}

/// The 404 for a score id.
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Score {id} not found"))
}

/// Reads a live score call, or a 404.
pub fn get(w: &mut dyn Writer, project: &str, id: &str) -> Result<Call> {
    w.call(project, id)?.filter(|c| ViewColumns::of(c).kind == Kind::Score).ok_or_else(|| not_found(id))
}

/// Records a score beside its prediction (which must exist, as must the run if named).
pub fn create(w: &mut dyn Writer, project: &str, req: &CreateScore, user: Option<&str>) -> Result<String> {
    let pred = prediction::get(w, project, &req.prediction_id)?;
    let run_id = match &req.evaluation_run_id {
        Some(id) => Some(get_run(w, project, id)?.id),
        None => ViewColumns::of(&pred).run_id,
    };
    let at = now();
    let mut score = Call::new(project, &method_op(&req.scorer, "Scorer", "score"), at);
    if let Some(parent_id) = pred.parent_id.as_deref()
        && let Some(parent) = w.call(project, parent_id)?
    {
        score = score.under(&parent);
    }
    let mut weave = json!({ "score": "true", "prediction_id": pred.id, "scorer": req.scorer });
    if let Some(run_id) = run_id {
        weave["evaluation_run_id"] = json!(run_id);
    }
    score.attributes = json!({ "weave": weave });
    score.inputs = json!({ "self": req.scorer, "output": pred.output, "inputs": pred.inputs });
    score.output = Some(json!(req.value));
    score.ended_at = Some(at);
    score.summary = Some(json!({}));
    score.wb_user_id = user.map(String::from);
    w.insert_call(&score)?;
    Ok(score.id)
}
