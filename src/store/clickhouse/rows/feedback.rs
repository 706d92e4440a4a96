//! Feedback rows and LLM token prices, each with its deletion time when written.

use serde_json::json;

use super::{opt_time, time};
use crate::domain::call::Micros;
use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::store::json_from_text;

/// The columns of a feedback row as [`FeedbackTuple`] reads them.
pub const FEEDBACK_COLUMNS: &str = "project_id, id, weave_ref, feedback_type, payload, creator, \
    toUnixTimestamp64Micro(created_at), wb_user_id, annotation_ref, runnable_ref, call_ref, trigger_ref";

/// A row of [`FEEDBACK_COLUMNS`].
pub type FeedbackTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Micros,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Decodes a row of [`FEEDBACK_COLUMNS`].
pub fn feedback_from_tuple(t: FeedbackTuple) -> Feedback {
    Feedback {
        project_id: t.0,
        id: t.1,
        weave_ref: t.2,
        feedback_type: t.3,
        payload: json_from_text(&t.4),
        creator: t.5,
        created_at: t.6,
        wb_user_id: t.7,
        annotation_ref: t.8,
        runnable_ref: t.9,
        call_ref: t.10,
        trigger_ref: t.11,
    }
}

/// The columns of a price as [`PriceTuple`] reads them.
pub const PRICE_COLUMNS: &str = "project_id, id, llm_id, provider_id, toUnixTimestamp64Micro(effective_date), \
    prompt_token_cost, completion_token_cost, cache_read_input_token_cost, cache_creation_input_token_cost, \
    prompt_token_cost_unit, completion_token_cost_unit, created_by, toUnixTimestamp64Micro(created_at)";

/// A row of [`PRICE_COLUMNS`].
pub type PriceTuple =
    (String, String, String, String, Micros, f64, f64, f64, f64, String, String, Option<String>, Micros);

/// Decodes a row of [`PRICE_COLUMNS`].
pub fn price_from_tuple(t: PriceTuple) -> LlmPrice {
    LlmPrice {
        project_id: t.0,
        id: t.1,
        llm_id: t.2,
        provider_id: t.3,
        effective_date: t.4,
        prompt_token_cost: t.5,
        completion_token_cost: t.6,
        cache_read_input_token_cost: t.7,
        cache_creation_input_token_cost: t.8,
        prompt_token_cost_unit: t.9,
        completion_token_cost_unit: t.10,
        created_by: t.11,
        created_at: t.12,
    }
}

/// Encodes a price, deleted at `deleted_at` if it was.
pub fn price_line(p: &LlmPrice, deleted_at: Option<Micros>, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": p.project_id,
        "id": p.id,
        "llm_id": p.llm_id,
        "provider_id": p.provider_id,
        "effective_date": time(p.effective_date)?,
        "prompt_token_cost": p.prompt_token_cost,
        "completion_token_cost": p.completion_token_cost,
        "cache_read_input_token_cost": p.cache_read_input_token_cost,
        "cache_creation_input_token_cost": p.cache_creation_input_token_cost,
        "prompt_token_cost_unit": p.prompt_token_cost_unit,
        "completion_token_cost_unit": p.completion_token_cost_unit,
        "created_by": p.created_by,
        "created_at": time(p.created_at)?,
        "deleted_at": opt_time(deleted_at)?,
        "version": version,
    })
    .to_string())
}

/// Encodes a feedback row, deleted at `deleted_at` if it was.
pub fn feedback_line(f: &Feedback, deleted_at: Option<Micros>, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": f.project_id,
        "id": f.id,
        "weave_ref": f.weave_ref,
        "feedback_type": f.feedback_type,
        "payload": f.payload.to_string(),
        "creator": f.creator,
        "created_at": time(f.created_at)?,
        "wb_user_id": f.wb_user_id,
        "annotation_ref": f.annotation_ref,
        "runnable_ref": f.runnable_ref,
        "call_ref": f.call_ref,
        "trigger_ref": f.trigger_ref,
        "deleted_at": opt_time(deleted_at)?,
        "version": version,
    })
    .to_string())
}
