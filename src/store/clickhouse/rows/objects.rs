//! Object versions, their tags and aliases, tables and their rows, and files.

use serde_json::json;

use super::{opt_time, time};
use crate::domain::call::Micros;
use crate::domain::error::{Error, Result};
use crate::domain::object::ObjectVersion;
use crate::store::json_from_text;

/// An object version with its soft-delete time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The version.
    pub object: ObjectVersion,
    /// When it was deleted, if it was.
    pub deleted_at: Option<Micros>,
}

/// The columns of an object version as [`ObjectTuple`] reads them.
pub const OBJECT_COLUMNS: &str = "project_id, object_id, digest, version_index, kind, base_object_class, \
    leaf_object_class, val, toUnixTimestamp64Micro(created_at), wb_user_id, \
    toUnixTimestamp64Micro(deleted_at)";

/// A row of [`OBJECT_COLUMNS`].
pub type ObjectTuple = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<String>,
    Option<Micros>,
);

/// Decodes a row of [`OBJECT_COLUMNS`].
pub fn object_from_tuple(t: ObjectTuple) -> StoredObject {
    StoredObject {
        object: ObjectVersion {
            project_id: t.0,
            object_id: t.1,
            digest: t.2,
            version_index: t.3,
            kind: t.4,
            base_object_class: t.5,
            leaf_object_class: t.6,
            val: json_from_text(&t.7),
            created_at: t.8,
            wb_user_id: t.9,
        },
        deleted_at: t.10,
    }
}

/// Encodes an object version as a row of the objects table.
pub fn object_line(s: &StoredObject, version: u64) -> Result<String> {
    let o = &s.object;
    Ok(json!({
        "project_id": o.project_id,
        "object_id": o.object_id,
        "digest": o.digest,
        "version_index": o.version_index,
        "kind": o.kind,
        "base_object_class": o.base_object_class,
        "leaf_object_class": o.leaf_object_class,
        "val": o.val.to_string(),
        "created_at": time(o.created_at)?,
        "wb_user_id": o.wb_user_id,
        "deleted_at": opt_time(s.deleted_at)?,
        "version": version,
    })
    .to_string())
}

/// [`OBJECT_COLUMNS`], with `'{}'` read in place of each value when `metadata_only`.
pub fn object_columns(metadata_only: bool) -> String {
    if metadata_only { OBJECT_COLUMNS.replacen(" val,", " '{}',", 1) } else { OBJECT_COLUMNS.to_string() }
}

/// A tag of an object version, or its removal.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub project_id: String,
    pub object_id: String,
    pub digest: String,
    pub tag: String,
    pub removed: bool,
}

impl TagRow {
    pub fn new(project: &str, object_id: &str, digest: &str, tag: &str, removed: bool) -> Self {
        TagRow {
            project_id: project.into(),
            object_id: object_id.into(),
            digest: digest.into(),
            tag: tag.into(),
            removed,
        }
    }
}

/// Encodes a tag as a row of the object_tags table.
pub fn tag_line(t: &TagRow, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": t.project_id,
        "object_id": t.object_id,
        "digest": t.digest,
        "tag": t.tag,
        "removed": t.removed,
        "version": version,
    })
    .to_string())
}

/// An alias of an object and the version it names, or its removal.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    pub project_id: String,
    pub object_id: String,
    pub alias: String,
    pub digest: String,
    pub removed: bool,
}

impl AliasRow {
    pub fn new(project: &str, object_id: &str, alias: &str, digest: &str, removed: bool) -> Self {
        AliasRow {
            project_id: project.into(),
            object_id: object_id.into(),
            alias: alias.into(),
            digest: digest.into(),
            removed,
        }
    }
}

/// Encodes an alias as a row of the object_aliases table.
pub fn alias_line(a: &AliasRow, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": a.project_id,
        "object_id": a.object_id,
        "alias": a.alias,
        "digest": a.digest,
        "removed": a.removed,
        "version": version,
    })
    .to_string())
}

/// Encodes a table row (content-addressed: any version of it is the same row).
pub fn table_row_line(project: &str, digest: &str, val: &str) -> String {
    json!({"project_id": project, "digest": digest, "val": val, "version": 0}).to_string()
}

/// Encodes a table's ordered row digests.
pub fn table_line(project: &str, digest: &str, row_digests: &[String]) -> String {
    json!({"project_id": project, "digest": digest, "row_digests": row_digests, "version": 0}).to_string()
}

/// Encodes a file, its bytes in base64.
pub fn file_line(project: &str, digest: &str, content: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    json!({"project_id": project, "digest": digest, "content_base64": encoded, "version": 0}).to_string()
}

/// Decodes a file's base64 bytes.
pub fn file_content(encoded: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Error::Storage(format!("a stored file is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn files_round_trip_any_bytes() {
        let bytes = [0u8, 255, 10, 13, 34, 92];
        let line: Value = serde_json::from_str(&file_line("p", "d", &bytes)).expect("json");
        let back = file_content(line["content_base64"].as_str().expect("text")).expect("bytes");
        assert_eq!(back, bytes);
    }
}
