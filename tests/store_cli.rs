//! The store options of the command line: `migrate`, and the SQLite-only commands refused on
//! ClickHouse.

mod common;
use common::*;

use std::process::Command;

/// Runs `weft ARGS...`; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run weft");
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
fn sqlite_only_commands_are_refused_on_clickhouse_before_connecting() {
    let ch = ["--store", "clickhouse", "--clickhouse-url", "http://127.0.0.1:1"];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("copy.db");
    let (ok, _, err) = run(&[&ch[..], &["backup", file.to_str().expect("path")]].concat());
    assert!(!ok && err.contains("SQLite store only"), "{err}");
    let (ok, _, err) = run(&[&ch[..], &["serve", "--max-db-mib", "5"]].concat());
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
    let (ok, _, err) = run(&args);
    assert!(ok && err.contains("applied migration 1"), "{err}");
    let (ok, _, err) = run(&args);
    assert!(ok && err.contains("up to date"), "{err}");
    // A server starts on the migrated database and serves it.
    let s = Server::start_in(dir);
    assert!(!s.key.is_empty());
}
