//! Feedback and LLM token prices: a project's rows, oldest first.

use rusqlite::{Connection, Row};

use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::store::sqlite::rows::{
    FEEDBACK_COLUMNS, PRICE_COLUMNS, feedback_from_row, for_rows, price_from_row,
};
use crate::store::sqlite::storage;

/// Streams a project's rows of `table` (`columns`, read by `read`), oldest first.
fn project_rows<T>(
    conn: &Connection,
    project: &str,
    (table, columns): (&str, &str),
    read: fn(&Row<'_>) -> rusqlite::Result<T>,
    sink: &mut dyn FnMut(T) -> bool,
) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM {table} WHERE project_id = ?1 ORDER BY created_at, id"
        ))
        .map_err(storage)?;
    for_rows(stmt.query([project]).map_err(storage)?, &mut |r| Ok(sink(read(r)?)))
}

pub(super) fn feedback(
    conn: &Connection,
    project: &str,
    sink: &mut dyn FnMut(Feedback) -> bool,
) -> Result<()> {
    project_rows(conn, project, ("feedback", FEEDBACK_COLUMNS), feedback_from_row, sink)
}

pub(super) fn costs(conn: &Connection, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()> {
    project_rows(conn, project, ("llm_token_prices", PRICE_COLUMNS), price_from_row, sink)
}
