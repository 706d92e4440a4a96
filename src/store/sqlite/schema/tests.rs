//! Upgrades of stores of older schema versions.

use super::*;
use crate::domain::call::Call;
use crate::domain::call_query::CallQuery;
use crate::domain::run_rows::RunQuery;
use crate::domain::store::Store;
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

/// Every column of the calls table, as versions 9 to 11 name them.
const COLUMNS: &str = "project_id, id, trace_id, parent_id, op_name, display_name, started_at, ended_at, \
     exception, attributes, inputs, output, summary, wb_user_id, deleted_at, kind, evaluation, model, \
     run_id, logged_run, thread_id, turn_id, wb_run_id, wb_run_step, wb_run_step_end";

/// The calls table of the store in `dir` made again as schema version 10 had it (op names and
/// user ids as text; no `call_names`; runs by id in `calls_runs_ids`), every row as it read;
/// the connection it was made on.
fn as_version_10(dir: &std::path::Path) -> Connection {
    let c = Connection::open(dir.join("weft.db")).unwrap();
    drop_call_indexes(&c).unwrap();
    let v10 = include_str!("version_10.sql");
    let name = |column: &str| format!("(SELECT name FROM call_names WHERE id = {column})");
    let read = COLUMNS.replace("op_name", &name("op_name")).replace("wb_user_id", &name("wb_user_id"));
    c.execute_batch(&format!(
        "ALTER TABLE calls RENAME TO calls_v11; {v10} \
         INSERT INTO calls (rowid, {COLUMNS}) SELECT rowid, {read} FROM calls_v11; \
         DROP TABLE calls_v11; DROP TABLE call_names; PRAGMA user_version = 10;"
    ))
    .unwrap();
    c
}

/// The calls table of the store in `dir` made again as schema version 9 had it (project ids,
/// evaluation and model refs as text; no `projects` nor `run_refs`), every row as it read;
/// the connection it was made on.
fn as_version_9(dir: &std::path::Path) -> Connection {
    let c = as_version_10(dir);
    drop_call_indexes(&c).unwrap();
    let v9 = include_str!("version_9.sql");
    c.execute_batch(&format!(
        "ALTER TABLE calls RENAME TO calls_v10; {v9} \
         INSERT INTO calls (rowid, project_id, id, trace_id, parent_id, op_name, display_name, \
           started_at, ended_at, exception, attributes, inputs, output, summary, wb_user_id, \
           deleted_at, kind, evaluation, model, run_id, logged_run, thread_id, turn_id, wb_run_id, \
           wb_run_step, wb_run_step_end) \
         SELECT rowid, (SELECT name FROM projects WHERE id = project_id), id, trace_id, parent_id, \
           op_name, display_name, started_at, ended_at, exception, attributes, inputs, output, \
           summary, wb_user_id, deleted_at, \
           CASE kind WHEN 1 THEN 'run' WHEN 2 THEN 'prediction' WHEN 3 THEN 'score' END, \
           (SELECT ref FROM run_refs WHERE id = evaluation), \
           (SELECT ref FROM run_refs WHERE id = model), run_id, logged_run, thread_id, turn_id, \
           wb_run_id, wb_run_step, wb_run_step_end FROM calls_v10; \
         DROP TABLE calls_v10; DROP TABLE projects; DROP TABLE run_refs; PRAGMA user_version = 9;"
    ))
    .unwrap();
    c
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
        let c = as_version_9(dir.path());
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
    let views: String =
        conn.query_row("SELECT sql FROM sqlite_master WHERE name = 'calls_views'", [], |r| r.get(0)).unwrap();
    assert!(views.contains("kind = 2 OR kind = 3"), "{views}");
    // Version 11 looks runs up by id in `calls_id`.
    let ids: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'calls_runs_ids'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ids, 0);
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
        let c = as_version_9(dir.path());
        c.execute_batch("DROP TABLE object_tags; DROP TABLE object_aliases; PRAGMA user_version = 4;")
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.project_tags("e/p").unwrap(), Vec::<String>::new());
    assert_eq!(store.project_aliases("e/p").unwrap(), Vec::<String>::new());
    let version: i64 = store.reader().unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
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
        let c = as_version_9(dir.path());
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
        let c = as_version_9(dir.path());
        c.execute_batch("DROP TABLE json_dicts; PRAGMA user_version = 7;").unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let version: i64 = store.reader().unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let new: Vec<Call> = (50..TRAIN_AFTER + 100).map(call).collect();
    let calls = new.clone();
    crate::domain::store::write(&store, move |w| calls.iter().try_for_each(|c| w.insert_call(c))).unwrap();
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
        p.attributes = json!({"weave": {"prediction": "true", "evaluation_run_id": run.id, "model": "M"}});
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
        let c = as_version_9(dir.path());
        ids::register(&c).unwrap();
        let d = ids::DECODE;
        c.execute_batch(&format!(
            "UPDATE calls SET id = {d}(id), trace_id = {d}(trace_id), parent_id = {d}(parent_id), \
             run_id = {d}(run_id), turn_id = {d}(turn_id), model = 'M'; PRAGMA user_version = 8;"
        ))
        .unwrap();
        let blobs: i64 =
            c.query_row("SELECT count(*) FROM calls WHERE typeof(id) = 'blob'", [], |r| r.get(0)).unwrap();
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
                 sum(kind = 2 AND model IS NOT NULL) FROM calls",
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
        let c = as_version_9(dir.path());
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

/// What the reads of project `project` answer, as text: every call, the run lists (whole,
/// filtered by model, by evaluations, by ids), the values runs take, the latest run of each
/// pair, each run's predictions and scores, the children of the runs.
fn answers(store: &SqliteStore, project: &str) -> Vec<String> {
    use crate::domain::run_rows::RunDimension;
    use crate::domain::view::Kind;
    let mut out = Vec::new();
    let mut calls = Vec::new();
    store
        .calls(project, &CallQuery::default(), &mut |c| {
            calls.push(c);
            true
        })
        .unwrap();
    out.extend(calls.iter().map(|c| format!("{c:?}")));
    let list = |q: &RunQuery, out: &mut Vec<String>| {
        store
            .eval_runs(project, q, &mut |row| {
                out.push(format!("{row:?}"));
                true
            })
            .unwrap();
    };
    let runs: Vec<String> = calls
        .iter()
        .filter(|c| c.weave_attr("evaluation_run") == Some("true"))
        .map(|c| c.id.clone())
        .collect();
    let model = |m: &str| format!("weave:///{project}/object/M:{m}");
    let evaluation = |e: &str| format!("weave:///{project}/object/E:{e}");
    for q in [
        RunQuery::default(),
        RunQuery { newest_first: true, ..Default::default() },
        RunQuery { models: vec![model("b")], ..Default::default() },
        RunQuery { models: vec![model("c"), model("a"), "unknown".into()], ..Default::default() },
        RunQuery { evaluations: vec![evaluation("y"), evaluation("x")], ..Default::default() },
        RunQuery { evaluations: vec![evaluation("x")], models: vec![model("a")], ..Default::default() },
        RunQuery { models: vec!["unknown".into()], ..Default::default() },
        RunQuery {
            ids: runs.iter().take(3).cloned().collect(),
            models: vec![model("a"), model("b")],
            ..Default::default()
        },
    ] {
        out.push(format!("{q:?}"));
        list(&q, &mut out);
    }
    for dimension in [RunDimension::Evaluation, RunDimension::Model] {
        out.push(format!("{:?}", store.run_values(project, dimension, 100).unwrap()));
        out.push(format!("{:?}", store.run_values(project, dimension, 2).unwrap()));
    }
    store
        .latest_runs(project, 100, &mut |row| {
            out.push(format!("latest {row:?}"));
            true
        })
        .unwrap();
    for run in &runs {
        for kind in [Kind::Prediction, Kind::Score] {
            store
                .view_calls(project, kind, Some(run), None, Default::default(), &mut |c| {
                    out.push(format!("{kind:?} {}", c.id));
                    true
                })
                .unwrap();
        }
    }
    store
        .children_of(project, &runs, &mut |c| {
            out.push(format!("child {}", c.id));
            true
        })
        .unwrap();
    use crate::domain::call_query::{Sort, SortField};
    let op = |name: &str| name.to_string();
    for q in [
        CallQuery { op_names: vec![op("M.predict"), op("unknown")], ..Default::default() },
        CallQuery {
            op_names: vec![op("weave:///e/p/op/Evaluation.evaluate:*"), op("helper")],
            ..Default::default()
        },
        CallQuery { op_names: vec![op("unknown"), op("weave:///e/p/op/Other:*")], ..Default::default() },
        CallQuery { wb_user_ids: vec![op("u1"), op("nobody")], ..Default::default() },
        CallQuery {
            sort: vec![Sort { field: SortField::Column("op_name"), descending: true }],
            ..Default::default()
        },
        CallQuery {
            sort: vec![Sort { field: SortField::Column("wb_user_id"), descending: false }],
            ..Default::default()
        },
        CallQuery {
            sort: vec![Sort { field: SortField::TraceName, descending: false }],
            ..Default::default()
        },
    ] {
        out.push(format!("{q:?}"));
        store
            .calls(project, &q, &mut |c| {
                out.push(format!("{} {} {:?}", c.id, c.op_name, c.wb_user_id));
                true
            })
            .unwrap();
    }
    out
}

/// Calls of two projects for the upgrade tests: runs with refs first written in an order
/// other than their texts' (keys order otherwise), predictions, scores, children, a logged
/// run, user ids; and a run of `e/p` to delete.
fn upgrade_calls() -> (Vec<Call>, Call) {
    use serde_json::json;
    let mut calls = Vec::new();
    let mut t = 0;
    for project in ["e/q", "e/p"] {
        for (e, m) in [("y", "c"), ("x", "b"), ("y", "a"), ("x", "a"), ("y", "c"), ("x", "c"), ("", "b")] {
            t += 1;
            let mut run = Call::new(project, "Evaluation.evaluate", t);
            let (e, m) =
                (format!("weave:///{project}/object/E:{e}"), format!("weave:///{project}/object/M:{m}"));
            let e = if e.ends_with("E:") { String::new() } else { e };
            run.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": e, "model": m}});
            run.summary = Some(json!({"n": t}));
            run.wb_user_id = Some(format!("u{}", t % 3));
            let mut p = Call::new(project, "M.predict", t + 100).under(&run);
            p.attributes = json!({"weave": {"prediction": "true", "evaluation_run_id": run.id, "model": m}});
            let mut s = Call::new(project, "S.score", t + 200).under(&p);
            s.attributes = json!({"weave": {"score": "true", "evaluation_run_id": run.id}});
            s.wb_user_id = Some("u1".into());
            let child = Call::new(project, "helper", t + 300).under(&run);
            calls.extend([run, p, s, child]);
        }
        t += 1;
        let mut logged = Call::new(project, "weave:///e/p/op/Evaluation.evaluate:d", t);
        logged.inputs =
            json!({"self": format!("weave:///{project}/object/E:x"), "model": "weave:///shared/object/M:z"});
        calls.push(logged);
    }
    let mut gone = Call::new("e/p", "Evaluation.evaluate", 999);
    gone.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": "weave:///e/p/object/E:gone", "model": "weave:///e/p/object/M:gone"}});
    (calls, gone)
}

/// Writes [`upgrade_calls`] to a current store in `dir`, the run to delete deleted; returns
/// the calls kept.
fn write_upgrade_calls(dir: &std::path::Path) -> Vec<Call> {
    let (calls, gone) = upgrade_calls();
    let store = SqliteStore::open(dir).unwrap();
    let written = calls.clone();
    crate::domain::store::write(&store, move |w| {
        written.iter().try_for_each(|c| w.insert_call(c))?;
        w.insert_call(&gone)?;
        w.delete_subtree("e/p", &gone.id, 1000).map(drop)
    })
    .unwrap();
    calls
}

/// Every read [`answers`] for the projects of [`upgrade_calls`] and one without calls, and
/// the projects' summaries.
fn every_answer(store: &SqliteStore) -> Vec<String> {
    let mut projects = Vec::new();
    store
        .projects(&mut |p| {
            projects.push(format!("{p:?}"));
            true
        })
        .unwrap();
    [answers(store, "e/p"), answers(store, "e/q"), answers(store, "e/none"), projects].concat()
}

#[test]
fn a_version_10_store_is_upgraded_to_name_keys_and_reads_every_call_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let calls = write_upgrade_calls(dir.path());
    let before = every_answer(&SqliteStore::open(dir.path()).unwrap());
    assert!(before.iter().any(|a| a.contains("S.score Some(\"u1\")")), "{before:?}");
    {
        let c = as_version_10(dir.path());
        let (ops, users): (String, String) = c
            .query_row(
                "SELECT group_concat(DISTINCT typeof(op_name)), group_concat(DISTINCT typeof(wb_user_id)) \
                 FROM calls WHERE wb_user_id IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((ops.as_str(), users.as_str()), ("text", "text"));
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let names = {
        let conn = store.reader().unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok");
        let types: String = conn
            .query_row(
                "SELECT group_concat(DISTINCT typeof(op_name) || typeof(wb_user_id)) FROM calls \
                 WHERE wb_user_id IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(types, "integerinteger");
        let (indexes, ids): (i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(name = 'calls_runs_ids') FROM sqlite_master \
                 WHERE type = 'index' AND tbl_name = 'calls'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((indexes as usize, ids), (SCHEMA.matches(" ON calls ").count(), 0));
        conn.query_row("SELECT count(*) FROM call_names", [], |r| r.get::<_, i64>(0)).unwrap()
    };
    // Per project: 5 op names (the logged run's too), 3 user ids.
    assert_eq!(names, 16);
    assert_eq!(every_answer(&store), before);
    for c in &calls {
        assert_eq!(store.call(&c.project_id, &c.id).unwrap().as_ref(), Some(c));
    }
    // New writes reuse the keys the upgrade made.
    let mut again = Call::new("e/p", "M.predict", 5000);
    again.wb_user_id = Some("u2".into());
    let a = again.clone();
    crate::domain::store::write(&store, move |w| w.insert_call(&a)).unwrap();
    let after: i64 =
        store.reader().unwrap().query_row("SELECT count(*) FROM call_names", [], |r| r.get(0)).unwrap();
    assert_eq!(after, names);
    assert_eq!(store.call("e/p", &again.id).unwrap(), Some(again));
}

#[test]
fn a_version_9_store_is_upgraded_to_integer_keys_and_reads_every_call_the_same() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    write_upgrade_calls(dir.path());
    let before = every_answer(&SqliteStore::open(dir.path()).unwrap());
    assert!(before.iter().any(|a| a.starts_with("latest")), "{before:?}");
    {
        let c = as_version_9(dir.path());
        let (projects, evaluations): (String, String) = c
            .query_row(
                "SELECT group_concat(DISTINCT typeof(project_id)), group_concat(DISTINCT typeof(evaluation)) \
                 FROM calls WHERE kind = 'run'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((projects.as_str(), evaluations.as_str()), ("text", "text"));
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    {
        let conn = store.reader().unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok");
        let types: String = conn
            .query_row(
                "SELECT group_concat(DISTINCT typeof(project_id) || typeof(evaluation) || typeof(model)) \
                 FROM calls WHERE kind = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(types, "integerintegerinteger");
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes as usize, SCHEMA.matches(" ON calls ").count());
    }
    let after = every_answer(&store);
    assert_eq!(after, before);
    // New writes reuse the keys the upgrade made.
    let mut run = Call::new("e/p", "Evaluation.evaluate", 5000);
    run.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": "weave:///e/p/object/E:x", "model": "weave:///e/p/object/M:a"}});
    let r = run.clone();
    crate::domain::store::write(&store, move |w| w.insert_call(&r)).unwrap();
    let refs: i64 =
        store.reader().unwrap().query_row("SELECT count(*) FROM run_refs", [], |r| r.get(0)).unwrap();
    let mut latest = Vec::new();
    let q =
        RunQuery { models: vec!["weave:///e/p/object/M:a".into()], newest_first: true, ..Default::default() };
    store
        .eval_runs("e/p", &q, &mut |row| {
            latest.push((row.id.to_string(), row.evaluation.to_string()));
            false
        })
        .unwrap();
    assert_eq!(latest, [(run.id.clone(), "weave:///e/p/object/E:x".to_string())]);
    // Each project's two evaluations, the empty one, its three models and the shared one;
    // e/p's deleted run's two.
    assert_eq!(refs, 16);
}
