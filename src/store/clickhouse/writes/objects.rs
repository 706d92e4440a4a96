//! Objects in a batch: versions, their tags and aliases (dropped with the versions they
//! label), tables and their rows.

use std::collections::HashSet;

use super::Tx;
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::object::ObjectVersion;
use crate::store::clickhouse::client::Query;
use crate::store::clickhouse::rows::{
    AliasRow, OBJECT_COLUMNS, ObjectTuple, StoredObject, TagRow, object_from_tuple, table_line,
    table_row_line,
};

/// Every version (deleted or not) of an object as the batch sees them.
fn versions(tx: &mut Tx<'_>, project: &str, object_id: &str) -> Result<Vec<StoredObject>> {
    let mut q = Query::default();
    let (p, o) = (q.string(project), q.string(object_id));
    q.push(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects FINAL WHERE project_id = {p} AND object_id = {o} \
         FORMAT JSONCompactEachRow"
    ));
    for t in tx.client.query_all::<ObjectTuple>(&q)? {
        let s = object_from_tuple(t);
        let key = (project.to_string(), object_id.to_string(), s.object.digest.clone());
        tx.objects.remember(key, Some(s));
    }
    Ok(tx
        .objects
        .rows()
        .filter(|((p, o, _), _)| p == project && o == object_id)
        .map(|(_, s)| s.clone())
        .collect())
}

pub(super) fn put(tx: &mut Tx<'_>, o: &ObjectVersion) -> Result<ObjectVersion> {
    let versions = versions(tx, &o.project_id, &o.object_id)?;
    let key = (o.project_id.clone(), o.object_id.clone(), o.digest.clone());
    if let Some(found) = versions.iter().find(|s| s.object.digest == o.digest) {
        if found.deleted_at.is_some() {
            tx.objects.put(key, StoredObject { object: found.object.clone(), deleted_at: None });
        }
        return Ok(found.object.clone());
    }
    let next = versions.iter().map(|s| s.object.version_index + 1).max().unwrap_or(0);
    let stored = ObjectVersion { version_index: next, ..o.clone() };
    tx.objects.put(key, StoredObject { object: stored.clone(), deleted_at: None });
    Ok(stored)
}

pub(super) fn live(tx: &mut Tx<'_>, project: &str, object_id: &str, digest: &str) -> Result<bool> {
    Ok(versions(tx, project, object_id)?.iter().any(|s| s.object.digest == digest && s.deleted_at.is_none()))
}

/// Soft-deletes the live versions of an object (those of `digests`, if given) with their
/// labels; returns how many.
pub(super) fn delete(
    tx: &mut Tx<'_>,
    project: &str,
    object_id: &str,
    digests: Option<&[String]>,
    at: Micros,
) -> Result<u64> {
    let mut n = 0;
    let digests: Option<HashSet<&str>> = digests.map(|d| d.iter().map(String::as_str).collect());
    let mut deleted = HashSet::new();
    for s in versions(tx, project, object_id)? {
        if s.deleted_at.is_some() || digests.as_ref().is_some_and(|d| !d.contains(s.object.digest.as_str())) {
            continue;
        }
        deleted.insert(s.object.digest.clone());
        let key = (project.to_string(), object_id.to_string(), s.object.digest.clone());
        tx.objects.put(key, StoredObject { object: s.object, deleted_at: Some(at) });
        n += 1;
    }
    drop_labels(tx, project, object_id, &deleted)?;
    Ok(n)
}

/// Adds tags to a version, or removes them.
pub(super) fn put_tags(
    tx: &mut Tx<'_>,
    project: &str,
    object_id: &str,
    digest: &str,
    tags: &[String],
    removed: bool,
) {
    for tag in tags {
        let row = TagRow::new(project, object_id, digest, tag, removed);
        tx.tags.put((project.into(), object_id.into(), digest.into(), tag.clone()), row);
    }
}

/// Points aliases of an object at the version `digest`, or removes them (`None`).
pub(super) fn put_aliases(
    tx: &mut Tx<'_>,
    project: &str,
    object_id: &str,
    aliases: &[String],
    digest: Option<&str>,
) {
    for alias in aliases {
        let row = AliasRow::new(project, object_id, alias, digest.unwrap_or(""), digest.is_none());
        tx.aliases.put((project.into(), object_id.into(), alias.clone()), row);
    }
}

/// Drops the tags of the versions `digests` of an object, and the aliases naming them.
fn drop_labels(tx: &mut Tx<'_>, project: &str, object_id: &str, digests: &HashSet<String>) -> Result<()> {
    if digests.is_empty() {
        return Ok(());
    }
    let labels = |table: &str, columns: &str| {
        let mut q = Query::default();
        let (p, o) = (q.string(project), q.string(object_id));
        q.push(&format!(
            "SELECT {columns} FROM {table} FINAL WHERE project_id = {p} AND object_id = {o} \
             AND NOT removed FORMAT JSONCompactEachRow"
        ));
        tx.client.query_all::<(String, String)>(&q)
    };
    let (tags, aliases) = (labels("object_tags", "digest, tag")?, labels("object_aliases", "alias, digest")?);
    for (digest, tag) in tags {
        let row = TagRow::new(project, object_id, &digest, &tag, false);
        tx.tags.remember((project.into(), object_id.into(), digest, tag), Some(row));
    }
    let doomed: Vec<_> = tx
        .tags
        .rows()
        .filter(|((p, o, d, _), t)| p == project && o == object_id && digests.contains(d) && !t.removed)
        .map(|(k, t)| (k.clone(), TagRow { removed: true, ..t.clone() }))
        .collect();
    for (k, t) in doomed {
        tx.tags.put(k, t);
    }
    for (alias, digest) in aliases {
        let row = AliasRow::new(project, object_id, &alias, &digest, false);
        tx.aliases.remember((project.into(), object_id.into(), alias), Some(row));
    }
    let doomed: Vec<_> = tx
        .aliases
        .rows()
        .filter(|((p, o, _), a)| p == project && o == object_id && digests.contains(&a.digest) && !a.removed)
        .map(|(k, a)| (k.clone(), AliasRow { removed: true, ..a.clone() }))
        .collect();
    for (k, a) in doomed {
        tx.aliases.put(k, a);
    }
    Ok(())
}

pub(super) fn put_table(
    tx: &mut Tx<'_>,
    project: &str,
    digest: &str,
    rows: &[(String, String)],
    row_digests: &[String],
) {
    for (d, val) in rows {
        tx.table_rows.push(table_row_line(project, d, val));
        tx.known_rows.put((project.to_string(), d.clone()), ());
    }
    tx.tables.push(table_line(project, digest, row_digests));
    tx.table_lists.put((project.to_string(), digest.to_string()), row_digests.to_vec());
}

pub(super) fn table_digests(tx: &mut Tx<'_>, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
    let client = tx.client;
    tx.table_lists.get_or_read((project.to_string(), digest.to_string()), || {
        crate::store::clickhouse::reads::table_digests(client, project, digest)
    })
}

pub(super) fn missing_table_rows(tx: &mut Tx<'_>, project: &str, digests: &[&str]) -> Result<Vec<String>> {
    let key = |d: &str| (project.to_string(), d.to_string());
    let unknown: Vec<&str> =
        digests.iter().copied().filter(|d| !matches!(tx.known_rows.get(&key(d)), Some(Some(())))).collect();
    for chunk in unknown.chunks(crate::store::clickhouse::IN_CHUNK) {
        let mut q = Query::default();
        let (p, ds) = (q.string(project), q.strings(chunk));
        q.push(&format!(
            "SELECT DISTINCT digest FROM table_rows WHERE project_id = {p} AND digest IN {ds} \
             FORMAT JSONCompactEachRow"
        ));
        for (d,) in tx.client.query_all::<(String,)>(&q)? {
            tx.known_rows.remember(key(&d), Some(()));
        }
    }
    Ok(unknown
        .into_iter()
        .filter(|d| !matches!(tx.known_rows.get(&key(d)), Some(Some(()))))
        .map(String::from)
        .collect())
}
