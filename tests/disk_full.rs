//! A full store (here: the database file at its size quota) refuses writes with a clear 507,
//! keeps serving reads, loses nothing acknowledged, and takes writes again once there is room.
//!
//! A test binary of its own: it writes a copy of the `weft` binary and runs it, and that fails
//! with "Text file busy" if another thread of the process has just started a child, which
//! holds the copy open for writing until its own exec. Here one other test starts processes,
//! not a hundred.

// The harness of the API tests. Public, so that this binary may use only a part of it: the API
// test binary uses all of it, and that is where a helper nothing uses is caught.
#[path = "api/helpers.rs"]
pub mod helpers;
use helpers::*;

use serde_json::json;

#[tokio::test]
async fn a_full_store_refuses_writes_clearly_and_resumes_when_there_is_room() {
    if skip_on_clickhouse("`--max-db-mib` caps the SQLite file") {
        return;
    }
    let mut s = Server::start_with(tempfile::tempdir().unwrap(), &["--max-db-mib", "2"]);
    let key = s.key.clone();
    let summary = json!({"notes": "x".repeat(4000)});
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let body = json!({"evaluation": format!("weave:///acme/proj/object/E:{i}"), "model": "weave:///acme/proj/object/M:1"});
        let resp = s.post("/evaluation_runs", &body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status == 200 {
            let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["evaluation_run_id"]
                .as_str()
                .unwrap()
                .to_string();
            let fin = s
                .post(&format!("/evaluation_runs/{id}/finish"), &json!({"summary": summary}))
                .send()
                .await
                .unwrap();
            if fin.status() == 200 {
                acknowledged.push(id);
                continue;
            }
            refused = Some((fin.status().as_u16(), fin.text().await.unwrap()));
        } else {
            refused = Some((status, text));
        }
        break;
    }
    let (status, body) = refused.expect("the quota was reached");
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("Storage unavailable"), "{body}");
    assert!(acknowledged.len() > 10);
    // Reads go on while full.
    let listed = jsonl(s.get("/evaluation_runs")).await;
    let completed = listed.iter().filter(|r| r["status"] == "completed").count();
    assert_eq!(completed, acknowledged.len());

    // Room again: a restart without the quota takes writes, and nothing acknowledged is lost.
    assert!(s.terminate());
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("weft.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let mut s2 = Server::start_in(dir);
    s2.key = key;
    s2.create_run("weave:///acme/proj/object/E:after", "weave:///acme/proj/object/M:1").await;
    let listed = jsonl(s2.get("/evaluation_runs")).await;
    for id in &acknowledged {
        let run =
            listed.iter().find(|r| r["evaluation_run_id"] == id.as_str()).expect("acknowledged run kept");
        assert_eq!(run["status"], "completed");
        assert_eq!(run["summary"]["notes"], summary["notes"]);
    }
}

/// Sets the mode of `path` and, for a directory, of every file in it.
fn chmod_all(path: &std::path::Path, dir_mode: u32, file_mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file_mode)).unwrap();
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(dir_mode)).unwrap();
}

#[tokio::test]
async fn a_read_only_data_dir_is_refused_at_start_with_a_clear_error_and_left_intact() {
    if skip_on_clickhouse("the data directory holds the SQLite file") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = outer.path().join("data");
    let (ok, key, _) = weft(&data, &["keys", "create", "--entity", "acme"]);
    assert!(ok);
    let db = data.join("weft.db");
    let before = std::fs::read(&db).unwrap();
    chmod_all(&data, 0o555, 0o444);

    // Root ignores file modes: then the server runs as an unprivileged user, from a copy of
    // the binary that user can reach.
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    let bin = outer.path().join("weft");
    std::fs::copy(BIN, &bin).unwrap();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let mut child = cmd
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "weft kept running on a read-only data dir");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("weft.db") && stderr.contains("readonly"), "unclear error: {stderr}");

    // Nothing changed; with write access back the store serves as before, the key included.
    chmod_all(&data, 0o755, 0o644);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let dir = tempfile::tempdir().unwrap();
    std::fs::remove_dir(dir.path()).unwrap();
    std::fs::rename(&data, dir.path()).unwrap();
    let s = Server::start_in(dir);
    let resp = s.client.get(s.url("/evaluation_runs")).bearer_auth(key.trim()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
