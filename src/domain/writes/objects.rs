//! Writes of objects, tables and files: content-addressed, so that the refs a client computes
//! are the ones stored.

use serde_json::Value;

use crate::domain::call::now;
use crate::domain::digest::{bytes_digest, table_digest, value_digest};
use crate::domain::error::{Error, Result};
use crate::domain::object::{ObjectVersion, check_object_id, is_op, object_classes};
use crate::domain::store::Writer;

/// Stores a version of an object (or finds the identical one) and returns it.
/// A given `expected_digest` must match the server's digest (else 409).
pub fn create(
    w: &mut dyn Writer,
    project_id: &str,
    object_id: &str,
    val: Value,
    builtin_object_class: Option<&str>,
    expected_digest: Option<&str>,
    user: Option<&str>,
) -> Result<ObjectVersion> {
    check_object_id(object_id)?;
    let digest = value_digest(&val);
    if let Some(expected) = expected_digest
        && expected != digest
    {
        return Err(Error::Conflict(format!("Digest mismatch: expected {expected}, computed {digest}")));
    }
    let (leaf, base) = match object_classes(&val) {
        Some((leaf, base)) => (Some(leaf), Some(base)),
        None => (builtin_object_class.map(String::from), builtin_object_class.map(String::from)),
    };
    let kind = if is_op(&val) { "op" } else { "object" };
    w.put_object(&ObjectVersion {
        project_id: project_id.to_string(),
        object_id: object_id.to_string(),
        digest,
        version_index: 0,
        kind: kind.into(),
        base_object_class: base,
        leaf_object_class: leaf,
        val,
        created_at: now(),
        wb_user_id: user.map(String::from),
    })
}

/// Stores a table's rows (which must be objects); returns its digest and the row digests.
pub fn create_table(w: &mut dyn Writer, project_id: &str, rows: &[Value]) -> Result<(String, Vec<String>)> {
    let mut stored = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if !row.is_object() {
            return Err(Error::BadRequest(format!("Table row {i} is not an object")));
        }
        stored.push((value_digest(row), row.to_string()));
    }
    let row_digests: Vec<String> = stored.iter().map(|(d, _)| d.clone()).collect();
    let digest = table_digest(row_digests.iter().map(String::as_str));
    w.put_table(project_id, &digest, &stored, &row_digests)?;
    Ok((digest, row_digests))
}

/// Stores a file's bytes; returns their digest.
pub fn create_file(w: &mut dyn Writer, project_id: &str, content: &[u8]) -> Result<String> {
    let digest = bytes_digest(content);
    w.put_file(project_id, &digest, content)?;
    Ok(digest)
}
