//! The SQLite store's schema (`schema.sql`) and its migrations from older versions.

use rusqlite::{Connection, params};

use super::ids::{self, Id};
use super::rows::{CALL_COLUMNS, call_from_row, json_text, stored_model};
use crate::domain::error::{Error, Result};
use crate::domain::view::{ViewColumns, is_predict_and_score, mark_holds_prediction};

/// The schema of a new store, and what [`upgrade`] recreates.
pub(super) const SCHEMA: &str = include_str!("schema.sql");

/// The version of [`SCHEMA`], kept in the file's `user_version`.
pub(super) const SCHEMA_VERSION: i64 = 9;

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
/// and scores (see [`encode_ids`]).
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
        .and_then(|()| if has_calls && version < 9 { encode_ids(writer) } else { Ok(()) })
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

/// Version 9: the call ids of every row (`id`, `trace_id`, `parent_id`, `run_id`, `turn_id`)
/// stored as `ids` stores them, a canonical UUID as its 16 bytes, by the SQL function that
/// encodes them; predictions and scores keep no model (see `rows::stored_model`). The calls
/// table's indexes are dropped first and built again after: one build of each is faster than
/// moving every entry of it.
fn encode_ids(conn: &Connection) -> rusqlite::Result<()> {
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in indexes.iter().filter(|n| SCHEMA.contains(&format!("EXISTS {n} ON"))) {
        conn.execute_batch(&format!("DROP INDEX {name};"))?;
    }
    let e = ids::ENCODE;
    conn.execute_batch(&format!(
        "UPDATE calls SET id = {e}(id), trace_id = {e}(trace_id), parent_id = {e}(parent_id), \
         run_id = {e}(run_id), turn_id = {e}(turn_id), \
         model = CASE WHEN kind IN ('prediction', 'score') THEN NULL ELSE model END;"
    ))?;
    conn.execute_batch(SCHEMA)
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
             AND (op_name LIKE '%predict_and_score%' OR op_name LIKE '%predictAndScore%')"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let call = call_from_row(r)?;
            if is_predict_and_score(&call) {
                calls.push(call);
            }
        }
    }
    let mut holds = conn.prepare(
        "SELECT EXISTS (SELECT 1 FROM calls WHERE project_id = ?1 AND parent_id = ?2 \
         AND kind = 'prediction')",
    )?;
    let mut update = conn.prepare(
        "UPDATE calls SET attributes = ?3, kind = ?4, evaluation = ?5, model = ?6, run_id = ?7, \
         logged_run = ?8 WHERE project_id = ?1 AND id = ?2",
    )?;
    for mut call in calls {
        if holds.query_row(params![call.project_id, Id::new(&call.id)], |r| r.get::<_, bool>(0))? {
            mark_holds_prediction(&mut call);
        }
        let v = ViewColumns::of(&call);
        update.execute(params![
            call.project_id,
            Id::new(&call.id),
            json_text(&call.attributes),
            v.kind.tag(),
            v.evaluation,
            stored_model(&v),
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
    let mut update = conn.prepare(
        "UPDATE calls SET kind = ?3, evaluation = ?4, model = ?5, run_id = ?6, logged_run = ?7 \
         WHERE project_id = ?1 AND id = ?2",
    )?;
    for call in calls {
        let v = ViewColumns::of(&call);
        update.execute(params![
            call.project_id,
            Id::new(&call.id),
            v.kind.tag(),
            v.evaluation,
            stored_model(&v),
            Id::opt(v.run_id.as_deref()),
            v.logged_run
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::Call;
    use crate::domain::run_rows::RunQuery;
    use crate::domain::store::Store;
    use crate::domain::trace::CallQuery;
    use crate::store::sqlite::SqliteStore;

    /// Every live call of project `e/p`, in the calls query's order.
    fn every_call(store: &SqliteStore) -> Vec<Call> {
        let mut found = Vec::new();
        store
            .calls("e/p", &CallQuery::default(), &mut |c| {
                found.push(c);
                true
            })
            .unwrap();
        found
    }

    #[test]
    fn a_version_1_store_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 5);
        run.attributes = serde_json::json!({"weave": {"evaluation_run": "true"}});
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let r = run.clone();
            crate::domain::store::write(&store, move |w| w.insert_call(&r)).unwrap();
        }
        {
            // The version 1 schema: `calls_views` over every kind, no `calls_runs_ids`.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch(
                "DROP INDEX calls_views; DROP INDEX calls_runs_ids; \
                 CREATE INDEX calls_views ON calls (project_id, kind, run_id, started_at, id) \
                 WHERE kind IS NOT NULL AND deleted_at IS NULL; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let views: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'calls_views'", [], |r| r.get(0))
            .unwrap();
        assert!(views.contains("kind = 'prediction' OR kind = 'score'"), "{views}");
        let entries: i64 =
            conn.query_row("SELECT count(*) FROM calls INDEXED BY calls_runs_ids WHERE id = ?1 AND kind = 'run' AND deleted_at IS NULL", [Id::new(&run.id)], |r| r.get(0)).unwrap();
        assert_eq!(entries, 1);
        let mut found = Vec::new();
        let q = RunQuery { ids: vec![run.id.clone()], ..Default::default() };
        store
            .eval_runs("e/p", &q, &mut |row| {
                found.push(row.id.to_string());
                true
            })
            .unwrap();
        assert_eq!(found, [run.id.clone()]);
    }

    #[test]
    fn a_version_4_store_gains_object_tags_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        {
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch("DROP TABLE object_tags; DROP TABLE object_aliases; PRAGMA user_version = 4;")
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.project_tags("e/p").unwrap(), Vec::<String>::new());
        assert_eq!(store.project_aliases("e/p").unwrap(), Vec::<String>::new());
        let version: i64 =
            store.reader().unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_2_store_reads_logged_predict_and_score_calls_as_predictions() {
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let run = Call::new("e/p", "weave:///e/p/op/Evaluation.evaluate:d", 1);
        let mut logged = Call::new("e/p", "weave:///e/p/op/Evaluation.predict_and_score:d", 2).under(&run);
        logged.inputs = json!({"self": "E", "model": "M", "example": {"q": 1}});
        // What `POST /predictions` wrote before it marked the parent.
        let mut v2_parent = Call::new("e/p", "Evaluation.predict_and_score", 3).under(&run);
        v2_parent.inputs = logged.inputs.clone();
        let mut flagged = Call::new("e/p", "M.predict", 3).under(&v2_parent);
        flagged.attributes = json!({"weave": {"prediction": "true", "evaluation_run_id": run.id}});
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let calls = [run.clone(), logged.clone(), v2_parent.clone(), flagged.clone()];
            crate::domain::store::write(&store, move |w| calls.iter().try_for_each(|c| w.insert_call(c)))
                .unwrap();
        }
        {
            // As version 2 derived them: a predict_and_score call was no view's.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch(
                "UPDATE calls SET kind = NULL, run_id = NULL, model = NULL \
                 WHERE op_name LIKE '%predict_and_score%'; PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut found = Vec::new();
        store
            .view_calls(
                "e/p",
                crate::domain::view::Kind::Prediction,
                Some(&run.id),
                None,
                Default::default(),
                &mut |c| {
                    found.push(c.id);
                    true
                },
            )
            .unwrap();
        assert_eq!(found, [logged.id.clone(), flagged.id.clone()]);
        let parent = store.call("e/p", &v2_parent.id).unwrap().unwrap();
        assert_eq!(parent.weave_attr("holds_prediction"), Some("true"));
    }

    #[test]
    fn a_version_7_store_reads_its_text_rows_and_packs_new_ones() {
        use crate::store::sqlite::packed::TRAIN_AFTER;
        let dir = tempfile::tempdir().unwrap();
        let call = |i: usize| {
            let mut c = Call::new("e/p", "weave:///e/p/op/Model.predict:d", i as i64);
            c.attributes = serde_json::json!({"weave": {"model": "weave:///e/p/object/M:1"}});
            c.inputs = serde_json::json!({"example": {"q": format!("q{i}")}});
            c
        };
        let old: Vec<Call> = (0..50).map(call).collect();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let calls = old.clone();
            crate::domain::store::write(&store, move |w| calls.iter().try_for_each(|c| w.insert_call(c)))
                .unwrap();
        }
        {
            // Version 7 had no dictionaries: every JSON column was text.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch("DROP TABLE json_dicts; PRAGMA user_version = 7;").unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let version: i64 =
            store.reader().unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let new: Vec<Call> = (50..TRAIN_AFTER + 100).map(call).collect();
        let calls = new.clone();
        crate::domain::store::write(&store, move |w| calls.iter().try_for_each(|c| w.insert_call(c)))
            .unwrap();
        let packed: i64 = store
            .reader()
            .unwrap()
            .query_row("SELECT count(*) FROM calls WHERE typeof(inputs) = 'blob'", [], |r| r.get(0))
            .unwrap();
        assert!(packed > TRAIN_AFTER as i64, "{packed}");
        let found = every_call(&store);
        assert_eq!(found, [old, new].concat());
    }

    #[test]
    fn a_version_8_store_with_text_ids_is_upgraded_and_reads_every_call_the_same() {
        use crate::domain::threads::TurnQuery;
        use crate::domain::view::Kind;
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 1);
        run.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": "E", "model": "M"}});
        let mut calls = vec![run.clone()];
        for i in 0..4 {
            let mut p = Call::new("e/p", "M.predict", 10 + i).under(&run);
            p.attributes =
                json!({"weave": {"prediction": "true", "evaluation_run_id": run.id, "model": "M"}});
            calls.push(p);
        }
        // Ids that are not canonical UUIDs stay text: a name, an uppercase UUID.
        let named = Call::with_ids("e/p", "f", 20, "my-call".into(), "my-trace".into()).under(&run);
        let upper = crate::domain::call::new_id().to_uppercase();
        let shouting = Call::with_ids("e/p", "g", 21, upper.clone(), upper).under(&named);
        let mut turn = Call::new("e/p", "chat", 22);
        turn.thread_id = Some("thread".into());
        turn.turn_id = Some(turn.id.clone());
        calls.extend([named, shouting, turn.clone()]);
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let written = calls.clone();
            crate::domain::store::write(&store, move |w| written.iter().try_for_each(|c| w.insert_call(c)))
                .unwrap();
        }
        {
            // As version 8 stored them: every id as text, a prediction's model kept.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            ids::register(&c).unwrap();
            let d = ids::DECODE;
            c.execute_batch(&format!(
                "UPDATE calls SET id = {d}(id), trace_id = {d}(trace_id), parent_id = {d}(parent_id), \
                 run_id = {d}(run_id), turn_id = {d}(turn_id), model = 'M'; PRAGMA user_version = 8;"
            ))
            .unwrap();
            let blobs: i64 = c
                .query_row("SELECT count(*) FROM calls WHERE typeof(id) = 'blob'", [], |r| r.get(0))
                .unwrap();
            assert_eq!(blobs, 0);
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        {
            let conn = store.reader().unwrap();
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(version, SCHEMA_VERSION);
            let (blobs, models): (i64, i64) = conn
                .query_row(
                    "SELECT sum(typeof(id) = 'blob' AND typeof(trace_id) = 'blob'), \
                     sum(kind = 'prediction' AND model IS NOT NULL) FROM calls",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((blobs, models), (calls.len() as i64 - 2, 0));
            let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            assert_eq!(integrity, "ok");
        }
        let found = every_call(&store);
        assert_eq!(found, calls);
        for c in &calls {
            assert_eq!(store.call("e/p", &c.id).unwrap().as_ref(), Some(c));
        }
        let mut predictions = Vec::new();
        store
            .view_calls("e/p", Kind::Prediction, Some(&run.id), None, Default::default(), &mut |c| {
                predictions.push(c);
                true
            })
            .unwrap();
        assert_eq!(predictions, calls[1..5]);
        let mut runs = Vec::new();
        let q = RunQuery { ids: vec![run.id.clone()], ..Default::default() };
        store
            .eval_runs("e/p", &q, &mut |row| {
                runs.push((row.id.to_string(), row.model.to_string()));
                true
            })
            .unwrap();
        assert_eq!(runs, [(run.id.clone(), "M".to_string())]);
        let mut children = Vec::new();
        store
            .children_of("e/p", &[run.id.clone(), "my-call".into()], &mut |c| {
                children.push(c.id);
                true
            })
            .unwrap();
        assert_eq!(children.len(), 6);
        let mut turns = Vec::new();
        store
            .turns("e/p", &TurnQuery::default(), &mut |t| {
                turns.push(t.id);
                true
            })
            .unwrap();
        assert_eq!(turns, [turn.id.clone()]);
    }

    #[test]
    fn a_version_6_store_lists_predictions_flagged_with_json_true() {
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let mut flagged = Call::new("e/p", "M.predict", 1);
        flagged.attributes = json!({"weave": {"prediction": true, "evaluation_run_id": "run", "model": "M"}});
        let mut other = Call::new("e/p", "M.predict", 2);
        other.attributes = json!({"weave": {"prediction": false, "evaluation_run_id": "run"}});
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let calls = [flagged.clone(), other.clone()];
            crate::domain::store::write(&store, move |w| calls.iter().try_for_each(|c| w.insert_call(c)))
                .unwrap();
        }
        {
            // As version 6 derived them: only the text "true" flagged a prediction.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch(
                "UPDATE calls SET kind = NULL, run_id = NULL, model = NULL; PRAGMA user_version = 6;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut found = Vec::new();
        store
            .view_calls(
                "e/p",
                crate::domain::view::Kind::Prediction,
                Some("run"),
                None,
                Default::default(),
                &mut |c| {
                    found.push(c.id);
                    true
                },
            )
            .unwrap();
        assert_eq!(found, [flagged.id.clone()]);
    }
}
