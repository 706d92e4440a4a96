//! Content-addressed objects, tables and files: what refs point at.

use serde::Serialize;
use serde_json::{Map, Value};

use super::call::{Micros, format_time};
use super::error::{Error, Result};
use super::page::Page;

/// Longest object id accepted.
pub const MAX_OBJECT_ID: usize = 128;

/// One version of an object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectVersion {
    /// `"{entity}/{project}"`.
    pub project_id: String,
    /// The object's name.
    pub object_id: String,
    /// Digest of the value.
    pub digest: String,
    /// 0 for the first version of this object id, then 1, 2...
    pub version_index: i64,
    /// `op` or `object`.
    pub kind: String,
    /// Weave base class (`Model`, `Dataset`, `Evaluation`...), if the value names one.
    pub base_object_class: Option<String>,
    /// The value's own class, if it names one.
    pub leaf_object_class: Option<String>,
    /// The value.
    pub val: Value,
    /// When this version was first stored.
    pub created_at: Micros,
    /// Who stored it.
    pub wb_user_id: Option<String>,
}

/// Which version of an object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// The newest version.
    Latest,
    /// By version index (`v3`).
    Index(i64),
    /// By digest.
    Digest(String),
}

impl Version {
    /// Reads `latest`, `v<N>` or a digest.
    pub fn parse(s: &str) -> Version {
        if s == "latest" {
            return Version::Latest;
        }
        match s.strip_prefix('v').and_then(|n| n.parse().ok()) {
            Some(n) => Version::Index(n),
            None => Version::Digest(s.to_string()),
        }
    }
}

/// `ObjSchema`, as the trace API returns objects.
#[derive(Debug, Clone, Serialize)]
pub struct ObjSchema {
    pub project_id: String,
    pub object_id: String,
    pub created_at: String,
    pub deleted_at: Option<String>,
    pub digest: String,
    pub version_index: i64,
    pub is_latest: i64,
    pub kind: String,
    pub base_object_class: Option<String>,
    pub leaf_object_class: Option<String>,
    pub val: Value,
    pub wb_user_id: Option<String>,
}

impl ObjSchema {
    /// The wire form of a stored version; `is_latest` says whether it is the newest.
    pub fn of(o: ObjectVersion, is_latest: bool) -> Self {
        ObjSchema {
            project_id: o.project_id,
            object_id: o.object_id,
            created_at: format_time(o.created_at),
            deleted_at: None,
            digest: o.digest,
            version_index: o.version_index,
            is_latest: i64::from(is_latest),
            kind: o.kind,
            base_object_class: o.base_object_class,
            leaf_object_class: o.leaf_object_class,
            val: o.val,
            wb_user_id: o.wb_user_id,
        }
    }
}

/// Checks an object id: 1 to 128 characters of letters, digits, `-`, `_` and `.`.
pub fn check_object_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_OBJECT_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Invalid object id {id:?}: use 1 to {MAX_OBJECT_ID} letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The classes a value names through Weave's `_class_name` / `_bases` keys:
/// (leaf class, base class) when its bases end in `Object|BaseObject`, `BaseModel`.
pub fn object_classes(val: &Value) -> Option<(String, String)> {
    let bases: Vec<&str> = val.get("_bases")?.as_array()?.iter().filter_map(Value::as_str).collect();
    let class = val.get("_class_name")?.as_str()?;
    let n = bases.len();
    if n < 2 || bases[n - 1] != "BaseModel" || !matches!(bases[n - 2], "Object" | "BaseObject") {
        return None;
    }
    let base = if n > 2 { bases[n - 3] } else { class };
    Some((class.to_string(), base.to_string()))
}

/// Whether a value is a serialized op.
pub fn is_op(val: &Value) -> bool {
    val.get("_type").and_then(Value::as_str) == Some("CustomWeaveType")
        && val.get("weave_type").and_then(|t| t.get("type")).and_then(Value::as_str) == Some("Op")
}

/// One row of a table as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRow {
    /// The row's digest.
    pub digest: String,
    /// The row.
    pub val: Value,
    /// Its position in the table.
    pub original_index: i64,
}

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

/// A stored row's JSON text as a value (text that is not JSON reads as a string).
pub fn row_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Filters of an objects query.
#[derive(Debug, Clone, Default)]
pub struct ObjectQuery {
    /// Only these object ids.
    pub object_ids: Vec<String>,
    /// Only these base classes.
    pub base_object_classes: Vec<String>,
    /// Only ops (`Some(true)`) or only non-ops (`Some(false)`).
    pub is_op: Option<bool>,
    /// Only the latest version of each object.
    pub latest_only: bool,
    /// Window over the result (ordered by object id, then version).
    pub page: super::page::Page,
}

/// The map of an object, or a 400 naming the field.
pub fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| Error::BadRequest(format!("{what} must be an object")))
}
