//! Feedback and LLM token prices: inserts, and purges by id.

use rusqlite::{Connection, params};

use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::store::sqlite::rows::{FEEDBACK_COLUMNS, PRICE_COLUMNS, json_text};
use crate::store::sqlite::storage;

/// Inserts a feedback row unless one has its id.
pub(super) fn insert_feedback(conn: &Connection, f: &Feedback) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO feedback ({FEEDBACK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))
    .map_err(storage)?
    .execute(params![
        f.project_id,
        f.id,
        f.weave_ref,
        f.feedback_type,
        json_text(&f.payload),
        f.creator,
        f.created_at,
        f.wb_user_id,
        f.annotation_ref,
        f.runnable_ref,
        f.call_ref,
        f.trigger_ref,
    ])
    .map(drop)
    .map_err(storage)
}

pub(super) fn insert_cost(conn: &Connection, p: &LlmPrice) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO llm_token_prices ({PRICE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .map_err(storage)?
    .execute(params![
        p.project_id,
        p.id,
        p.llm_id,
        p.provider_id,
        p.effective_date,
        p.prompt_token_cost,
        p.completion_token_cost,
        p.cache_read_input_token_cost,
        p.cache_creation_input_token_cost,
        p.prompt_token_cost_unit,
        p.completion_token_cost_unit,
        p.created_by,
        p.created_at,
    ])
    .map(drop)
    .map_err(storage)
}

/// Deletes a project's rows of `table` (feedback or prices) by id; returns how many.
pub(super) fn delete_by_id(conn: &Connection, table: &str, project: &str, ids: &[String]) -> Result<u64> {
    let mut stmt = conn
        .prepare_cached(&format!("DELETE FROM {table} WHERE project_id = ?1 AND id = ?2"))
        .map_err(storage)?;
    let mut n = 0;
    for id in ids {
        n += stmt.execute(params![project, id]).map_err(storage)? as u64;
    }
    Ok(n)
}
