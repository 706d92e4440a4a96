//! Calls: inserts (with the view columns derived from each), updates, ends, run heads,
//! children, and subtree deletes.

use std::borrow::Cow;
use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::call::{Call, Micros};
use crate::domain::error::{Error, Result};
use crate::domain::run_rows::RunHead;
use crate::domain::store::CallEndFields;
use crate::domain::view::ViewColumns;
use crate::store::sqlite::ids::{Id, StoredId};
use crate::store::sqlite::interned::{Interner, project_key};
use crate::store::sqlite::packed::{EncodedCall, Packer};
use crate::store::sqlite::rows::{CALL_COLUMNS, call_from_row, json_text, kind_code, stored_model};
use crate::store::sqlite::storage;

/// The columns a write of a call binds, as [`execute_call`] binds them: the key (project and
/// id) first.
const WRITTEN_COLUMNS: [&str; 24] = [
    "project_id",
    "id",
    "trace_id",
    "parent_id",
    "op_name",
    "display_name",
    "started_at",
    "ended_at",
    "exception",
    "attributes",
    "inputs",
    "output",
    "summary",
    "wb_user_id",
    "kind",
    "evaluation",
    "model",
    "run_id",
    "logged_run",
    "thread_id",
    "turn_id",
    "wb_run_id",
    "wb_run_step",
    "wb_run_step_end",
];

/// `INSERT INTO calls` of every written column.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = (1..=WRITTEN_COLUMNS.len()).map(|i| format!("?{i}")).collect();
    format!("INSERT INTO calls ({}) VALUES ({})", WRITTEN_COLUMNS.join(", "), values.join(", "))
});

/// [`INSERT`] unless the id is taken.
static INSERT_NEW: LazyLock<String> =
    LazyLock::new(|| format!("{} ON CONFLICT (project_id, id) DO NOTHING", *INSERT));

/// `UPDATE` of every written column but the key, of a live call.
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    let set: Vec<String> =
        WRITTEN_COLUMNS.iter().enumerate().skip(2).map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
    format!("UPDATE calls SET {} WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL", set.join(", "))
});

/// Binds a call's [`WRITTEN_COLUMNS`], with its view columns, and runs `stmt`; returns the
/// rows changed. Its JSON fields are bound as `encoded` has them, if given (made from `c`);
/// its project, its run refs, op name and user id as their keys, made if new.
fn execute_call(
    conn: &Connection,
    packer: &mut Packer,
    keys: &mut Interner,
    sql: &str,
    c: &Call,
    encoded: Option<&EncodedCall>,
) -> rusqlite::Result<usize> {
    let v = ViewColumns::of(c);
    let project = keys.project(conn, &c.project_id)?;
    let mut run_ref = |text: Option<&str>| text.map(|t| keys.run_ref(conn, project, t)).transpose();
    let (evaluation, model) = (run_ref(v.evaluation.as_deref())?, run_ref(stored_model(&v))?);
    let op_name = keys.name(conn, project, &c.op_name)?;
    let wb_user_id = c.wb_user_id.as_deref().map(|u| keys.name(conn, project, u)).transpose()?;
    let [attributes, inputs] = packer.columns(conn, c, encoded)?;
    let (output, summary) = match encoded {
        Some(e) => (e.output().map(Cow::Borrowed), e.summary().map(Cow::Borrowed)),
        None => {
            (c.output.as_ref().map(|v| json_text(v).into()), c.summary.as_ref().map(|v| json_text(v).into()))
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.execute(params![
        project,
        Id::new(&c.id),
        Id::new(&c.trace_id),
        Id::opt(c.parent_id.as_deref()),
        op_name,
        c.display_name,
        c.started_at,
        c.ended_at,
        c.exception,
        attributes,
        inputs,
        output,
        summary,
        wb_user_id,
        kind_code(v.kind),
        evaluation,
        model,
        Id::opt(v.run_id.as_deref()),
        v.logged_run,
        c.thread_id,
        Id::opt(c.turn_id.as_deref()),
        c.wb_run_id,
        c.wb_run_step,
        c.wb_run_step_end,
    ])
}

/// Inserts a call; a taken id is a conflict (409).
pub(super) fn insert(
    conn: &Connection,
    packer: &mut Packer,
    keys: &mut Interner,
    c: &Call,
    encoded: Option<&EncodedCall>,
) -> Result<()> {
    match execute_call(conn, packer, keys, &INSERT, c, encoded) {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(Error::Conflict(format!("Call {} already exists", c.id)))
        }
        other => other.map(drop).map_err(storage),
    }
}

/// Inserts a call unless its id is taken; returns whether it did.
pub(super) fn insert_new(
    conn: &Connection,
    packer: &mut Packer,
    keys: &mut Interner,
    c: &Call,
    encoded: Option<&EncodedCall>,
) -> Result<bool> {
    // One probe of the id index, the insert's own, instead of a lookup before it.
    execute_call(conn, packer, keys, &INSERT_NEW, c, encoded).map(|n| n > 0).map_err(storage)
}

/// Rewrites a live call.
pub(super) fn update(conn: &Connection, packer: &mut Packer, keys: &mut Interner, c: &Call) -> Result<()> {
    execute_call(conn, packer, keys, &UPDATE, c, None).map(drop).map_err(storage)
}

pub(super) fn run_head(conn: &Connection, project: &str, id: &str) -> Result<Option<RunHead>> {
    // The view columns are derived on every write, so `kind` tells a run as `RunHead::of`
    // would, without reading the JSON fields.
    conn.prepare_cached(&format!(
        "SELECT trace_id, started_at, weft_name(wb_user_id), (SELECT ref FROM run_refs WHERE id = evaluation) \
         FROM calls WHERE project_id = {} AND id = ?2 AND kind = 1 AND deleted_at IS NULL",
        project_key("?1")
    ))
    .map_err(storage)?
    .query_row(params![project, Id::new(id)], |r| {
        Ok(RunHead {
            id: id.to_string(),
            trace_id: r.get::<_, StoredId>(0)?.0,
            started_at: r.get(1)?,
            wb_user_id: r.get(2)?,
            evaluation: r.get(3)?,
        })
    })
    .optional()
    .map_err(storage)
}

/// Whether a call of that id exists, deleted or not.
pub(super) fn exists(conn: &Connection, project: &str, id: &str) -> Result<bool> {
    conn.prepare_cached(&format!("SELECT 1 FROM calls WHERE project_id = {} AND id = ?2", project_key("?1")))
        .map_err(storage)?
        .exists(params![project, Id::new(id)])
        .map_err(storage)
}

/// Ends a live call; returns whether there was one.
pub(super) fn end(conn: &Connection, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
    conn.prepare_cached(&format!(
        "UPDATE calls SET ended_at = ?3, exception = ?4, output = ?5, summary = ?6, \
         wb_run_step_end = ?7 WHERE project_id = {} AND id = ?2 AND deleted_at IS NULL",
        project_key("?1")
    ))
    .map_err(storage)?
    .execute(params![
        project,
        Id::new(id),
        end.ended_at,
        end.exception,
        json_text(end.output),
        json_text(end.summary),
        end.wb_run_step_end,
    ])
    .map(|n| n > 0)
    .map_err(storage)
}

pub(super) fn children(conn: &Connection, project: &str, parent_id: &str) -> Result<Vec<Call>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = {} AND parent_id = ?2 \
             AND deleted_at IS NULL ORDER BY started_at, id",
            project_key("?1")
        ))
        .map_err(storage)?;
    let rows = stmt.query_map(params![project, Id::new(parent_id)], call_from_row).map_err(storage)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
}

/// Deletes a live call and its live descendants; returns how many.
pub(super) fn delete_subtree(conn: &Connection, project: &str, id: &str, at: Micros) -> Result<u64> {
    // `UNION`, not `UNION ALL`: a call reached twice is walked once, so parent links that
    // form a cycle (which a client can write) end the walk instead of looping forever.
    let n = conn
        .prepare_cached(&format!(
            "WITH RECURSIVE sub(id) AS ( \
               SELECT id FROM calls WHERE project_id = {p} AND id = ?2 AND deleted_at IS NULL \
               UNION \
               SELECT c.id FROM calls c JOIN sub ON c.project_id = {p} AND c.parent_id = sub.id \
               WHERE c.deleted_at IS NULL) \
             UPDATE calls SET deleted_at = ?3 WHERE project_id = {p} AND id IN (SELECT id FROM sub)",
            p = project_key("?1")
        ))
        .map_err(storage)?
        .execute(params![project, Id::new(id), at])
        .map_err(storage)?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn a_run_head_is_read_as_it_is_derived_from_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 5);
        run.attributes =
            serde_json::json!({"weave": {"evaluation_run": "true", "evaluation": "weave:///e/p/object/E:1"}});
        run.wb_user_id = Some("u".into());
        let other = Call::new("e/p", "Model.predict", 6);
        let gone = Call::new("e/p", "Evaluation.evaluate", 7);
        let (r, o, g) = (run.clone(), other.clone(), gone.clone());
        let heads = crate::domain::store::write(&store, move |w| {
            for c in [&r, &o, &g] {
                w.insert_call(c)?;
            }
            w.delete_subtree("e/p", &g.id, 8)?;
            Ok([&r.id, &o.id, &g.id].map(|id| w.run_head("e/p", id)))
        })
        .unwrap();
        let expected = RunHead::of(&run);
        assert!(
            expected.as_ref().is_some_and(|h| h.evaluation.as_deref() == Some("weave:///e/p/object/E:1"))
        );
        assert_eq!(heads[0].as_ref().unwrap(), &expected);
        assert_eq!(heads[1].as_ref().unwrap(), &None);
        assert_eq!(heads[2].as_ref().unwrap(), &None);
        let in_other_project =
            crate::domain::store::write(&store, move |w| w.run_head("e/q", &run.id)).unwrap();
        assert_eq!(in_other_project, None);
        assert_eq!(RunHead::of(&other), None);
        assert!(RunHead::of(&gone).is_some());
    }
}
