//! Objects: versions, their tags and aliases (deleted with the versions they label), tables
//! and their rows, and files.

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::domain::call::Micros;
use crate::domain::error::{Error, Result};
use crate::domain::object::ObjectVersion;
use crate::store::sqlite::rows::{Arg, OBJECT_COLUMNS, json_text, object_from_row};
use crate::store::sqlite::storage;

/// Stores a version unless the object has one of that digest (then undeleted); answers the
/// version stored.
pub(super) fn put(conn: &Connection, o: &ObjectVersion) -> Result<ObjectVersion> {
    let existing = conn
        .prepare_cached(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3"
        ))
        .map_err(storage)?
        .query_row(params![o.project_id, o.object_id, o.digest], object_from_row)
        .optional()
        .map_err(storage)?;
    if let Some(found) = existing {
        conn.execute(
            "UPDATE objects SET deleted_at = NULL WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3",
            params![o.project_id, o.object_id, o.digest],
        )
        .map_err(storage)?;
        return Ok(found);
    }
    let next: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(version_index) + 1, 0) FROM objects WHERE project_id = ?1 AND object_id = ?2",
        )
        .map_err(storage)?
        .query_row(params![o.project_id, o.object_id], |r| r.get(0))
        .map_err(storage)?;
    conn.prepare_cached(&format!(
        "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .map_err(storage)?
    .execute(params![
        o.project_id,
        o.object_id,
        o.digest,
        next,
        o.kind,
        o.base_object_class,
        o.leaf_object_class,
        json_text(&o.val),
        o.created_at,
        o.wb_user_id,
    ])
    .map_err(storage)?;
    Ok(ObjectVersion { version_index: next, ..o.clone() })
}

pub(super) fn live(conn: &Connection, project: &str, object_id: &str, digest: &str) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM objects WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 \
         AND deleted_at IS NULL)",
    )
    .and_then(|mut s| s.query_row(params![project, object_id, digest], |r| r.get(0)))
    .map_err(storage)
}

/// Runs `sql` (an insert of a label of a version: a tag, or an alias naming it) once for each
/// of `names`, bound after the project, the object id and the digest.
fn insert_names(
    conn: &Connection,
    sql: &str,
    [project, object_id, digest]: [&str; 3],
    names: &[String],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
    for name in names {
        stmt.execute(params![project, object_id, digest, name]).map_err(storage)?;
    }
    Ok(())
}

pub(super) fn add_tags(
    conn: &Connection,
    project: &str,
    object_id: &str,
    digest: &str,
    tags: &[String],
) -> Result<()> {
    let sql =
        "INSERT OR IGNORE INTO object_tags (project_id, object_id, digest, tag) VALUES (?1, ?2, ?3, ?4)";
    insert_names(conn, sql, [project, object_id, digest], tags)
}

pub(super) fn set_aliases(
    conn: &Connection,
    project: &str,
    object_id: &str,
    digest: &str,
    aliases: &[String],
) -> Result<()> {
    let sql = "INSERT OR REPLACE INTO object_aliases (project_id, object_id, digest, alias) VALUES (?1, ?2, ?3, ?4)";
    insert_names(conn, sql, [project, object_id, digest], aliases)
}

/// Deletes the rows of `sql` (a `DELETE` whose last parameter is the list of names) for
/// `names`, after `key`.
fn delete_names(conn: &Connection, sql: &str, key: &[&str], names: &[String]) -> Result<()> {
    let mut args: Vec<Arg<'_>> = key.iter().map(|k| Arg::Text(k)).collect();
    args.push(Arg::list(names.iter().map(String::as_str)));
    conn.prepare_cached(sql).and_then(|mut s| s.execute(params_from_iter(args))).map(drop).map_err(storage)
}

pub(super) fn remove_tags(
    conn: &Connection,
    project: &str,
    object_id: &str,
    digest: &str,
    tags: &[String],
) -> Result<()> {
    let sql = "DELETE FROM object_tags WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 AND tag IN rarray(?4)";
    delete_names(conn, sql, &[project, object_id, digest], tags)
}

pub(super) fn remove_aliases(
    conn: &Connection,
    project: &str,
    object_id: &str,
    aliases: &[String],
) -> Result<()> {
    let sql = "DELETE FROM object_aliases WHERE project_id = ?1 AND object_id = ?2 AND alias IN rarray(?3)";
    delete_names(conn, sql, &[project, object_id], aliases)
}

/// Soft-deletes the live versions of an object (those of `digests`, if given) with their tags
/// and the aliases naming them; returns how many.
pub(super) fn delete(
    conn: &Connection,
    project: &str,
    object_id: &str,
    digests: Option<&[String]>,
    at: Micros,
) -> Result<u64> {
    let only = if digests.is_some() { " AND digest IN rarray(?)" } else { "" };
    let list = || digests.map(|d| Arg::list(d.iter().map(String::as_str)));
    // The tags of the versions deleted, and the aliases naming them, go with them.
    for table in ["object_tags", "object_aliases"] {
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(project), Arg::Text(object_id)];
        args.extend(list());
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE project_id = ? AND object_id = ?{only}"))
            .and_then(|mut s| s.execute(params_from_iter(args)))
            .map_err(storage)?;
    }
    let sql = format!(
        "UPDATE objects SET deleted_at = ? WHERE project_id = ? AND object_id = ? AND deleted_at IS NULL{only}"
    );
    let at = at.to_string();
    let mut args: Vec<Arg<'_>> = vec![Arg::Text(&at), Arg::Text(project), Arg::Text(object_id)];
    args.extend(list());
    let n = conn.prepare_cached(&sql).and_then(|mut s| s.execute(params_from_iter(args))).map_err(storage)?;
    Ok(n as u64)
}

pub(super) fn put_table(
    conn: &Connection,
    project: &str,
    digest: &str,
    rows: &[(String, String)],
    row_digests: &[String],
) -> Result<()> {
    let mut insert_row = conn
        .prepare_cached("INSERT OR IGNORE INTO table_rows (project_id, digest, val) VALUES (?1, ?2, ?3)")
        .map_err(storage)?;
    for (d, val) in rows {
        insert_row.execute(params![project, d, val]).map_err(storage)?;
    }
    let digests = serde_json::to_string(row_digests).map_err(|e| Error::Storage(e.to_string()))?;
    conn.prepare_cached("INSERT OR IGNORE INTO tables (project_id, digest, row_digests) VALUES (?1, ?2, ?3)")
        .map_err(storage)?
        .execute(params![project, digest, digests])
        .map(drop)
        .map_err(storage)
}

pub(super) fn missing_table_rows(conn: &Connection, project: &str, digests: &[&str]) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM table_rows WHERE project_id = ?1 AND digest = ?2")
        .map_err(storage)?;
    let mut missing = Vec::new();
    for d in digests {
        if !stmt.exists(params![project, d]).map_err(storage)? {
            missing.push((*d).to_string());
        }
    }
    Ok(missing)
}

pub(super) fn put_file(conn: &Connection, project: &str, digest: &str, content: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO files (project_id, digest, content) VALUES (?1, ?2, ?3)")
        .map_err(storage)?
        .execute(params![project, digest, content])
        .map(drop)
        .map_err(storage)
}
