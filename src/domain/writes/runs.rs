//! Writes of evaluation runs: a run is a root `Evaluation.evaluate` call; finishing it records
//! its `Evaluation.summarize` child and ends it.

use serde_json::{Value, json};

use crate::domain::call::{Call, now};
use crate::domain::error::Result;
use crate::domain::eval_run::{CreateRun, FinishRun, SUMMARIZE_OP, aggregate, not_found};
use crate::domain::run_rows::RunHead;
use crate::domain::store::{CallEndFields, Insert, Store, Writer};
use crate::domain::view::{EVALUATE_OP, is_predict_and_score};
use crate::domain::writes::calls::Ready;

/// Creates a run: a root `Evaluation.evaluate` call flagged as an evaluation run.
pub fn create(w: &mut dyn Writer, project: &str, req: &CreateRun, user: Option<&str>) -> Result<String> {
    let call = run_call(project, req, user);
    w.insert_fresh_call(&call)?;
    Ok(call.id)
}

/// A run's call made before its job runs, encoded by `store`, for [`create_ready`].
pub fn prepare_create(store: &dyn Store, project: &str, req: &CreateRun, user: Option<&str>) -> Ready {
    Ready::new(store, run_call(project, req, user))
}

/// [`create`] with the run's call made by [`prepare_create`]: one insert.
pub fn create_ready(w: &mut dyn Writer, run: &Ready) -> Result<String> {
    run.insert(w, Insert::Fresh)?;
    Ok(run.id().to_string())
}

/// The call of a new run.
fn run_call(project: &str, req: &CreateRun, user: Option<&str>) -> Call {
    let mut call = Call::new(project, EVALUATE_OP, now());
    let mut weave = json!({
        "evaluation_run": "true",
        "evaluation": req.evaluation,
        "model": req.model,
    });
    if let Some(src) = &req.source_evaluation_run_id {
        weave["source_evaluation_run_id"] = json!(src);
    }
    call.attributes = json!({ "weave": weave });
    call.inputs = json!({ "self": req.evaluation, "model": req.model });
    call.wb_user_id = user.map(String::from);
    call
}

/// Reads the head of a live evaluation run, or a 404.
pub fn get_run(w: &mut dyn Writer, project: &str, id: &str) -> Result<RunHead> {
    w.run_head(project, id)?.ok_or_else(|| not_found(id))
}

/// Finishes a run: records an `Evaluation.summarize` child (written by `user`, who finishes the
/// run, as Weave writes it) with the mean of every numeric score and output of its predictions,
/// then ends the run with that output and `req.summary`.
pub fn finish(w: &mut dyn Writer, project: &str, id: &str, req: FinishRun, user: Option<&str>) -> Result<()> {
    let run = get_run(w, project, id)?;
    let outputs: Vec<Value> =
        w.children(project, id)?.into_iter().filter(is_predict_and_score).filter_map(|c| c.output).collect();
    let means = aggregate(&outputs);
    let at = now();
    let mut summarize = Call::new(project, SUMMARIZE_OP, at).child_of(&run.trace_id, &run.id);
    summarize.inputs = json!({ "self": run.evaluation.unwrap_or_default() });
    summarize.output = Some(means.clone());
    summarize.ended_at = Some(at);
    summarize.summary = Some(json!({}));
    summarize.wb_user_id = user.map(String::from);
    w.insert_fresh_call(&summarize)?;
    // Only the end fields change: the other columns (and the indexes over them) stay as they are.
    let summary = Value::Object(req.summary.unwrap_or_default());
    let end = CallEndFields {
        ended_at: at.max(run.started_at),
        exception: None,
        output: &means,
        summary: &summary,
        wb_run_step_end: None,
    };
    w.end_call(project, &run.id, &end)?;
    Ok(())
}
