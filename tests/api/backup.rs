//! `weft backup` makes a consistent online copy that a new server starts from.

use crate::helpers::*;

#[tokio::test]
async fn a_backup_taken_while_serving_restores_every_run() {
    if skip_on_clickhouse("`weft backup` copies the SQLite file") {
        return;
    }
    let s = Server::start();
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            s.create_run(&format!("weave:///acme/proj/object/E:{i}"), "weave:///acme/proj/object/M:1").await,
        );
    }
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("copy.db");
    let (ok, _, err) = weft(&s.data_dir(), &["backup", file.to_str().unwrap()]);
    assert!(ok, "backup failed: {err}");
    // A second backup to the same file is refused rather than overwriting it.
    let (again, _, _) = weft(&s.data_dir(), &["backup", file.to_str().unwrap()]);
    assert!(!again);

    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("weft.db")).unwrap();
    let mut s2 = Server::start_in(restored);
    s2.key = s.key.clone();
    let rows = jsonl(s2.get("/evaluation_runs")).await;
    let listed: Vec<&str> = rows.iter().map(|r| r["evaluation_run_id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
}
