//! Scores: a flagged `<Scorer>.score` call beside the prediction it scores (what `POST /scores`
//! writes), or a number in the scorers' results (`output.scores`) of a prediction logged through
//! the trace API (see [`logged`]).

use serde::Serialize;
use serde_json::{Value, json};

use super::call::{Call, new_id, now};
use super::error::{Error, Result};
use super::feedback::Feedback;
use super::page::{Page, Window};
use super::prediction;
use super::refs::{check_ref, method_op, ref_name};
use super::run_rows::RunCursor;
use super::store::Store;
use super::store::Writer;
use super::validate::Fields;
use super::view::is_logged_prediction;
use super::view::{Kind, ViewColumns};
use super::writes::runs::get_run;

/// Body of `POST /scores`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateScore {
    /// The prediction scored.
    pub prediction_id: String,
    /// Scorer ref.
    pub scorer: String,
    /// The scorer's raw output: any JSON value, stored as sent.
    pub value: Value,
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
            value: f.req_any("value"),
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
    /// The scorer's raw output as stored (`0.0` when it is `null`, as Weave reads it).
    pub value: Value,
    /// The run it belongs to.
    pub evaluation_run_id: Option<String>,
    /// Who wrote it.
    pub wb_user_id: Option<String>,
}

impl ScoreRead {
    /// The view of a score call.
    pub fn of(call: Call) -> Self {
        let scorer = call.weave_attr("scorer").unwrap_or_default().to_string();
        let evaluation_run_id = ViewColumns::of(&call).run_id;
        ScoreRead {
            scorer,
            value: match call.output {
                None | Some(Value::Null) => json!(0.0),
                Some(v) => v,
            },
            evaluation_run_id,
            score_id: call.id,
            wb_user_id: call.wb_user_id,
        }
    }
}

/// The scores of a prediction logged through the trace API (a `predict_and_score` call): one
/// per number or boolean (read as 1 or 0) in its `output.scores`, where a scorer's result that
/// is an object counts for each number or boolean inside it, at any depth; strings, nulls and
/// lists count for none. A score's `scorer` is the scorer's name, then the keys down to the
/// value, joined by `.` (`f1.precision`); its id is the call's id, `:`, and those names
/// percent-encoded (`.` too) and joined by `.`. No score is stored: they are read from the
/// call, which is what a score's id names.
pub fn logged(call: &Call) -> Vec<ScoreRead> {
    let mut out = Vec::new();
    if !is_logged_prediction(call) {
        return out;
    }
    let Some(Value::Object(scores)) = call.output.as_ref().and_then(|o| o.get("scores")) else {
        return out;
    };
    let run_id = call.parent_id.clone();
    let mut leaf = |names: &[&str], value: f64| {
        let value = json!(value);
        let id_path: Vec<String> = names.iter().map(|n| encode(n)).collect();
        out.push(ScoreRead {
            score_id: format!("{}:{}", call.id, id_path.join(".")),
            scorer: names.join("."),
            value,
            evaluation_run_id: run_id.clone(),
            wb_user_id: call.wb_user_id.clone(),
        });
    };
    fn walk<'a>(names: &mut Vec<&'a str>, v: &'a Value, leaf: &mut dyn FnMut(&[&str], f64)) {
        match v {
            Value::Number(n) => leaf(names, n.as_f64().unwrap_or(0.0)),
            Value::Bool(b) => leaf(names, if *b { 1.0 } else { 0.0 }),
            Value::Object(m) => {
                for (k, v) in m {
                    names.push(k);
                    walk(names, v, leaf);
                    names.pop();
                }
            }
            _ => {}
        }
    }
    for (name, v) in scores {
        walk(&mut vec![name.as_str()], v, &mut leaf);
    }
    out
}

/// Percent-encodes all but ASCII letters, digits, `-`, `_` and `~`.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a live score: a flagged score call, or a score of a logged prediction by its id.
pub fn read(store: &dyn Store, project: &str, id: &str) -> Result<Option<ScoreRead>> {
    if let Some(call) = store.call(project, id)? {
        return Ok((ViewColumns::of(&call).kind == Kind::Score).then(|| ScoreRead::of(call)));
    }
    let Some((call_id, _)) = id.rsplit_once(':') else {
        return Ok(None);
    };
    let Some(call) = store.call(project, call_id)? else {
        return Ok(None);
    };
    Ok(logged(&call).into_iter().find(|s| s.score_id == id))
}

/// Where a score list resumes (`after=`: keyset paging).
enum Resume {
    /// Past this score call, in the score calls' order.
    Call(RunCursor),
    /// Past the score `score_id` of this logged prediction: its scores after that one, then
    /// the predictions past it.
    Logged(Box<Call>, String),
}

/// Where live score `id` stands in score lists, whatever filters the list has; a 404 naming
/// it if there is no such score.
fn resume(store: &dyn Store, project: &str, id: &str) -> Result<Resume> {
    if let Some(call) = store.call(project, id)? {
        return match ViewColumns::of(&call).kind {
            Kind::Score => Ok(Resume::Call(RunCursor { started_at: call.started_at, id: call.id })),
            _ => Err(not_found(id)),
        };
    }
    let call = match id.rsplit_once(':') {
        Some((call_id, _)) => store.call(project, call_id)?,
        None => None,
    };
    match call {
        Some(call) if logged(&call).iter().any(|s| s.score_id == id) => {
            Ok(Resume::Logged(Box::new(call), id.to_string()))
        }
        _ => Err(not_found(id)),
    }
}

/// Streams the live scores (of run `run_id`, when given) to `sink` until it returns `false`,
/// windowed by `page`: the flagged score calls in start order, then the scores of the logged
/// predictions, in the predictions' start order. With `after` (a score id), only the scores
/// past that one in this order, the window counted from there: each page is read from where
/// the one before ended, however deep; an id that names no live score is a 404.
pub fn list(
    store: &dyn Store,
    project: &str,
    run_id: Option<&str>,
    after: Option<&str>,
    page: Page,
    sink: &mut dyn FnMut(ScoreRead) -> bool,
) -> Result<()> {
    let resume = after.map(|id| resume(store, project, id)).transpose()?;
    let mut window = Window::new(page);
    let mut open = true;
    let mut predictions_after = None;
    match &resume {
        Some(Resume::Logged(call, id)) => {
            // Score calls all come first: past a logged score, only logged ones are left.
            let rest = logged(call).into_iter().skip_while(|s| s.score_id != *id).skip(1);
            for score in rest {
                if window.admit() {
                    open = sink(score);
                }
                if !open || window.full() {
                    return Ok(());
                }
            }
            predictions_after = Some(RunCursor { started_at: call.started_at, id: call.id.clone() });
        }
        other => {
            let after = match other {
                Some(Resume::Call(at)) => Some(at),
                _ => None,
            };
            // The window needs at most its offset and limit of score calls.
            let most = Page { limit: page.limit.map(|l| l.saturating_add(page.offset)), offset: 0 };
            store.view_calls(project, Kind::Score, run_id, after, most, &mut |call| {
                if window.admit() {
                    open = sink(ScoreRead::of(call));
                }
                open && !window.full()
            })?;
            if !open || window.full() {
                return Ok(());
            }
        }
    }
    store.view_calls(
        project,
        Kind::Prediction,
        run_id,
        predictions_after.as_ref(),
        Page::default(),
        &mut |call| {
            for score in logged(&call) {
                if window.admit() {
                    open = sink(score);
                }
                if !open || window.full() {
                    return false;
                }
            }
            true
        },
    )
}

/// The 404 for a score id.
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Score {id} not found"))
}

/// Reads a live score call, or a 404.
pub fn get(w: &mut dyn Writer, project: &str, id: &str) -> Result<Call> {
    w.call(project, id)?.filter(|c| ViewColumns::of(c).kind == Kind::Score).ok_or_else(|| not_found(id))
}

/// Records a score beside its prediction (which must exist, as must the run if named). As in
/// Weave, any live call may be the prediction scored (a predict call `EvaluationLogger` logged,
/// say): the score goes beside it, under its parent.
pub fn create(w: &mut dyn Writer, project: &str, req: &CreateScore, user: Option<&str>) -> Result<String> {
    let pred =
        w.call(project, &req.prediction_id)?.ok_or_else(|| prediction::not_found(&req.prediction_id))?;
    let run_id = match &req.evaluation_run_id {
        Some(id) => Some(get_run(w, project, id)?.id),
        None => ViewColumns::of(&pred).run_id,
    };
    let at = now();
    let mut score = Call::new(project, &method_op(&req.scorer, "Scorer", "score"), at);
    if is_logged_prediction(&pred) {
        // A logged prediction is the `predict_and_score` call: its scores go under it.
        score = score.under(&pred);
    } else if let Some(parent_id) = pred.parent_id.as_deref()
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
    score.output = Some(req.value.clone());
    score.ended_at = Some(at);
    score.summary = Some(json!({}));
    score.wb_user_id = user.map(String::from);
    w.insert_fresh_call(&score)?;
    // As Weave, the score is also feedback on the prediction's call (`wandb.runnable.<scorer>`,
    // payload `{"output": value}`), so that call queries asking for feedback see it. Weave
    // writes it for scorers that are object refs only (others fail there: D-scorer-ref).
    if let Some(name) = object_ref_name(&req.scorer) {
        let f = Feedback {
            project_id: project.to_string(),
            id: new_id(),
            weave_ref: format!("weave:///{project}/call/{}", pred.id),
            feedback_type: format!("{RUNNABLE_FEEDBACK_PREFIX}.{name}"),
            payload: json!({ "output": req.value }),
            creator: None,
            created_at: at,
            wb_user_id: user.map(String::from).or(pred.wb_user_id.clone()).or_else(|| Some("unknown".into())),
            annotation_ref: None,
            runnable_ref: Some(req.scorer.clone()),
            call_ref: None,
            trigger_ref: None,
        };
        w.insert_feedback(&f)?;
    }
    Ok(score.id)
}

/// The feedback type prefix of a scorer's result (`wandb.runnable.<scorer name>`).
pub const RUNNABLE_FEEDBACK_PREFIX: &str = "wandb.runnable";

/// The name of an object ref (`weave:///e/p/object/Name:digest` → `Name`); `None` for an op
/// ref or anything else.
fn object_ref_name(r: &str) -> Option<&str> {
    let rest = r.strip_prefix("weave:///")?;
    (rest.split('/').nth(2) == Some("object")).then(|| ref_name(r)).flatten()
}
