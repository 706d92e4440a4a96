//! Tables as Weave reads and changes them: `table/query` (rows named by digest, sorted by
//! fields of the row value, windowed) and `table/update`'s edits (append, pop, insert).
//!
//! Sorting follows Weave's order for a field of a JSON value: rows where the field is present
//! and not `null` come first (in both directions); then by the field's value read as a number
//! (numbers, and strings that parse as one), rows without such a value after the others; then
//! by its text (a string's characters, a number's or a boolean's JSON, empty for an object or
//! a list). weft ends ties by the row's position in the table, so an order is always the same.
//! A sorted query reads each row twice and keeps only the sort keys of all rows in between:
//! what it holds is bounded by the keys, not by the rows.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::Value;

use super::error::{Error, Result};
use super::object::{TableRow, row_value, wanted_rows};
use super::page::Page;
use super::store::Store;

/// One edit of `table/update`, as Weave's `TableUpdateSpec` is sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum TableUpdate {
    /// `{"append": {"row": {...}}}`: adds a row at the end.
    Append {
        /// The row.
        row: Value,
    },
    /// `{"pop": {"index": n}}`: removes the row at `index`.
    Pop {
        /// Its position, from 0.
        #[serde(deserialize_with = "super::body::int")]
        index: i64,
    },
    /// `{"insert": {"index": n, "row": {...}}}`: puts a row before position `index`.
    Insert {
        /// Its position, from 0 to the table's length.
        #[serde(deserialize_with = "super::body::int")]
        index: i64,
        /// The row.
        row: Value,
    },
}

/// A `sort_by` entry of `table/query`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    path: Vec<PathPart>,
    descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum PathPart {
    Key(String),
    /// A part that reads as an integer indexes a list, as in Weave's JSON paths.
    Index(i64),
}

impl SortField {
    /// A field (dot-separated keys into the row value) and a direction (`asc` or `desc`);
    /// a 400 naming what is wrong otherwise.
    pub fn parse(field: &str, direction: &str) -> Result<SortField> {
        let descending = match direction {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid sort direction {other:?} for field {field:?} in sort_by: use \"asc\" or \"desc\""
                )));
            }
        };
        if field.trim().is_empty() {
            return Err(Error::BadRequest("Sort field cannot be empty".into()));
        }
        if field.starts_with('.') || field.ends_with('.') || field.contains("..") {
            return Err(Error::BadRequest(format!(
                "Invalid sort field '{field}': field names cannot start/end with dots or contain consecutive dots"
            )));
        }
        let parts: Vec<&str> = field.split('.').collect();
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(Error::BadRequest(format!(
                "Invalid sort field '{field}': field path components cannot be empty"
            )));
        }
        let path = parts
            .into_iter()
            .map(|p| match p.parse::<i64>() {
                Ok(i) => PathPart::Index(i),
                Err(_) => PathPart::Key(p.to_string()),
            })
            .collect();
        Ok(SortField { path, descending })
    }

    /// The sort key of a row value.
    fn key(&self, row: &Value) -> SortKey {
        let mut v = Some(row);
        for part in &self.path {
            v = v.and_then(|v| match (part, v) {
                (PathPart::Key(k), Value::Object(m)) => m.get(k),
                (PathPart::Index(i), Value::Array(a)) => usize::try_from(*i).ok().and_then(|i| a.get(i)),
                _ => None,
            });
        }
        match v {
            None | Some(Value::Null) => SortKey { present: false, number: None, text: String::new() },
            Some(v) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => String::new(),
                };
                let number = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                SortKey { present: true, number, text }
            }
        }
    }
}

/// What a row is ordered by, for one field.
#[derive(Debug, Clone, PartialEq)]
struct SortKey {
    present: bool,
    number: Option<f64>,
    text: String,
}

impl SortKey {
    fn cmp(&self, other: &SortKey, descending: bool) -> Ordering {
        let directed = |o: Ordering| if descending { o.reverse() } else { o };
        // Present first, whatever the direction; values without a number after the others.
        other
            .present
            .cmp(&self.present)
            .then_with(|| match (self.number, other.number) {
                (Some(a), Some(b)) => directed(a.total_cmp(&b)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| directed(self.text.cmp(&other.text)))
    }
}

/// A `table/query`, checked.
#[derive(Debug, Clone, Default)]
pub struct TableQuery {
    /// Only rows with these digests, if given and not empty (an empty list filters nothing,
    /// as on Weave's servers).
    pub only: Option<Vec<String>>,
    /// The order; the table's own when empty.
    pub sort_by: Vec<SortField>,
    /// The window, after filtering and sorting.
    pub page: Page,
}

/// Streams the rows of table `digest` that `q` asks for, in its order, to `sink` until it
/// returns `false`. A 404 if there is no such table (before any row).
pub fn query(
    store: &dyn Store,
    project: &str,
    digest: &str,
    q: &TableQuery,
    sink: &mut dyn FnMut(TableRow) -> bool,
) -> Result<()> {
    let list = store
        .table_digests(project, digest)?
        .ok_or_else(|| Error::NotFound(format!("Table {digest} not found")))?;
    let only = q.only.as_deref().filter(|d| !d.is_empty());
    if q.sort_by.is_empty() {
        let wanted = wanted_rows(&list, only, q.page);
        return emit(store, project, &wanted, sink);
    }
    let all = wanted_rows(&list, only, Page::default());
    // First pass: the sort keys of every row (rows not stored are left out, as in a plain read).
    let mut keyed: Vec<(Vec<SortKey>, usize)> = Vec::with_capacity(all.len());
    let digests: Vec<&str> = all.iter().map(|(_, d)| d.as_str()).collect();
    store.table_row_texts(project, &digests, &mut |k, text| {
        let val = row_value(text);
        keyed.push((q.sort_by.iter().map(|f| f.key(&val)).collect(), k));
        true
    })?;
    keyed.sort_by(|(a, i), (b, j)| {
        a.iter()
            .zip(b)
            .zip(&q.sort_by)
            .map(|((x, y), f)| x.cmp(y, f.descending))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(i.cmp(j))
    });
    let skip = usize::try_from(q.page.offset).unwrap_or(usize::MAX);
    let take = q.page.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let window: Vec<(usize, &String)> = keyed.iter().skip(skip).take(take).map(|(_, k)| all[*k]).collect();
    drop(keyed);
    emit(store, project, &window, sink)
}

/// Reads the rows `wanted` (position in the table, digest), in that order, into `sink`.
fn emit(
    store: &dyn Store,
    project: &str,
    wanted: &[(usize, &String)],
    sink: &mut dyn FnMut(TableRow) -> bool,
) -> Result<()> {
    let digests: Vec<&str> = wanted.iter().map(|(_, d)| d.as_str()).collect();
    store.table_row_texts(project, &digests, &mut |k, text| {
        let (i, d) = wanted[k];
        sink(TableRow { digest: d.clone(), val: row_value(text), original_index: i as i64 })
    })
}

/// What applying updates gives: the digests of the rows each update added or removed, and the
/// new rows to store as (digest, row).
pub type Applied = (Vec<String>, Vec<(String, Value)>);

/// Applies `updates` to a table's row digests as Weave does: returns the digests of the rows
/// each update added or removed, in order, and the new rows to store as (digest, row) (each
/// new digest once, none the table had). A 400 names the first update that does not apply.
pub fn apply_updates(list: &mut Vec<String>, updates: Vec<TableUpdate>) -> Result<Applied> {
    let mut known: std::collections::HashSet<String> = list.iter().cloned().collect();
    let mut updated = Vec::with_capacity(updates.len());
    let mut new_rows = Vec::new();
    let mut add = |i: usize, row: Value, new_rows: &mut Vec<(String, Value)>| -> Result<String> {
        if !row.is_object() {
            return Err(Error::BadRequest(format!("Table update {i}: the row is not an object")));
        }
        let d = super::digest::value_digest(&row);
        if known.insert(d.clone()) {
            new_rows.push((d.clone(), row));
        }
        Ok(d)
    };
    for (i, u) in updates.into_iter().enumerate() {
        match u {
            TableUpdate::Append { row } => {
                let d = add(i, row, &mut new_rows)?;
                list.push(d.clone());
                updated.push(d);
            }
            TableUpdate::Pop { index } => {
                let at = usize::try_from(index).ok().filter(|&at| at < list.len()).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Table update {i}: pop index {index} out of range (the table has {} rows)",
                        list.len()
                    ))
                })?;
                updated.push(list.remove(at));
            }
            TableUpdate::Insert { index, row } => {
                let at = usize::try_from(index).ok().filter(|&at| at <= list.len()).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Table update {i}: insert index {index} out of range (the table has {} rows)",
                        list.len()
                    ))
                })?;
                let d = add(i, row, &mut new_rows)?;
                list.insert(at, d.clone());
                updated.push(d);
            }
        }
    }
    Ok((updated, new_rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(field: &str, dir: &str, rows: &[Value]) -> Vec<usize> {
        let f = SortField::parse(field, dir).unwrap();
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        idx.sort_by(|&a, &b| f.key(&rows[a]).cmp(&f.key(&rows[b]), f.descending).then(a.cmp(&b)));
        idx
    }

    #[test]
    fn numbers_sort_as_numbers_and_missing_values_go_last_both_ways() {
        let rows = [
            json!({"n": 10}),
            json!({"n": 9.5}),
            json!({}),
            json!({"n": null}),
            json!({"n": "2"}),
            json!({"n": "b"}),
        ];
        assert_eq!(order("n", "asc", &rows), vec![4, 1, 0, 5, 2, 3]);
        assert_eq!(order("n", "desc", &rows), vec![0, 1, 4, 5, 2, 3]);
    }

    #[test]
    fn nested_fields_and_list_indexes() {
        let rows = [json!({"a": {"b": "y"}}), json!({"a": {"b": "x"}}), json!({"a": [1]})];
        assert_eq!(order("a.b", "asc", &rows), vec![1, 0, 2]);
        let rows = [json!({"l": [3, 1]}), json!({"l": [2]})];
        assert_eq!(order("l.0", "asc", &rows), vec![1, 0]);
    }

    #[test]
    fn bad_fields_and_directions_are_400s_naming_them() {
        for (f, d) in [("", "asc"), (".a", "asc"), ("a..b", "asc"), ("a. .b", "asc"), ("a", "up")] {
            let e = SortField::parse(f, d).unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{f:?} {d:?}: {e:?}");
        }
        let e = SortField::parse("score", "ASC").unwrap_err().to_string();
        assert!(e.contains("score") && e.contains("ASC"), "{e}");
    }

    #[test]
    fn updates_apply_in_order_as_weave_applies_them() {
        let (a, b, c) = (json!({"a": 1}), json!({"b": 2}), json!({"c": 3}));
        let da = super::super::digest::value_digest(&a);
        let mut list = vec![da.clone()];
        let ups = vec![
            TableUpdate::Append { row: b.clone() },
            TableUpdate::Insert { index: 0, row: c.clone() },
            TableUpdate::Pop { index: 1 },
            TableUpdate::Append { row: a.clone() },
        ];
        let (updated, new_rows) = apply_updates(&mut list, ups).unwrap();
        let (db, dc) = (super::super::digest::value_digest(&b), super::super::digest::value_digest(&c));
        assert_eq!(list, vec![dc.clone(), db.clone(), da.clone()]);
        assert_eq!(updated, vec![db.clone(), dc.clone(), da.clone(), da]);
        assert_eq!(new_rows, vec![(db, b), (dc, c)], "known rows are not stored again");
        let mut list = vec![];
        assert!(apply_updates(&mut list, vec![TableUpdate::Pop { index: 0 }]).is_err());
        assert!(apply_updates(&mut list, vec![TableUpdate::Insert { index: 1, row: json!({}) }]).is_err());
        assert!(apply_updates(&mut list, vec![TableUpdate::Append { row: json!(1) }]).is_err());
    }
}
