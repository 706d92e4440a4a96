//! A full store (here: the database file at its size quota) refuses writes with a clear 507,
//! keeps serving reads, loses nothing acknowledged, and takes writes again once there is room.

mod common;
use common::*;

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
