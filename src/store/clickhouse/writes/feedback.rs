//! Feedback and LLM token prices in a batch: rows by id, soft-deleted (a purged row is a new
//! version of it, with its deletion time).

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::{CallKey, Tx, read_unknown};
use crate::domain::call::{Micros, now};
use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::store::clickhouse::client::Client;
use crate::store::clickhouse::overlay::Overlay;
use crate::store::clickhouse::rows::{
    FEEDBACK_COLUMNS, FeedbackTuple, PRICE_COLUMNS, PriceTuple, feedback_from_tuple, price_from_tuple,
};

/// A table of rows soft-deleted by (project, id): its name, its columns, and how a row read
/// is decoded and what its id is.
struct ById<T, R> {
    table: &'static str,
    columns: &'static str,
    decode: fn(T) -> R,
    id: fn(&R) -> &str,
}

const FEEDBACK: ById<FeedbackTuple, Feedback> =
    ById { table: "feedback", columns: FEEDBACK_COLUMNS, decode: feedback_from_tuple, id: |f| &f.id };

const PRICES: ById<PriceTuple, LlmPrice> =
    ById { table: "llm_token_prices", columns: PRICE_COLUMNS, decode: price_from_tuple, id: |p| &p.id };

/// The batch's rows of such a table, each with its deletion time.
type Rows<R> = Overlay<CallKey, (R, Option<Micros>)>;

impl<T: DeserializeOwned, R: Clone> ById<T, R> {
    /// The live rows of `project` among `ids`, each once, in the order of `ids`, as the batch
    /// sees them: those it does not know yet are read and remembered.
    fn live(&self, client: &Client, rows: &mut Rows<R>, project: &str, ids: &[String]) -> Result<Vec<R>> {
        let (table, columns) = (self.table, self.columns);
        read_unknown(
            client,
            rows,
            project,
            ids,
            |p, list| {
                format!(
                    "SELECT {columns} FROM {table} FINAL WHERE project_id = {p} AND id IN {list} \
                     AND deleted_at IS NULL"
                )
            },
            |t: T| {
                let r = (self.decode)(t);
                ((self.id)(&r).to_string(), (r, None))
            },
        )?;
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|i| seen.insert(*i))
            .filter_map(|i| match rows.get(&(project.to_string(), i.clone())) {
                Some(Some((r, None))) => Some(r.clone()),
                _ => None,
            })
            .collect())
    }

    /// Soft-deletes the live rows of `project` among `ids`; returns how many.
    fn purge(&self, client: &Client, rows: &mut Rows<R>, project: &str, ids: &[String]) -> Result<u64> {
        let at = now();
        let live = self.live(client, rows, project, ids)?;
        let n = live.len() as u64;
        for r in live {
            rows.put((project.to_string(), (self.id)(&r).to_string()), (r, Some(at)));
        }
        Ok(n)
    }
}

/// Inserts a feedback row unless a live one has its id.
pub(super) fn insert_feedback(tx: &mut Tx<'_>, f: &Feedback) -> Result<()> {
    let live = FEEDBACK.live(tx.client, &mut tx.feedback, &f.project_id, std::slice::from_ref(&f.id))?;
    if live.is_empty() {
        tx.feedback.put((f.project_id.clone(), f.id.clone()), (f.clone(), None));
    }
    Ok(())
}

pub(super) fn delete_feedback(tx: &mut Tx<'_>, project: &str, ids: &[String]) -> Result<u64> {
    FEEDBACK.purge(tx.client, &mut tx.feedback, project, ids)
}

pub(super) fn delete_costs(tx: &mut Tx<'_>, project: &str, ids: &[String]) -> Result<u64> {
    PRICES.purge(tx.client, &mut tx.prices, project, ids)
}
