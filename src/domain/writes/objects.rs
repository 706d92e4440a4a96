//! Writes of objects, tables and files: content-addressed, so that the refs a client computes
//! are the ones stored.

use std::collections::HashSet;

use serde_json::Value;

use crate::domain::call::now;
use crate::domain::digest::{bytes_digest, table_digest, value_digest};
use crate::domain::error::{Error, Result};
use crate::domain::object::{
    ObjectVersion, check_aliases, check_object_id, check_tags, is_op, object_classes,
};
use crate::domain::store::Writer;
use crate::domain::table::{TableUpdate, apply_updates};

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

/// A 404 unless a live version of `object_id` has this digest.
fn live_version(w: &mut dyn Writer, project_id: &str, object_id: &str, digest: &str) -> Result<()> {
    if w.object_live(project_id, object_id, digest)? {
        Ok(())
    } else {
        Err(Error::NotFound(format!("Object version {object_id}:{digest} not found")))
    }
}

/// Adds tags (checked as Weave checks them, 422) to a live object version (else 404).
pub fn add_tags(
    w: &mut dyn Writer,
    project_id: &str,
    object_id: &str,
    digest: &str,
    tags: &[String],
) -> Result<()> {
    let tags = check_tags(tags)?;
    live_version(w, project_id, object_id, digest)?;
    w.add_tags(project_id, object_id, digest, &tags)
}

/// Removes tags from an object version; tags it lacks, or a version that is not stored, are
/// no error (as in Weave).
pub fn remove_tags(
    w: &mut dyn Writer,
    project_id: &str,
    object_id: &str,
    digest: &str,
    tags: &[String],
) -> Result<()> {
    w.remove_tags(project_id, object_id, digest, tags)
}

/// Points aliases (checked as Weave checks them, 422) at a live object version (else 404),
/// moving each from the version it named before.
pub fn set_aliases(
    w: &mut dyn Writer,
    project_id: &str,
    object_id: &str,
    digest: &str,
    aliases: &[String],
) -> Result<()> {
    let aliases = check_aliases(aliases)?;
    live_version(w, project_id, object_id, digest)?;
    w.set_aliases(project_id, object_id, digest, &aliases)
}

/// Removes aliases (checked as Weave checks them, 422) of an object; those not set are no error.
pub fn remove_aliases(
    w: &mut dyn Writer,
    project_id: &str,
    object_id: &str,
    aliases: &[String],
) -> Result<()> {
    let aliases = check_aliases(aliases)?;
    w.remove_aliases(project_id, object_id, &aliases)
}

/// A 409 unless `expected` (a digest the client computed, if it sent one) is `actual`.
fn check_expected(expected: Option<&str>, actual: &str, what: &str) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::Conflict(format!(
            "Digest mismatch for {what}: expected {expected}, computed {actual}"
        ))),
        _ => Ok(()),
    }
}

/// Stores a table's rows (which must be objects); returns its digest and the row digests.
/// A given `expected_digest` must match the table's digest (else 409, nothing stored).
pub fn create_table(
    w: &mut dyn Writer,
    project_id: &str,
    rows: &[Value],
    expected_digest: Option<&str>,
) -> Result<(String, Vec<String>)> {
    let mut stored = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if !row.is_object() {
            return Err(Error::BadRequest(format!("Table row {i} is not an object")));
        }
        stored.push((value_digest(row), row.to_string()));
    }
    let row_digests: Vec<String> = stored.iter().map(|(d, _)| d.clone()).collect();
    let digest = table_digest(row_digests.iter().map(String::as_str));
    check_expected(expected_digest, &digest, &format!("table ({} rows)", row_digests.len()))?;
    w.put_table(project_id, &digest, &stored, &row_digests)?;
    Ok((digest, row_digests))
}

/// Stores a table made of rows the project holds already, named by digest (in order, repeats
/// allowed); returns its digest. A 400 names the first digests no stored row has (nothing is
/// stored then); a given `expected_digest` must match (else 409).
pub fn create_table_from_digests(
    w: &mut dyn Writer,
    project_id: &str,
    row_digests: &[String],
    expected_digest: Option<&str>,
) -> Result<String> {
    let digest = table_digest(row_digests.iter().map(String::as_str));
    check_expected(expected_digest, &digest, &format!("table ({} rows)", row_digests.len()))?;
    let distinct: Vec<&str> = {
        let mut seen = HashSet::new();
        row_digests.iter().map(String::as_str).filter(|d| seen.insert(*d)).collect()
    };
    let missing = w.missing_table_rows(project_id, &distinct)?;
    if !missing.is_empty() {
        const SHOWN: usize = 5;
        let shown = missing.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
        let more = missing.len().saturating_sub(SHOWN);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        return Err(Error::BadRequest(format!(
            "row_digests: {} of the rows named are not stored in project {project_id}: {shown}{more}",
            missing.len()
        )));
    }
    w.put_table(project_id, &digest, &[], row_digests)?;
    Ok(digest)
}

/// Applies `updates` to table `base_digest` (404 if the project has no such table) and stores
/// the result as a new table; returns its digest and the digests of the rows each update added
/// or removed, as Weave answers `table/update`.
pub fn update_table(
    w: &mut dyn Writer,
    project_id: &str,
    base_digest: &str,
    updates: Vec<TableUpdate>,
) -> Result<(String, Vec<String>)> {
    let mut list = w
        .table_digests(project_id, base_digest)?
        .ok_or_else(|| Error::NotFound(format!("Table {base_digest} not found")))?;
    let (updated, new_rows) = apply_updates(&mut list, updates)?;
    let stored: Vec<(String, String)> = new_rows.into_iter().map(|(d, row)| (d, row.to_string())).collect();
    let digest = table_digest(list.iter().map(String::as_str));
    w.put_table(project_id, &digest, &stored, &list)?;
    Ok((digest, updated))
}

/// Stores a file's bytes; returns their digest.
pub fn create_file(w: &mut dyn Writer, project_id: &str, content: &[u8]) -> Result<String> {
    let digest = bytes_digest(content);
    w.put_file(project_id, &digest, content)?;
    Ok(digest)
}
