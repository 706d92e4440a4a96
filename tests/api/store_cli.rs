//! The store options of the command line: `migrate`, and the SQLite-only commands refused on
//! ClickHouse.

use crate::helpers::*;

use std::process::Command;

/// Runs `weft ARGS...` (with no cluster from the environment); returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("WEFT_CLICKHOUSE_CLUSTER").env_remove("WEFT_CLICKHOUSE_SHARDS");
    run_command(cmd, args)
}

/// Runs `weft ARGS...` on the tests' store as the environment names it (a cluster too).
fn run_here(args: &[&str]) -> (bool, String, String) {
    run_command(Command::new(BIN), args)
}

fn run_command(mut cmd: Command, args: &[&str]) -> (bool, String, String) {
    let out = cmd.args(args).output().expect("run weft");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn migrate_print_emits_the_single_server_schema() {
    let (ok, out, err) = run(&["migrate", "--print", "--clickhouse-database", "w1"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("CREATE DATABASE IF NOT EXISTS w1;"));
    assert!(out.contains("CREATE TABLE IF NOT EXISTS w1.calls ("));
    assert!(out.contains("ENGINE = ReplacingMergeTree(version) ORDER BY (project_id, id);"));
    assert!(!out.contains("ON CLUSTER"));
}

#[test]
fn migrate_print_cluster_emits_replicated_and_distributed_tables() {
    let (ok, out, err) = run(&["migrate", "--print", "--cluster", "main"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("CREATE DATABASE IF NOT EXISTS weft ON CLUSTER main;"));
    assert!(out.contains("CREATE TABLE IF NOT EXISTS weft.calls_local ON CLUSTER main ("));
    assert!(out.contains(
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/weft/calls', '{replica}', version)"
    ));
    assert!(out.contains("ENGINE = Distributed(main, weft, calls_local, cityHash64(project_id));"));
    let (ok, _, err) = run(&["migrate", "--print", "--cluster", "main; DROP"]);
    assert!(!ok && err.contains("not a plain identifier"), "{err}");
}

#[test]
fn migrate_print_shards_without_keeper_says_where_each_statement_goes() {
    let shards = ["--clickhouse-shard", "http://127.0.0.1:1,http://127.0.0.1:2"];
    let (ok, out, err) =
        run(&[&["migrate", "--print", "--clickhouse-cluster", "two"][..], &shards[..]].concat());
    assert!(ok, "{err}");
    assert!(!out.contains("ON CLUSTER") && !out.contains("Replicated"), "{out}");
    assert!(
        out.starts_with("-- on each shard and each entry node\nCREATE DATABASE IF NOT EXISTS weft;"),
        "{out}"
    );
    assert!(out.contains("-- on each shard\nCREATE TABLE IF NOT EXISTS weft.calls_local (project_id String"));
    assert!(out.contains(
        "-- on each shard and each entry node\nCREATE TABLE IF NOT EXISTS weft.calls AS weft.calls_local \
         ENGINE = Distributed(two, weft, calls_local, cityHash64(project_id));"
    ));
    let (ok, _, err) = run(&["migrate", "--print", "--clickhouse-shard", "http://127.0.0.1:1"]);
    assert!(!ok && err.contains("--clickhouse-shard needs --clickhouse-cluster"), "{err}");
}

#[test]
fn sqlite_only_commands_are_refused_on_clickhouse_before_connecting() {
    let ch = ["--store", "clickhouse", "--clickhouse-url", "http://127.0.0.1:1"];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("copy.db");
    let (ok, _, err) = run(&[&ch[..], &["backup", file.to_str().expect("path")]].concat());
    assert!(!ok && err.contains("SQLite store only"), "{err}");
    let (ok, _, err) = run(&[&ch[..], &["serve", "--max-db-mib", "5"]].concat());
    assert!(!ok && err.contains("SQLite store only"), "{err}");
    let (ok, _, err) = run(&[&ch[..], &["serve", "--read-mmap-mib", "64"]].concat());
    assert!(!ok && err.contains("SQLite store only"), "{err}");
    let (ok, _, err) = run(&["--store", "clickhouse", "keys", "list"]);
    assert!(!ok && err.contains("--clickhouse-url"), "{err}");
}

#[test]
fn migrate_applies_the_schema_once() {
    let Some(url) = clickhouse_url() else {
        println!("skipped: needs WEFT_TEST_STORE=clickhouse (migrate applies to ClickHouse only)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = clickhouse_database(dir.path());
    let args = ["--store", "clickhouse", "--clickhouse-url", &url, "--clickhouse-database", &db, "migrate"];
    let (ok, _, err) = run_here(&args);
    assert!(ok && err.contains("applied migration 1"), "{err}");
    let (ok, _, err) = run_here(&args);
    assert!(ok && err.contains("up to date"), "{err}");
    // A server starts on the migrated database and serves it.
    let s = Server::start_in(dir);
    assert!(!s.key.is_empty());
}

/// Runs `sql` on ClickHouse in `database`, waiting for mutations; returns the answer's text.
async fn clickhouse(url: &str, database: &str, sql: &str) -> String {
    let user = std::env::var("WEFT_CLICKHOUSE_USER").unwrap_or_else(|_| "default".into());
    let password = std::env::var("WEFT_CLICKHOUSE_PASSWORD").unwrap_or_default();
    let r = reqwest::Client::new()
        .post(format!("{}/?database={database}&mutations_sync=2", url.trim_end_matches('/')))
        .basic_auth(&user, Some(&password))
        .body(sql.to_string())
        .send()
        .await
        .expect("query");
    assert!(r.status().is_success(), "{sql}: {}", r.status());
    r.text().await.expect("body")
}

#[tokio::test]
async fn migration_7_lists_predictions_flagged_with_json_true() {
    let Some(url) = clickhouse_url() else {
        println!("skipped: needs WEFT_TEST_STORE=clickhouse (the SQLite upgrade is tested in its schema)");
        return;
    };
    if std::env::var_os("WEFT_CLICKHOUSE_CLUSTER").is_some() {
        println!("skipped: one server's migrations");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = clickhouse_database(dir.path());
    let args = ["--store", "clickhouse", "--clickhouse-url", &url, "--clickhouse-database", &db, "migrate"];
    let (ok, _, err) = run(&args);
    assert!(ok, "{err}");
    let mut flagged = weft::domain::call::Call::new("acme/proj", "M.predict", weft::domain::call::now());
    flagged.attributes =
        serde_json::json!({"weave": {"prediction": true, "evaluation_run_id": "run", "model": "M"}});
    let id = flagged.id.clone();
    {
        let store = open_store(dir.path());
        weft::domain::store::write(store.as_ref(), move |w| w.insert_call(&flagged)).expect("write");
    }
    // As weft left it before migration 7: no view's call.
    clickhouse(&url, &db, &format!("ALTER TABLE calls UPDATE kind = NULL, run_id = NULL WHERE id = '{id}'"))
        .await;
    clickhouse(&url, &db, "ALTER TABLE weft_migrations DELETE WHERE version = 7").await;
    let listed = "SELECT count() FROM calls FINAL WHERE kind = 'prediction'";
    assert_eq!(clickhouse(&url, &db, listed).await.trim(), "0");
    let (ok, _, err) = run(&args);
    assert!(ok && err.contains("applied migration 7"), "{err}");
    let s = Server::start_in(dir);
    let rows = jsonl(s.get("/predictions?evaluation_run_id=run")).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["prediction_id"], id.as_str());
}

/// Whether the server process has its database file memory-mapped.
fn maps_database(server: &Server) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.child.id())).expect("maps");
    maps.lines().any(|l| l.ends_with("/weft.db"))
}

/// A data directory holding `n` runs of `acme/proj`, written (and checkpointed into the
/// database file) by a store opened in this process; returns it with the runs' ids in order.
fn filled(n: i64) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = weft::store::sqlite::SqliteStore::open(dir.path()).expect("open");
    let base = weft::domain::call::now();
    let ids = weft::domain::store::write(&store, move |w| {
        let mut ids = Vec::new();
        for i in 0..n {
            let mut c = weft::domain::call::Call::new("acme/proj", "Evaluation.evaluate", base + i);
            let (e, m) = ("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1");
            c.attributes =
                serde_json::json!({"weave": {"evaluation_run": "true", "evaluation": e, "model": m}});
            c.inputs = serde_json::json!({"self": e, "model": m});
            w.insert_call(&c)?;
            ids.push(c.id.clone());
        }
        Ok(ids)
    })
    .expect("fill");
    drop(store);
    (dir, ids)
}

#[tokio::test]
async fn memory_mapped_reads_are_opt_in_and_answer_the_same() {
    if skip_on_clickhouse("--read-mmap-mib applies to the SQLite file") {
        return;
    }
    let mut mapped = Vec::new();
    for args in [&[][..], &["--read-mmap-mib", "64"][..]] {
        let (dir, ids) = filled(300);
        let s = Server::start_with(dir, args);
        let all = jsonl(s.get("/evaluation_runs")).await;
        let deep = jsonl(s.get("/evaluation_runs?offset=200&limit=5")).await;
        let picked = jsonl(s.get(&format!("/evaluation_runs?evaluation_run_ids={}", ids[7]))).await;
        assert_eq!((all.len(), deep.len(), picked.len()), (300, 5, 1));
        assert_eq!(deep[0]["evaluation_run_id"], ids[200].as_str());
        assert_eq!(picked[0]["evaluation_run_id"], ids[7].as_str());
        mapped.push(maps_database(&s));
    }
    assert_eq!(mapped, [false, true], "the file is mapped only with --read-mmap-mib");
}

#[tokio::test]
async fn migration_8_indexes_the_runs_already_stored() {
    let Some(url) = clickhouse_url() else {
        println!("skipped: needs WEFT_TEST_STORE=clickhouse (call_views is ClickHouse's)");
        return;
    };
    if std::env::var_os("WEFT_CLICKHOUSE_CLUSTER").is_some() {
        println!("skipped: one server's migrations");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = clickhouse_database(dir.path());
    let args = ["--store", "clickhouse", "--clickhouse-url", &url, "--clickhouse-database", &db, "migrate"];
    let (ok, _, err) = run(&args);
    assert!(ok, "{err}");
    let base = weft::domain::call::now();
    let mut calls = Vec::new();
    for i in 0..3 {
        let mut c = weft::domain::call::Call::new("acme/proj", "Evaluation.evaluate", base + i);
        let (e, m) = ("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1");
        c.attributes = serde_json::json!({"weave": {"evaluation_run": "true", "evaluation": e, "model": m}});
        c.inputs = serde_json::json!({"self": e, "model": m});
        calls.push(c);
    }
    let mut failed = weft::domain::call::Call::new("acme/proj", "child", base + 10);
    failed.trace_id = calls[1].trace_id.clone();
    failed.parent_id = Some(calls[1].id.clone());
    failed.exception = Some("boom".into());
    let ids: Vec<String> = calls.iter().map(|c| c.id.clone()).collect();
    {
        let store = open_store(dir.path());
        weft::domain::store::write(store.as_ref(), move |w| {
            for c in calls.iter().chain([&failed]) {
                w.insert_call(c)?;
            }
            Ok(())
        })
        .expect("write");
    }
    // As weft left it before migration 8: no index of the views' rows.
    clickhouse(&url, &db, "TRUNCATE TABLE call_views").await;
    clickhouse(&url, &db, "ALTER TABLE weft_migrations DELETE WHERE version = 8").await;
    let (ok, _, err) = run(&args);
    assert!(ok && err.contains("applied migration 8"), "{err}");
    let indexed = "SELECT kind, count() FROM call_views FINAL GROUP BY kind ORDER BY kind FORMAT CSV";
    assert_eq!(clickhouse(&url, &db, indexed).await.trim(), "\"failed\",1\n\"run\",3");
    let s = Server::start_in(dir);
    let rows = jsonl(s.get("/evaluation_runs?limit=10")).await;
    let listed: Vec<&str> = rows.iter().filter_map(|r| r["evaluation_run_id"].as_str()).collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let picked = jsonl(s.get(&format!("/evaluation_runs?evaluation_run_ids={}", ids[1]))).await;
    assert_eq!(picked.len(), 1, "{picked:?}");
}
