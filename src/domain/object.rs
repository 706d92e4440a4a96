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
    /// By an alias set on a version, or by digest if no alias of that name is set.
    Alias(String),
}

impl Version {
    /// Reads `latest`, `v<N>`, a digest (what looks like a content hash) or an alias (anything
    /// else), as Weave tells them apart.
    pub fn parse(s: &str) -> Version {
        if s == "latest" {
            return Version::Latest;
        }
        if let Some(n) = s.strip_prefix('v').and_then(|n| n.parse().ok()) {
            return Version::Index(n);
        }
        if is_content_hash(s) { Version::Digest(s.to_string()) } else { Version::Alias(s.to_string()) }
    }
}

/// Whether `s` looks like a content hash: a Weave digest (43 letters and digits) or hex SHA-256.
pub fn is_content_hash(s: &str) -> bool {
    (s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        || (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Longest tag accepted.
pub const MAX_TAG: usize = 256;
/// Longest alias accepted.
pub const MAX_ALIAS: usize = 128;

fn name_issue(field: &str, i: usize, name: &str, msg: String) -> Error {
    Error::invalid(super::error::Issue {
        kind: "value_error",
        loc: vec![serde_json::json!("body"), serde_json::json!(field), serde_json::json!(i)],
        msg: format!("Value error, {msg}"),
        input: Value::String(name.to_string()),
        ctx: None,
    })
}

/// The tags of a request, each checked as Weave checks them (words of letters, digits, `-` and
/// `_` with single spaces between, at most [`MAX_TAG`] characters; else a 422), each once.
pub fn check_tags(tags: &[String]) -> Result<Vec<String>> {
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() {
            return Err(name_issue("tags", i, t, "tag name must not be empty".into()));
        }
        if t.chars().count() > MAX_TAG {
            return Err(name_issue("tags", i, t, format!("tag name must be at most {MAX_TAG} characters")));
        }
        if !t.split(' ').all(word) {
            return Err(name_issue(
                "tags",
                i,
                t,
                format!(
                    "tag name {t:?} is invalid: only alphanumeric characters, hyphens, underscores, \
                     and single spaces between words are allowed"
                ),
            ));
        }
    }
    Ok(distinct(tags))
}

/// The aliases of a request, each checked as Weave checks them (not blank, at most
/// [`MAX_ALIAS`] characters, no `/` or `:`, not `latest` nor `v<N>`; else a 422), each once.
pub fn check_aliases(aliases: &[String]) -> Result<Vec<String>> {
    for (i, a) in aliases.iter().enumerate() {
        let bad = |msg: String| Err(name_issue("aliases", i, a, msg));
        if a.is_empty() {
            return bad("alias name must not be empty".into());
        }
        if a.trim().is_empty() {
            return bad("alias name must not be whitespace-only".into());
        }
        if a.chars().count() > MAX_ALIAS {
            return bad(format!("alias name must be at most {MAX_ALIAS} characters"));
        }
        if let Some(c) = a.chars().find(|c| matches!(c, '/' | ':')) {
            return bad(format!("alias name cannot contain character '{c}'"));
        }
        let digits = a.strip_prefix('v').unwrap_or("");
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return bad(format!("alias name '{a}' is reserved (matches version pattern v<number>)"));
        }
        if a == "latest" {
            return bad(format!("alias name '{a}' is reserved"));
        }
    }
    Ok(distinct(aliases))
}

/// `names` without repeats, in their first order.
fn distinct(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names.iter().filter(|n| seen.insert(n.as_str())).cloned().collect()
}

/// The tags and aliases stored for an object version (aliases without the implicit `latest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Its tags, in any order.
    pub tags: Vec<String>,
    /// The aliases naming it, in any order.
    pub aliases: Vec<String>,
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
    /// Its tags, sorted, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The aliases naming it (`latest` first if it is the latest version), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
}

impl ObjSchema {
    /// Adds the version's tags (sorted) and aliases (`latest` first when it is the latest
    /// version, then the others sorted), as Weave answers `include_tags_and_aliases`.
    pub fn with_labels(mut self, labels: Labels) -> Self {
        let Labels { mut tags, mut aliases } = labels;
        tags.sort();
        tags.dedup();
        aliases.retain(|a| a != "latest");
        aliases.sort();
        aliases.dedup();
        if self.is_latest == 1 {
            aliases.insert(0, "latest".into());
        }
        self.tags = Some(tags);
        self.aliases = Some(aliases);
        self
    }

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
            tags: None,
            aliases: None,
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

/// What an objects query may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectSortField {
    /// The object id.
    ObjectId,
    /// When the version was stored.
    CreatedAt,
}

/// One key of an objects query's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectSort {
    /// The field.
    pub field: ObjectSortField,
    /// Descending if true.
    pub descending: bool,
}

impl ObjectSort {
    /// Reads a `sort_by` entry: `object_id` or `created_at`, `asc` or `desc` (else a 400).
    pub fn parse(field: &str, direction: &str) -> Result<Self> {
        let field = match field {
            "object_id" => ObjectSortField::ObjectId,
            "created_at" => ObjectSortField::CreatedAt,
            other => {
                return Err(Error::BadRequest(format!(
                    "Unsupported sort_by field {other:?}: objects sort by object_id or created_at"
                )));
            }
        };
        let descending = match direction {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(Error::BadRequest(format!("Invalid sort direction {other:?}: use asc or desc")));
            }
        };
        Ok(ObjectSort { field, descending })
    }
}

/// Filters of an objects query.
#[derive(Debug, Clone, Default)]
pub struct ObjectQuery {
    /// Only these object ids.
    pub object_ids: Vec<String>,
    /// Only these base classes.
    pub base_object_classes: Vec<String>,
    /// None of these base classes (a version without a base class is left out too, as in
    /// Weave).
    pub exclude_base_object_classes: Vec<String>,
    /// Only these leaf classes.
    pub leaf_object_classes: Vec<String>,
    /// Only versions with any of these tags.
    pub tags: Vec<String>,
    /// Only versions any of these aliases name (`latest` names each object's latest version).
    pub aliases: Vec<String>,
    /// Only ops (`Some(true)`) or only non-ops (`Some(false)`).
    pub is_op: Option<bool>,
    /// Only the latest version of each object.
    pub latest_only: bool,
    /// The order: these keys, then the version index; by object id then version if empty.
    pub sort: Vec<ObjectSort>,
    /// Values left out (each answered as `{}`), not read from the store.
    pub metadata_only: bool,
    /// Each version's [`Labels`] read too.
    pub with_labels: bool,
    /// Window over the result, in its order.
    pub page: super::page::Page,
}

/// The map of an object, or a 400 naming the field.
pub fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| Error::BadRequest(format!("{what} must be an object")))
}
