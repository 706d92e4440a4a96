//! Feedback and LLM token prices: a project's live rows, oldest first.

use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::store::clickhouse::client::{Client, Query};
use crate::store::clickhouse::rows::{
    FEEDBACK_COLUMNS, FeedbackTuple, PRICE_COLUMNS, PriceTuple, feedback_from_tuple, price_from_tuple,
};

/// The query of a project's live rows of `table` (`columns`), oldest first.
fn live_rows(project: &str, columns: &str, table: &str) -> Query {
    let mut q = Query::default();
    let p = q.string(project);
    q.push(&format!(
        "SELECT {columns} FROM {table} FINAL WHERE project_id = {p} AND deleted_at IS NULL \
         ORDER BY created_at, id FORMAT JSONCompactEachRow"
    ));
    q
}

pub(super) fn feedback(client: &Client, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()> {
    let q = live_rows(project, FEEDBACK_COLUMNS, "feedback");
    client.query_rows::<FeedbackTuple>(&q, &mut |t| Ok(sink(feedback_from_tuple(t))))
}

pub(super) fn costs(client: &Client, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()> {
    let q = live_rows(project, PRICE_COLUMNS, "llm_token_prices");
    client.query_rows::<PriceTuple>(&q, &mut |t| Ok(sink(price_from_tuple(t))))
}
