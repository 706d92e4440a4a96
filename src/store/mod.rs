//! The storage backends, one module each, implementing the domain's storage interface
//! ([`crate::domain::store`]): the embedded SQLite store and ClickHouse. Also what the two
//! share: the writer thread ([`writer`]) and a few helpers.

pub mod clickhouse;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod examples_check;

use serde_json::Value;

/// Parses stored JSON text, treating text that is not JSON as a string value.
pub fn json_from_text(text: &str) -> Value {
    crate::domain::call::stored_json(text)
}
