//! Feedback on calls and objects: scorer results, reactions, notes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::call::{Micros, format_time};

/// A stored feedback row.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub project_id: String,
    pub id: String,
    pub weave_ref: String,
    pub feedback_type: String,
    pub payload: Value,
    pub creator: Option<String>,
    pub created_at: Micros,
    pub wb_user_id: Option<String>,
    pub annotation_ref: Option<String>,
    pub runnable_ref: Option<String>,
    pub call_ref: Option<String>,
    pub trigger_ref: Option<String>,
}

/// `FeedbackCreateReq`; a field weft does not keep is refused unless it asks for nothing.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackCreate {
    pub id: Option<String>,
    pub project_id: String,
    pub weave_ref: String,
    pub feedback_type: String,
    #[serde(default)]
    pub payload: Value,
    pub creator: Option<String>,
    pub annotation_ref: Option<String>,
    pub runnable_ref: Option<String>,
    pub call_ref: Option<String>,
    pub trigger_ref: Option<String>,
    /// The status of the span scored; only its default, `UNSET`, is accepted (weft keeps none).
    pub span_status_code: Option<String>,
    /// Output only: the caller is the key's user.
    pub wb_user_id: Option<super::body::OutputOnly>,
}

/// `FeedbackCreateRes`.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackCreated {
    pub id: String,
    pub created_at: String,
    pub wb_user_id: Option<String>,
    pub payload: Value,
}

impl Feedback {
    /// The row as `feedback/query` returns it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "project_id": self.project_id,
            "weave_ref": self.weave_ref,
            "wb_user_id": self.wb_user_id,
            "creator": self.creator,
            "created_at": format_time(self.created_at),
            "feedback_type": self.feedback_type,
            "payload": self.payload,
            "annotation_ref": self.annotation_ref,
            "runnable_ref": self.runnable_ref,
            "call_ref": self.call_ref,
            "trigger_ref": self.trigger_ref,
        })
    }
}

/// `FeedbackReplaceReq`: a `FeedbackCreateReq` and the id of the row it replaces.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackReplace {
    pub feedback_id: String,
    pub id: Option<String>,
    pub project_id: String,
    pub weave_ref: String,
    pub feedback_type: String,
    #[serde(default)]
    pub payload: Value,
    pub creator: Option<String>,
    pub annotation_ref: Option<String>,
    pub runnable_ref: Option<String>,
    pub call_ref: Option<String>,
    pub trigger_ref: Option<String>,
    /// As in a create.
    pub span_status_code: Option<String>,
    /// Output only: the caller is the key's user.
    pub wb_user_id: Option<super::body::OutputOnly>,
}

impl FeedbackReplace {
    /// The create it makes once the row it replaces is purged.
    pub fn create(self) -> FeedbackCreate {
        FeedbackCreate {
            id: self.id,
            project_id: self.project_id,
            weave_ref: self.weave_ref,
            feedback_type: self.feedback_type,
            payload: self.payload,
            creator: self.creator,
            annotation_ref: self.annotation_ref,
            runnable_ref: self.runnable_ref,
            call_ref: self.call_ref,
            trigger_ref: self.trigger_ref,
            span_status_code: self.span_status_code,
            wb_user_id: self.wb_user_id,
        }
    }
}

/// The columns of a feedback row, for `fields` and `sort_by`.
pub const COLUMNS: super::row_query::Columns = super::row_query::Columns {
    all: &[
        "id",
        "project_id",
        "weave_ref",
        "wb_user_id",
        "creator",
        "created_at",
        "feedback_type",
        "payload",
        "annotation_ref",
        "runnable_ref",
        "call_ref",
        "trigger_ref",
    ],
    json: &["payload"],
};

/// What Weave answers a purge whose query does not name rows by id.
pub const PURGE_REFUSED: &str = "Can only purge feedback by specifying one or more feedback ids";
