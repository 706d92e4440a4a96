//! The SQLite store's schema (`schema.sql`) and its migrations from older versions.

use rusqlite::{Connection, params};

use super::ids::{self, Id};
use super::interned::{ADD_PROJECT, ADD_REF, project_key};
use super::rows::{CALL_COLUMNS, call_from_row, json_text, kind_code, stored_model};
use crate::domain::error::{Error, Result};
use crate::domain::view::{ViewColumns, is_predict_and_score, mark_holds_prediction};

/// The schema of a new store, and what [`upgrade`] recreates.
pub(super) const SCHEMA: &str = include_str!("schema.sql");

/// The version of [`SCHEMA`], kept in the file's `user_version`.
pub(super) const SCHEMA_VERSION: i64 = 11;

/// What opening a store of an older schema version drops before [`SCHEMA`] recreates it,
/// by the version that changed it: 2 narrowed `calls_views` to predictions and scores (runs
/// are looked up by id in the new `calls_runs_ids`). Version 3 changed what a prediction is
/// (see [`derive_logged_predictions`]), which no SQL here can express. Version 4 added the
/// columns in [`THREAD_COLUMNS`]. Version 5 added the `llm_token_prices` table and version 6
/// the tables of object tags and aliases, which [`SCHEMA`] creates in a store that lacks them.
/// Version 7 made a call flagged `weave.prediction` with JSON `true` a prediction (see
/// [`derive_flagged_predictions`]). Version 8 added `json_dicts`, the dictionaries of packed
/// JSON columns (see `packed`), which [`SCHEMA`] creates; rows written before stay text.
/// Version 9 stores call ids that are UUIDs as their 16 bytes and no model for predictions
/// and scores; version 10 the calls table's project and run refs as integer keys (see
/// `interned`) and its kind as a code (`rows::kind_code`); version 11 its op names and user
/// ids as integer keys too (in `call_names`), and no `calls_runs_ids` (lookups of runs by id
/// read `calls_id`): all by [`rebuild_calls`], which the upgrade runs before the derivations
/// of versions 3 and 7 (written for version 11).
/// They apply to a store that has a calls table; a new store
/// gets [`SCHEMA`] alone.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(2, "DROP INDEX IF EXISTS calls_views;")];

/// The columns version 4 added to calls, each added to a store that lacks it.
const THREAD_COLUMNS: &[(&str, &str)] = &[
    ("thread_id", "TEXT"),
    ("turn_id", "TEXT"),
    ("wb_run_id", "TEXT"),
    ("wb_run_step", "INTEGER"),
    ("wb_run_step_end", "INTEGER"),
];

/// Adds the [`THREAD_COLUMNS`] the calls table lacks.
fn add_thread_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (name, kind) in THREAD_COLUMNS {
        let has: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('calls') WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE calls ADD COLUMN {name} {kind};"))?;
        }
    }
    Ok(())
}

/// Brings the schema of the store open on `writer` to [`SCHEMA_VERSION`]: refuses a newer
/// one, applies the [`MIGRATIONS`] past an older one's version, then creates what [`SCHEMA`]
/// holds and the store lacks. `at` names the file in errors.
pub(super) fn upgrade(writer: &Connection, at: impl Fn(rusqlite::Error) -> Error) -> Result<()> {
    let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(&at)?;
    if version > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "database schema version {version} is newer than this weft ({SCHEMA_VERSION})"
        )));
    }
    let has_calls: bool = writer
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls')",
            [],
            |r| r.get(0),
        )
        .map_err(&at)?;
    // One transaction: a store is left at its old version or fully at the new one.
    let mut upgrade = String::new();
    for (_, sql) in MIGRATIONS.iter().filter(|(to, _)| has_calls && version < *to) {
        upgrade.push_str(sql);
    }
    upgrade.push_str(SCHEMA);
    upgrade.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION};"));
    writer.execute_batch("BEGIN IMMEDIATE;").map_err(&at)?;
    let applied = (if has_calls && version < 4 { add_thread_columns(writer) } else { Ok(()) })
        .and_then(|()| writer.execute_batch(&upgrade))
        .and_then(|()| if has_calls && version < 11 { rebuild_calls(writer, version) } else { Ok(()) })
        .and_then(|()| if has_calls && version < 3 { derive_logged_predictions(writer) } else { Ok(()) })
        .and_then(|()| if has_calls && version < 7 { derive_flagged_predictions(writer) } else { Ok(()) });
    match applied.and_then(|()| writer.execute_batch("COMMIT;")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = writer.execute_batch("ROLLBACK;");
            Err(at(e))
        }
    }
}

/// Drops the indexes of the calls table that [`SCHEMA`] creates (and any other).
fn drop_call_indexes(conn: &Connection) -> rusqlite::Result<()> {
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in indexes {
        conn.execute_batch(&format!("DROP INDEX \"{}\";", name.replace('"', "\"\"")))?;
    }
    Ok(())
}

/// Versions 9 to 11: the calls table made again as [`SCHEMA`] has it, every row copied in
/// rowid order with its call ids (`id`, `trace_id`, `parent_id`, `run_id`, `turn_id`) as
/// `ids` stores them (a canonical UUID as its 16 bytes, by the SQL function that encodes
/// them; an id stored so already stays), no model for predictions and scores (see
/// `rows::stored_model`), its kind as its code (`rows::kind_code`), its project and its
/// evaluation and model refs as their keys in `projects` and `run_refs`, and its op name and
/// user id as their keys in `call_names` (see `interned`), made first. A store of version 10
/// (`version`) holds the keys of projects and run refs and kind codes already. The new
/// table's indexes are built after the copy: one build of each is faster than moving every
/// entry of it; rows are copied densely, so the copy has no pages left part empty.
fn rebuild_calls(conn: &Connection, version: i64) -> rusqlite::Result<()> {
    drop_call_indexes(conn)?;
    conn.execute_batch("ALTER TABLE calls RENAME TO calls_before;")?;
    conn.execute_batch(SCHEMA)?;
    drop_call_indexes(conn)?;
    let e = ids::ENCODE;
    let plain = "display_name, started_at, ended_at, exception, attributes, inputs, output, summary, \
                 deleted_at";
    let tail = "logged_run, thread_id, turn_id, wb_run_id, wb_run_step, wb_run_step_end";
    let keyed = version >= 10;
    // The project's key, `p.id`, found by key or by name; the row's kind as its code; its
    // run refs' keys.
    let project = if keyed { "p.id = o.project_id" } else { "p.name = o.project_id" };
    let (kind, evaluation, model);
    if keyed {
        (kind, evaluation, model) = ("o.kind".to_string(), "o.evaluation".to_string(), "o.model".to_string());
    } else {
        let run_model = "CASE WHEN o.kind IN ('prediction', 'score') THEN NULL ELSE o.model END";
        let ref_key = |column: &str| {
            format!("(SELECT r.id FROM run_refs r WHERE r.project_id = p.id AND r.ref = {column})")
        };
        conn.execute_batch(&format!(
            "INSERT OR IGNORE INTO projects (name) SELECT DISTINCT project_id FROM calls_before ORDER BY 1; \
             INSERT OR IGNORE INTO run_refs (project_id, ref) \
               SELECT p.id, v.ref FROM (SELECT project_id AS name, evaluation AS ref FROM calls_before o \
                   WHERE evaluation IS NOT NULL \
                 UNION SELECT project_id, {run_model} FROM calls_before o WHERE {run_model} IS NOT NULL) v \
               CROSS JOIN projects p ON p.name = v.name ORDER BY 1, 2;"
        ))?;
        kind = "CASE o.kind WHEN 'run' THEN 1 WHEN 'prediction' THEN 2 WHEN 'score' THEN 3 END".to_string();
        evaluation = ref_key("o.evaluation");
        model = ref_key(run_model);
    }
    let name_key = |column: &str| {
        format!("(SELECT n.id FROM call_names n WHERE n.project_id = p.id AND n.name = o.{column})")
    };
    conn.execute_batch(&format!(
        "INSERT OR IGNORE INTO call_names (project_id, name) \
           SELECT p.id, v.name FROM (SELECT project_id, op_name AS name FROM calls_before \
             UNION SELECT project_id, wb_user_id FROM calls_before WHERE wb_user_id IS NOT NULL) v \
           CROSS JOIN projects p ON {project_v} ORDER BY 1, 2; \
         INSERT INTO calls (rowid, project_id, id, trace_id, parent_id, op_name, wb_user_id, {plain}, \
             kind, evaluation, model, run_id, {tail}) \
           SELECT o.rowid, p.id, {e}(o.id), {e}(o.trace_id), {e}(o.parent_id), {op_name}, {wb_user_id}, \
             {plain_o}, {kind}, {evaluation}, {model}, {e}(o.run_id), o.logged_run, o.thread_id, \
             {e}(o.turn_id), o.wb_run_id, o.wb_run_step, o.wb_run_step_end \
           FROM calls_before o CROSS JOIN projects p ON {project} ORDER BY o.rowid; \
         DROP TABLE calls_before;",
        project_v = project.replace("o.", "v."),
        plain_o = plain.split(", ").map(|c| format!("o.{c}")).collect::<Vec<_>>().join(", "),
        op_name = name_key("op_name"),
        wb_user_id = name_key("wb_user_id"),
    ))?;
    conn.execute_batch(SCHEMA)
}

/// The key of run ref `text` of project `project` (by name), made if new: for the upgrades
/// that derive view columns again.
fn ref_key(conn: &Connection, project: &str, text: Option<&str>) -> rusqlite::Result<Option<i64>> {
    let Some(text) = text else {
        return Ok(None);
    };
    conn.prepare_cached(ADD_PROJECT)?.execute([project])?;
    let key: i64 =
        conn.prepare_cached("SELECT id FROM projects WHERE name = ?1")?.query_row([project], |r| r.get(0))?;
    conn.prepare_cached(ADD_REF)?.execute(params![key, text])?;
    conn.prepare_cached("SELECT id FROM run_refs WHERE project_id = ?1 AND ref = ?2")?
        .query_row(params![key, text], |r| r.get(0))
        .map(Some)
}

/// Version 3: a `predict_and_score` child of a run is a prediction unless `POST /predictions`
/// wrote it around a flagged prediction. The parents that route wrote before are recognised
/// by such a child (deleted or not) and marked as it marks them now; then the view columns of
/// every `predict_and_score` call are derived again, by `ViewColumns::of`.
fn derive_logged_predictions(conn: &Connection) -> rusqlite::Result<()> {
    let mut calls = Vec::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE parent_id IS NOT NULL \
             AND op_name IN (SELECT id FROM call_names WHERE name LIKE '%predict_and_score%' \
               OR name LIKE '%predictAndScore%')"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let call = call_from_row(r)?;
            if is_predict_and_score(&call) {
                calls.push(call);
            }
        }
    }
    let mut holds = conn.prepare(&format!(
        "SELECT EXISTS (SELECT 1 FROM calls WHERE project_id = {} AND parent_id = ?2 \
         AND kind = 2)",
        project_key("?1")
    ))?;
    let mut update = conn.prepare(&format!(
        "UPDATE calls SET attributes = ?3, kind = ?4, evaluation = ?5, model = ?6, run_id = ?7, \
         logged_run = ?8 WHERE project_id = {} AND id = ?2",
        project_key("?1")
    ))?;
    for mut call in calls {
        if holds.query_row(params![call.project_id, Id::new(&call.id)], |r| r.get::<_, bool>(0))? {
            mark_holds_prediction(&mut call);
        }
        let v = ViewColumns::of(&call);
        update.execute(params![
            call.project_id,
            Id::new(&call.id),
            json_text(&call.attributes),
            kind_code(v.kind),
            ref_key(conn, &call.project_id, v.evaluation.as_deref())?,
            ref_key(conn, &call.project_id, stored_model(&v))?,
            Id::opt(v.run_id.as_deref()),
            v.logged_run,
        ])?;
    }
    Ok(())
}

/// Version 7: a call whose `weave.prediction` attribute is JSON `true` is a prediction, as one
/// flagged `"true"` is; the view columns of those calls are derived again, by `ViewColumns::of`.
fn derive_flagged_predictions(conn: &Connection) -> rusqlite::Result<()> {
    let mut calls = Vec::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE json_valid(weft_unpack(attributes)) \
             AND json_type(weft_unpack(attributes), '$.weave.prediction') = 'true'"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            calls.push(call_from_row(r)?);
        }
    }
    let mut update = conn.prepare(&format!(
        "UPDATE calls SET kind = ?3, evaluation = ?4, model = ?5, run_id = ?6, logged_run = ?7 \
         WHERE project_id = {} AND id = ?2",
        project_key("?1")
    ))?;
    for call in calls {
        let v = ViewColumns::of(&call);
        update.execute(params![
            call.project_id,
            Id::new(&call.id),
            kind_code(v.kind),
            ref_key(conn, &call.project_id, v.evaluation.as_deref())?,
            ref_key(conn, &call.project_id, stored_model(&v))?,
            Id::opt(v.run_id.as_deref()),
            v.logged_run
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
