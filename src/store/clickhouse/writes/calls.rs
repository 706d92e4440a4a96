//! Calls in a batch: inserts (their ids checked against ClickHouse when the job ends),
//! updates, ends, the calls the batch sees, and subtree deletes.

use std::collections::HashSet;

use super::{CallKey, Tx, read_unknown};
use crate::domain::call::{Call, Micros};
use crate::domain::error::{Error, Result};
use crate::domain::store::CallEndFields;
use crate::store::clickhouse::IN_CHUNK;
use crate::store::clickhouse::client::Query;
use crate::store::clickhouse::rows::{
    CALL_COLUMNS, CallTuple, StoredCall, call_from_tuple, check_call_times, check_time, view_keys,
};

/// Fails the running job if a call it inserted existed already in ClickHouse (one query per
/// project and [`IN_CHUNK`] ids, instead of one per insert).
pub(super) fn check_inserts(tx: &mut Tx<'_>) -> Result<()> {
    let mut keys = std::mem::take(&mut tx.unchecked);
    keys.sort();
    keys.dedup();
    for group in keys.chunk_by(|a, b| a.0 == b.0) {
        for chunk in group.chunks(IN_CHUNK) {
            let Some((project, _)) = chunk.first() else {
                continue;
            };
            let ids: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
            let mut q = Query::default();
            let (p, list) = (q.string(project), q.strings(&ids));
            q.push(&format!(
                "SELECT id FROM calls WHERE project_id = {p} AND id IN {list} LIMIT 1 \
                 FORMAT JSONCompactEachRow"
            ));
            if let Some((id,)) = tx.client.query_all::<(String,)>(&q)?.pop() {
                return Err(Error::Conflict(format!("Call {id} already exists")));
            }
        }
    }
    Ok(())
}

/// Reads the calls of `ids` the batch does not know yet, deleted or not.
pub(super) fn prefetch(tx: &mut Tx<'_>, project: &str, ids: &[String]) -> Result<()> {
    read_unknown(
        tx.client,
        &mut tx.calls,
        project,
        ids,
        |p, list| format!("SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND id IN {list}"),
        |t: CallTuple| {
            let s = call_from_tuple(t);
            (s.call.id.clone(), s)
        },
    )
}

/// A call as the batch sees it, deleted or not.
pub(super) fn stored(tx: &mut Tx<'_>, project: &str, id: &str) -> Result<Option<StoredCall>> {
    prefetch(tx, project, &[id.to_string()])?;
    Ok(tx.calls.get(&(project.to_string(), id.to_string())).flatten().cloned())
}

/// Reads the live children in ClickHouse of those of `parents` whose children the batch has
/// not read yet, remembering both.
pub(super) fn prefetch_children(tx: &mut Tx<'_>, project: &str, parents: &[String]) -> Result<()> {
    let unread: Vec<String> = parents
        .iter()
        .filter(|id| !tx.children_read.contains(&(project.to_string(), (*id).clone())))
        .cloned()
        .collect();
    for chunk in unread.chunks(IN_CHUNK) {
        let mut q = Query::default();
        let (p, ids) = (q.string(project), q.strings(chunk));
        q.push(&format!(
            "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND parent_id IN {ids} \
             AND deleted_at IS NULL FORMAT JSONCompactEachRow"
        ));
        for t in tx.client.query_all::<CallTuple>(&q)? {
            let s = call_from_tuple(t);
            tx.calls.remember((project.to_string(), s.call.id.clone()), Some(s));
        }
        for id in chunk {
            tx.children_read.insert((project.to_string(), id.clone()));
        }
    }
    Ok(())
}

/// The live children of any of `parents`, as the batch sees them (unordered).
fn children_of(tx: &mut Tx<'_>, project: &str, parents: &[String]) -> Result<Vec<StoredCall>> {
    prefetch_children(tx, project, parents)?;
    let wanted: HashSet<&str> = parents.iter().map(String::as_str).collect();
    Ok(tx
        .calls
        .rows()
        .filter(|((p, _), s)| {
            p == project
                && s.deleted_at.is_none()
                && s.call.parent_id.as_deref().is_some_and(|parent| wanted.contains(parent))
        })
        .map(|(_, s)| s.clone())
        .collect())
}

/// Writes a new version of a call in the batch, remembering the view keys its row in
/// ClickHouse had (when the batch read it and has not written it yet): those it loses are
/// marked deleted in `call_views` when the batch is inserted.
fn put(tx: &mut Tx<'_>, key: CallKey, s: StoredCall) {
    if !tx.view_keys.contains_key(&key)
        && let Some(stored) = tx.calls.read_only(&key)
    {
        let before = view_keys(&stored.call);
        tx.view_keys.insert(key.clone(), before);
    }
    tx.calls.put(key, s);
}

pub(super) fn insert(tx: &mut Tx<'_>, c: &Call) -> Result<()> {
    check_call_times(c)?;
    let key = (c.project_id.clone(), c.id.clone());
    match tx.calls.get(&key) {
        Some(Some(_)) => return Err(Error::Conflict(format!("Call {} already exists", c.id))),
        Some(None) => {}
        // Whether ClickHouse holds it is checked for all such inserts when the job ends; the
        // job fails then as it would now.
        None => tx.unchecked.push(key.clone()),
    }
    put(tx, key, StoredCall { call: c.clone(), deleted_at: None });
    Ok(())
}

/// Inserts a call whose id was just made here: known new, so not checked against ClickHouse.
pub(super) fn insert_fresh(tx: &mut Tx<'_>, c: &Call) -> Result<()> {
    check_call_times(c)?;
    let key = (c.project_id.clone(), c.id.clone());
    tx.calls.remember(key.clone(), None);
    insert(tx, c)
}

pub(super) fn update(tx: &mut Tx<'_>, c: &Call) -> Result<()> {
    check_call_times(c)?;
    if stored(tx, &c.project_id, &c.id)?.is_some_and(|s| s.deleted_at.is_none()) {
        put(tx, (c.project_id.clone(), c.id.clone()), StoredCall { call: c.clone(), deleted_at: None });
    }
    Ok(())
}

pub(super) fn end(tx: &mut Tx<'_>, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
    check_time(end.ended_at)?;
    let Some(mut s) = stored(tx, project, id)?.filter(|s| s.deleted_at.is_none()) else {
        return Ok(false);
    };
    s.call.ended_at = Some(end.ended_at);
    s.call.exception = end.exception.map(String::from);
    s.call.output = Some(end.output.clone());
    s.call.summary = Some(end.summary.clone());
    s.call.wb_run_step_end = end.wb_run_step_end;
    put(tx, (project.to_string(), id.to_string()), s);
    Ok(true)
}

pub(super) fn children(tx: &mut Tx<'_>, project: &str, parent_id: &str) -> Result<Vec<Call>> {
    let mut kids: Vec<Call> =
        children_of(tx, project, &[parent_id.to_string()])?.into_iter().map(|s| s.call).collect();
    kids.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    Ok(kids)
}

/// Deletes a live call and its live descendants, each once however parent links loop.
pub(super) fn delete_subtree(tx: &mut Tx<'_>, project: &str, id: &str, at: Micros) -> Result<u64> {
    let Some(root) = stored(tx, project, id)?.filter(|s| s.deleted_at.is_none()) else {
        return Ok(0);
    };
    let mut seen: HashSet<String> = HashSet::from([root.call.id.clone()]);
    let mut subtree = vec![root];
    let mut frontier = vec![id.to_string()];
    while !frontier.is_empty() {
        let kids = children_of(tx, project, &frontier)?;
        frontier.clear();
        for k in kids {
            if seen.insert(k.call.id.clone()) {
                frontier.push(k.call.id.clone());
                subtree.push(k);
            }
        }
    }
    let n = subtree.len() as u64;
    for mut s in subtree {
        s.deleted_at = Some(at);
        put(tx, (project.to_string(), s.call.id.clone()), s);
    }
    Ok(n)
}
