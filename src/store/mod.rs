//! The storage backends, one module each, implementing the domain's storage interface
//! ([`crate::domain::store`]): the embedded SQLite store and ClickHouse. Also what the two
//! share: the writer thread ([`writer`]) and a few helpers.

pub mod clickhouse;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod examples_check;

use serde_json::Value;

use crate::domain::page::Page;

/// The rows of a table a read asks for, as (position, row digest): those of `list` (the
/// table's row digests, in order) that `only` names, if given, then the window of `page`.
/// One set lookup per row: linear in the rows and the digests named, not their product.
pub fn wanted_rows<'a>(list: &'a [String], only: Option<&[String]>, page: Page) -> Vec<(usize, &'a String)> {
    let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let take = page.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let only: Option<std::collections::HashSet<&str>> = only.map(|o| o.iter().map(String::as_str).collect());
    list.iter()
        .enumerate()
        .filter(|(_, d)| only.as_ref().is_none_or(|o| o.contains(d.as_str())))
        .skip(skip)
        .take(take)
        .collect()
}

/// Parses stored JSON text, treating text that is not JSON as a string value.
pub fn json_from_text(text: &str) -> Value {
    crate::domain::call::stored_json(text)
}
