//! Long list-valued parameters: every list a request may carry is either answered whatever
//! its length (bound as one value, not spelt out in a statement) or refused past a documented
//! cap with a 413 naming it. Never a 500.

use crate::helpers::*;

use serde_json::{Value, json};

/// More values than SQLite takes as separate statement parameters (32,766).
const LONG: usize = 40_000;

/// `n` id-like values that name nothing stored.
fn noise(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("0195f0a0-0000-7000-8000-{i:012}")).collect()
}

/// `wanted` hidden at the end of `n` values that name nothing.
fn hiding(n: usize, wanted: &[&str]) -> Vec<String> {
    let mut v = noise(n);
    v.extend(wanted.iter().map(|w| w.to_string()));
    v
}

fn call(id: &str, trace: &str, parent: Option<&str>, op: &str, second: u32) -> Value {
    json!({"project_id": "acme/proj", "id": id, "trace_id": trace, "parent_id": parent, "op_name": op,
        "started_at": format!("2026-01-01T00:00:{second:02}Z"), "ended_at": format!("2026-01-01T00:00:{second:02}.5Z"),
        "attributes": {}, "inputs": {}, "output": null, "summary": {}})
}

/// Two traces of two calls each; returns the server's user id (the calls' `wb_user_id`).
async fn seed_calls(s: &Server) -> String {
    let batch = json!({"batch": [
        call("r1", "t1", None, "weave:///acme/proj/op/alpha:v1", 1),
        call("c1", "t1", Some("r1"), "weave:///acme/proj/op/beta:v2", 2),
        call("r2", "t2", None, "plain_op", 3),
        call("c2", "t2", Some("r2"), "other_op", 4),
    ]});
    json_ok(s.post("/calls/complete", &batch)).await;
    let read = json_ok(post_v1(s, "/call/read", &json!({"project_id": "acme/proj", "id": "r1"}))).await;
    read["call"]["wb_user_id"].as_str().expect("wb_user_id").to_string()
}

fn ids(calls: &[Value]) -> Vec<&str> {
    calls.iter().map(|c| c["id"].as_str().unwrap_or("")).collect()
}

/// Runs a calls filter through `calls/query`, `calls/stream_query` and `calls/query_stats`;
/// returns the ids found, checking that the three agree.
async fn query_calls(s: &Server, filter: Value) -> Vec<String> {
    let body = json!({"project_id": "acme/proj", "filter": filter});
    let listed = json_ok(post_v1(s, "/calls/query", &body)).await;
    let listed: Vec<String> =
        ids(listed["calls"].as_array().expect("calls")).into_iter().map(String::from).collect();
    let streamed = jsonl(post_v1(s, "/calls/stream_query", &body)).await;
    assert_eq!(ids(&streamed), listed, "stream_query agrees with query");
    let stats = json_ok(post_v1(s, "/calls/query_stats", &body)).await;
    assert_eq!(stats["count"], json!(listed.len()), "query_stats agrees with query");
    listed
}

#[tokio::test]
async fn call_filters_of_tens_of_thousands_of_ids_are_answered() {
    let s = Server::start();
    let user = seed_calls(&s).await;
    assert_eq!(query_calls(&s, json!({"call_ids": hiding(LONG, &["c1", "r2"])})).await, ["c1", "r2"]);
    assert_eq!(query_calls(&s, json!({"trace_ids": hiding(LONG, &["t2"])})).await, ["r2", "c2"]);
    assert_eq!(query_calls(&s, json!({"parent_ids": hiding(LONG, &["r1"])})).await, ["c1"]);
    assert_eq!(query_calls(&s, json!({"wb_user_ids": hiding(LONG, &[&user])})).await.len(), 4);
    assert!(query_calls(&s, json!({"wb_user_ids": noise(LONG)})).await.is_empty());
    // All of them at once, and with a window.
    let all = json!({"call_ids": hiding(LONG, &["r1", "c1", "c2"]), "trace_ids": hiding(LONG, &["t1", "t2"]),
        "parent_ids": hiding(LONG, &["r1", "r2"]), "wb_user_ids": hiding(LONG, &[&user])});
    assert_eq!(query_calls(&s, all.clone()).await, ["c1", "c2"]);
    let body = json!({"project_id": "acme/proj", "filter": all, "limit": 1, "offset": 1,
        "sort_by": [{"field": "started_at", "direction": "desc"}]});
    let page = json_ok(post_v1(&s, "/calls/query", &body)).await;
    assert_eq!(ids(page["calls"].as_array().unwrap()), ["c1"]);
}

#[tokio::test]
async fn thousands_of_op_names_are_answered() {
    let s = Server::start();
    seed_calls(&s).await;
    // Past SQLite's expression depth (1,000) as a chain of ORs: exact names and prefixes.
    let mut ops: Vec<String> = (0..3_000)
        .map(|i| if i % 2 == 0 { format!("weave:///acme/proj/op/none{i}:*") } else { format!("none_op_{i}") })
        .collect();
    ops.push("weave:///acme/proj/op/beta:*".into());
    ops.push("plain_op".into());
    assert_eq!(query_calls(&s, json!({"op_names": ops})).await, ["c1", "r2"]);
    // A prefix matches whole names only: `alpha:*` is not `alph:*`.
    let near = vec!["weave:///acme/proj/op/alph:*".to_string(); 2_000];
    assert!(query_calls(&s, json!({"op_names": near})).await.is_empty());
}

#[tokio::test]
async fn op_names_past_their_cap_are_a_413_naming_it() {
    let s = Server::start();
    seed_calls(&s).await;
    let ops: Vec<String> = (0..10_001).map(|i| format!("op_{i}")).collect();
    let body = json!({"project_id": "acme/proj", "filter": {"op_names": ops}});
    for path in ["/calls/query", "/calls/stream_query", "/calls/query_stats"] {
        let (status, reply) = status_json(post_v1(&s, path, &body)).await;
        assert_eq!(status, 413, "{path}: {reply}");
        let reason = reply["reason"].as_str().unwrap_or("");
        assert!(reason.contains("op_names") && reason.contains("10000"), "{path}: {reason}");
    }
    // At the cap, answered.
    let mut at_cap: Vec<String> = (0..9_999).map(|i| format!("op_{i}")).collect();
    at_cap.push("other_op".into());
    assert_eq!(query_calls(&s, json!({"op_names": at_cap})).await, ["c2"]);
}

async fn create_obj(s: &Server, object_id: &str, val: Value) -> String {
    let o = json_ok(post_v1(
        s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": object_id, "val": val}}),
    ))
    .await;
    o["digest"].as_str().expect("digest").to_string()
}

#[tokio::test]
async fn object_filters_and_deletes_of_tens_of_thousands_of_values_are_answered() {
    let s = Server::start();
    let model = json!({"_class_name": "M", "_bases": ["Model", "Object", "BaseModel"], "n": 1});
    create_obj(&s, "m", model).await;
    let d1 = create_obj(&s, "plain", json!({"v": 1})).await;
    let d2 = create_obj(&s, "plain", json!({"v": 2})).await;
    let objs = |filter: Value| {
        let s = &s;
        async move {
            let r = json_ok(post_v1(s, "/objs/query", &json!({"project_id": "acme/proj", "filter": filter})))
                .await;
            r["objs"]
                .as_array()
                .expect("objs")
                .iter()
                .map(|o| format!("{}:{}", o["object_id"].as_str().unwrap(), o["version_index"]))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(objs(json!({"object_ids": hiding(LONG, &["plain"])})).await, ["plain:0", "plain:1"]);
    assert_eq!(objs(json!({"base_object_classes": hiding(LONG, &["Model"])})).await, ["m:0"]);
    assert!(objs(json!({"object_ids": noise(LONG), "base_object_classes": noise(LONG)})).await.is_empty());
    // Deleting by a long list of digests deletes the ones named, and only those.
    let del = json!({"project_id": "acme/proj", "object_id": "plain", "digests": hiding(LONG, &[&d2])});
    let (status, reply) = status_json(post_v1(&s, "/obj/delete", &del)).await;
    assert_eq!((status, &reply["num_deleted"]), (200, &json!(1)), "{reply}");
    let left = json_ok(post_v1(
        &s,
        "/obj/read",
        &json!({"project_id": "acme/proj", "object_id": "plain", "digest": "latest"}),
    ))
    .await;
    assert_eq!(left["obj"]["digest"], json!(d1));
    let none = json!({"project_id": "acme/proj", "object_id": "plain", "digests": noise(LONG)});
    assert_eq!(status_json(post_v1(&s, "/obj/delete", &none)).await.0, 404);
}

#[tokio::test]
async fn table_rows_filtered_by_as_many_digests_as_rows_are_answered() {
    let s = Server::start();
    // 20,000 rows asked for by 20,000 digests: every row against every digest would be
    // 400 million comparisons.
    const N: usize = 20_000;
    let rows: Vec<Value> = (0..N).map(|i| json!({"i": i})).collect();
    let t =
        json_ok(post_v1(&s, "/table/create", &json!({"table": {"project_id": "acme/proj", "rows": rows}})))
            .await;
    let digest = t["digest"].as_str().expect("digest").to_string();
    let row_digests: Vec<String> = t["row_digests"]
        .as_array()
        .expect("row digests")
        .iter()
        .map(|d| d.as_str().unwrap().into())
        .collect();
    // Every other row, named in reverse order, among digests of nothing.
    let mut only: Vec<String> = row_digests.iter().step_by(2).rev().cloned().collect();
    only.extend(noise(N / 2));
    let body = json!({"project_id": "acme/proj", "digest": digest, "filter": {"row_digests": only}});
    let r = json_ok(post_v1(&s, "/table/query", &body)).await;
    let got = r["rows"].as_array().expect("rows");
    assert_eq!(got.len(), N / 2);
    for (k, row) in got.iter().enumerate() {
        assert_eq!(row["original_index"], json!(2 * k), "rows come in table order");
        assert_eq!(row["val"]["i"], json!(2 * k));
        assert_eq!(row["digest"], json!(row_digests[2 * k]));
    }
    let body = json!({"project_id": "acme/proj", "digest": digest, "filter": {"row_digests": only},
        "offset": 100, "limit": 3});
    let page = json_ok(post_v1(&s, "/table/query", &body)).await;
    let idx: Vec<&Value> = page["rows"].as_array().unwrap().iter().map(|r| &r["original_index"]).collect();
    assert_eq!(idx, [&json!(200), &json!(202), &json!(204)]);
}

#[tokio::test]
async fn run_lists_filtered_by_hundreds_of_models_or_evaluations_are_answered() {
    let s = Server::start();
    let run = s.create_run("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1").await;
    // Up to the documented 1,000 values of a filter: each value is not a separate SELECT.
    let mut models: Vec<String> = (0..999).map(|i| format!("m{i}")).collect();
    models.push("weave:///acme/proj/object/M:1".into());
    let q = format!("/evaluation_runs?models={}", models.join(","));
    let runs = jsonl(s.get(&q)).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["evaluation_run_id"], json!(run));
    let mut evals: Vec<String> = (0..999).map(|i| format!("e{i}")).collect();
    evals.push("weave:///acme/proj/object/E:1".into());
    let q = format!("/evaluation_runs?evaluations={}&models={}", evals.join(","), models.join(","));
    assert_eq!(jsonl(s.get(&q)).await.len(), 1);
}
