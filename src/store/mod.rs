//! The storage backends, one module each, implementing the domain's storage interface
//! ([`crate::domain::store`]): the embedded SQLite store and ClickHouse. Also what the two
//! share: the writer thread ([`writer`]), the keys their key caches hold ([`recent_keys`]),
//! reading stored JSON text, and how a query's filters and orders map to columns.

pub mod clickhouse;
pub mod recent_keys;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod examples_check;

use serde_json::Value;

use crate::domain::call_query::{CallQuery, Sort, SortField, ref_needle};
use crate::domain::object::{ObjectQuery, ObjectSortField};
use crate::domain::run_rows::RunDimension;

/// Parses stored JSON text, treating text that is not JSON as a string value.
pub fn json_from_text(text: &str) -> Value {
    crate::domain::call::stored_json(text)
}

/// The column of the calls table holding a run's [`RunDimension`].
pub(crate) fn run_column(dimension: RunDimension) -> &'static str {
    match dimension {
        RunDimension::Evaluation => "evaluation",
        RunDimension::Model => "model",
    }
}

/// The columns a calls query filters by lists of values, each with its list (empty: no
/// filter).
pub(crate) fn call_list_filters(q: &CallQuery) -> [(&'static str, &[String]); 7] {
    [
        ("id", &q.call_ids),
        ("trace_id", &q.trace_ids),
        ("parent_id", &q.parent_ids),
        ("wb_user_id", &q.wb_user_ids),
        ("thread_id", &q.thread_ids),
        ("turn_id", &q.turn_ids),
        ("wb_run_id", &q.wb_run_ids),
    ]
}

/// A calls query's op names: those matched exactly, and the prefixes (`name:`) that the
/// names ending in `:*` match.
pub(crate) fn op_name_filters(q: &CallQuery) -> (Vec<&str>, Vec<String>) {
    let (mut exact, mut prefixes) = (Vec::new(), Vec::new());
    for op in &q.op_names {
        match op.strip_suffix(":*") {
            Some(prefix) => prefixes.push(format!("{prefix}:")),
            None => exact.push(op.as_str()),
        }
    }
    (exact, prefixes)
}

/// The JSON columns a calls query searches for refs, each with the texts to search for (a
/// superset: the domain keeps the calls that hold one of the refs, `holds_ref`); columns
/// without refs are left out.
pub(crate) fn ref_filters(q: &CallQuery) -> Vec<(&'static str, Vec<String>)> {
    [("inputs", &q.input_refs), ("output", &q.output_refs)]
        .into_iter()
        .filter(|(_, refs)| !refs.is_empty())
        .map(|(column, refs)| (column, refs.iter().map(|r| ref_needle(r)).collect()))
        .collect()
}

/// The `ORDER BY` of a calls query: its keys, each as `key` writes it in its direction
/// (`ASC` or `DESC`), then the call id; without keys, `started_at` then the id.
pub(crate) fn call_order(sort: &[Sort], mut key: impl FnMut(&SortField, &str) -> String) -> String {
    if sort.is_empty() {
        return "started_at, id".into();
    }
    let mut parts: Vec<String> =
        sort.iter().map(|s| key(&s.field, if s.descending { "DESC" } else { "ASC" })).collect();
    parts.push("id".into());
    parts.join(", ")
}

/// The `ORDER BY` of an objects query: its keys then the version, or object id then version.
pub(crate) fn object_order(q: &ObjectQuery) -> String {
    if q.sort.is_empty() {
        return "object_id, version_index".into();
    }
    let mut parts: Vec<String> = q
        .sort
        .iter()
        .map(|s| {
            let column = match s.field {
                ObjectSortField::ObjectId => "object_id",
                ObjectSortField::CreatedAt => "created_at",
            };
            format!("{column} {}", if s.descending { "DESC" } else { "ASC" })
        })
        .collect();
    parts.push("version_index ASC".into());
    parts.join(", ")
}
