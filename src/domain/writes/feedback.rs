//! Writes of feedback rows.

use serde_json::Value;

use crate::domain::call::{format_time, new_id, now};
use crate::domain::error::Result;
use crate::domain::feedback::{Feedback, FeedbackCreate, FeedbackCreated, FeedbackReplace, PURGE_REFUSED};
use crate::domain::row_query::purge_ids;
use crate::domain::store::Writer;

/// Stores one feedback row (idempotent on a client-given id).
pub fn create(w: &mut dyn Writer, req: FeedbackCreate, user: Option<&str>) -> Result<FeedbackCreated> {
    if let Some(code) = req.span_status_code.as_deref().filter(|c| *c != "UNSET") {
        return Err(crate::domain::error::Error::BadRequest(format!(
            "Unsupported field span_status_code: weft keeps no span status (got {code:?})"
        )));
    }
    let payload = if req.payload.is_null() { Value::Object(Default::default()) } else { req.payload };
    let f = Feedback {
        id: req.id.filter(|i| !i.is_empty()).unwrap_or_else(new_id),
        project_id: req.project_id,
        weave_ref: req.weave_ref,
        feedback_type: req.feedback_type,
        payload,
        creator: req.creator,
        created_at: now(),
        wb_user_id: user.map(String::from),
        annotation_ref: req.annotation_ref,
        runnable_ref: req.runnable_ref,
        call_ref: req.call_ref,
        trigger_ref: req.trigger_ref,
    };
    w.insert_feedback(&f)?;
    Ok(FeedbackCreated {
        id: f.id,
        created_at: format_time(f.created_at),
        wb_user_id: f.wb_user_id,
        payload: f.payload,
    })
}

/// The ids a `feedback/purge` query names (Weave purges feedback by id only; any other query
/// is a 400). Checked before the write, so a refused purge writes nothing.
pub fn purge_query(query: &Value) -> Result<Vec<String>> {
    purge_ids(query, false, PURGE_REFUSED)
}

/// Deletes the feedback rows of `project` with these ids; returns how many there were.
pub fn purge(w: &mut dyn Writer, project: &str, ids: &[String]) -> Result<u64> {
    w.delete_feedback(project, ids)
}

/// `feedback/replace`: deletes the row `feedback_id`, then creates the new one, in one job.
pub fn replace(w: &mut dyn Writer, req: FeedbackReplace, user: Option<&str>) -> Result<FeedbackCreated> {
    w.delete_feedback(&req.project_id, std::slice::from_ref(&req.feedback_id))?;
    create(w, req.create(), user)
}
