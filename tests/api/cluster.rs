//! Several weft processes on one ClickHouse, and a cluster of shards: requests spread across
//! processes (writes on one, reads and finishes on another) lose and duplicate nothing, and a
//! cluster's rows are spread over its shards by project and read back through any node.

use crate::helpers::*;

use serde_json::{Value, json};

/// Runs listed through `s`: (id, status) of each, newest first.
async fn runs(s: &Server) -> Vec<(String, String)> {
    jsonl(s.get("/evaluation_runs"))
        .await
        .iter()
        .map(|r| (r["evaluation_run_id"].as_str().unwrap_or_default().into(), r["status"].to_string()))
        .collect()
}

#[tokio::test]
async fn requests_spread_over_several_processes_lose_and_duplicate_nothing() {
    if skip_unless_clickhouse(false, "several weft processes share one ClickHouse database") {
        return;
    }
    let a = Server::start();
    // On a cluster the second process enters by another node.
    let shards = clickhouse_shards();
    let b = a.sibling(shards.get(1).map(String::as_str));
    let c = a.sibling(None);
    let servers = [&a, &b, &c];

    // One after the other: created on one process, finished on the next, read on the third.
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = servers[i % 3]
            .create_run(&format!("weave:///acme/proj/object/E{}:d", i % 2), "weave:///acme/proj/object/M:d")
            .await;
        let finish = servers[(i + 1) % 3]
            .post(&format!("/evaluation_runs/{id}/finish"), &json!({"summary": {"n": i}}));
        json_ok(finish).await;
        let read = json_ok(servers[(i + 2) % 3].get(&format!("/evaluation_runs/{id}"))).await;
        assert_eq!(read["status"], "completed", "{read}");
        assert_eq!(read["summary"]["n"], i, "{read}");
        ids.push(id);
    }
    // A call started on one process and ended on another, then renamed on the third.
    for i in 0..10 {
        let id = format!("call-{i}");
        let start = json!({"start": {"project_id": "acme/proj", "id": id, "trace_id": format!("t{i}"),
            "op_name": "op", "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {"i": i}}});
        json_ok(post_v1(servers[i % 3], "/call/start", &start)).await;
        let end = json!({"end": {"project_id": "acme/proj", "id": id, "ended_at": "2026-01-01T00:00:01Z",
            "output": i * 2, "summary": {}}});
        json_ok(post_v1(servers[(i + 1) % 3], "/call/end", &end)).await;
        let rename = json!({"project_id": "acme/proj", "call_id": id, "display_name": format!("named {i}")});
        json_ok(post_v1(servers[(i + 2) % 3], "/call/update", &rename)).await;
    }

    // At the same time: pairs created and finished on different processes, concurrently.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (create, finish) = (handle(servers[i % 3]), handle(servers[(i + 1) % 3]));
        tasks.push(tokio::spawn(async move {
            let v = json_ok(create.post(
                "/evaluation_runs",
                &json!({"evaluation": "weave:///acme/proj/object/C:d",
                "model": format!("weave:///acme/proj/object/M{i}:d")}),
            ))
            .await;
            let id = v["evaluation_run_id"].as_str().expect("id").to_string();
            json_ok(finish.post(&format!("/evaluation_runs/{id}/finish"), &json!({}))).await;
            id
        }));
    }
    for t in tasks {
        ids.push(t.await.expect("task"));
    }

    let mut expected = ids.clone();
    expected.sort();
    for s in servers {
        let listed = runs(s).await;
        let mut got: Vec<String> = listed.iter().map(|(id, _)| id.clone()).collect();
        got.sort();
        assert_eq!(got, expected, "every run listed once, through every process");
        assert!(listed.iter().all(|(_, status)| status == "\"completed\""), "{listed:?}");
        let calls = jsonl(post_v1(
            s,
            "/calls/stream_query",
            &json!({"project_id": "acme/proj", "filter": {"op_names": ["op"]}}),
        ))
        .await;
        assert_eq!(calls.len(), 10, "{calls:?}");
        for call in &calls {
            let i = call["inputs"]["i"].as_i64().expect("input");
            assert_eq!(call["output"], i * 2, "the end written by another process: {call}");
            assert_eq!(call["display_name"], format!("named {i}"), "{call}");
            assert_eq!(call["op_name"], "op");
        }
    }
}

/// What a spawned task needs of a server to post to it.
struct Handle {
    base: String,
    key: String,
    client: reqwest::Client,
}

fn handle(s: &Server) -> Handle {
    Handle { base: s.base.clone(), key: s.key.clone(), client: s.client.clone() }
}

impl Handle {
    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v2/acme/proj{path}", self.base))
            .basic_auth("api", Some(&self.key))
            .json(body)
    }
}

/// Counts of `table`'s rows of database `database` on each shard, read from the shard's own
/// `_local` table over ClickHouse's HTTP interface.
async fn per_shard(database: &str, table: &str) -> Vec<u64> {
    let user = std::env::var("WEFT_CLICKHOUSE_USER").unwrap_or_else(|_| "default".into());
    let password = std::env::var("WEFT_CLICKHOUSE_PASSWORD").unwrap_or_default();
    let client = reqwest::Client::new();
    let mut counts = Vec::new();
    for url in clickhouse_shards() {
        let sql = format!("SELECT count() FROM {database}.{table}_local FINAL");
        let r =
            client.post(&url).basic_auth(&user, Some(&password)).body(sql).send().await.expect("query shard");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        counts.push(r.text().await.expect("body").trim().parse().expect("count"));
    }
    counts
}

#[tokio::test]
async fn a_cluster_spreads_projects_over_its_shards_and_reads_them_through_any_node() {
    if skip_unless_clickhouse(true, "the rows of a cluster of shards") {
        return;
    }
    let a = Server::start();
    let shards = clickhouse_shards();
    let b = a.sibling(Some(&shards[shards.len() - 1]));
    let projects: Vec<String> = (0..24).map(|i| format!("acme/p{i}")).collect();
    for (i, p) in projects.iter().enumerate() {
        let start = json!({"start": {"project_id": p, "id": format!("c{i}"), "trace_id": "t",
            "op_name": "op", "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {}}});
        json_ok(post_v1(&a, "/call/start", &start)).await;
        let obj = json!({"obj": {"project_id": p, "object_id": "thing", "val": {"i": i}}});
        json_ok(post_v1(&b, "/obj/create", &obj)).await;
    }
    let database = clickhouse_database(&a.data_dir());
    for table in ["calls", "objects"] {
        let counts = per_shard(&database, table).await;
        assert_eq!(counts.iter().sum::<u64>(), 24, "{table}: {counts:?}");
        assert!(counts.iter().all(|n| *n > 0), "{table}: every shard holds some projects: {counts:?}");
    }
    for (i, p) in projects.iter().enumerate() {
        for s in [&a, &b] {
            let calls = jsonl(post_v1(s, "/calls/stream_query", &json!({"project_id": p}))).await;
            assert_eq!(calls.len(), 1, "{p}");
            assert_eq!(calls[0]["id"], format!("c{i}"));
            let read = json_ok(post_v1(
                s,
                "/obj/read",
                &json!({"project_id": p, "object_id": "thing", "digest": "latest"}),
            ))
            .await;
            assert_eq!(read["obj"]["val"]["i"], i, "{read}");
        }
    }
}
