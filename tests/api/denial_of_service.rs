//! Requests meant to take the server down for everyone: cyclic refs and parent links, a key
//! holding every read connection, a small request asking for a huge answer, a client that
//! keeps failing to authenticate. Each must get a clear answer while the server keeps serving
//! every other client.

use crate::helpers::*;

use serde_json::{Value, json};
use std::time::Duration;

async fn create_obj(s: &Server, id: &str, val: Value) -> String {
    let r = json_ok(post_v1(
        s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": id, "val": val}}),
    ))
    .await;
    r["digest"].as_str().expect("digest").to_string()
}

/// `refs/read_batch` of `refs`, within a deadline the old code's endless walks never met.
async fn read_refs(s: &Server, refs: &[&str]) -> (u16, Value) {
    let req = post_v1(s, "/refs/read_batch", &json!({ "refs": refs }));
    tokio::time::timeout(Duration::from_secs(30), status_json(req)).await.expect("refs/read_batch answered")
}

#[tokio::test]
async fn a_ref_that_refers_to_itself_is_a_400_and_the_server_keeps_serving() {
    let s = Server::start();
    // The value holds a ref to a path inside itself: reading it leads back to it at once.
    let own = "weave:///acme/proj/object/Loop:latest/key/x/key/y";
    create_obj(&s, "Loop", json!({ "x": own })).await;
    let (status, body) = read_refs(&s, &[own]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("Ref cycle"), "{body}");
    // Two objects that point at each other.
    create_obj(&s, "A", json!({ "next": "weave:///acme/proj/object/B:latest/key/next/key/v" })).await;
    create_obj(&s, "B", json!({ "next": "weave:///acme/proj/object/A:latest/key/next/key/v" })).await;
    let (status, body) = read_refs(&s, &["weave:///acme/proj/object/A:latest/key/next/key/v"]).await;
    assert_eq!(status, 400, "{body}");
    // A chain that never repeats a ref ends at the hop bound: O0 -> O1 -> ... -> O40.
    for i in 0..40 {
        create_obj(
            &s,
            &format!("O{i}"),
            json!({ "x": format!("weave:///acme/proj/object/O{}:latest/key/x", i + 1) }),
        )
        .await;
    }
    create_obj(&s, "O40", json!({ "x": { "v": 1 } })).await;
    let (status, body) = read_refs(&s, &["weave:///acme/proj/object/O0:latest/key/x/key/v"]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("nested refs"), "{body}");
    // Within the bound, the same chain reads.
    let (status, body) = read_refs(&s, &["weave:///acme/proj/object/O20:latest/key/x/key/v"]).await;
    assert_eq!((status, &body["vals"]), (200, &json!([1])), "{body}");
    health_ok(&s).await;
    // Refs that resolve still do, through nested refs too.
    create_obj(&s, "Leaf", json!({ "v": 7 })).await;
    create_obj(&s, "Mid", json!({ "leaf": "weave:///acme/proj/object/Leaf:latest" })).await;
    let (status, body) = read_refs(&s, &["weave:///acme/proj/object/Mid:latest/key/leaf/key/v"]).await;
    assert_eq!((status, &body["vals"]), (200, &json!([7])), "{body}");
}

/// Stores calls of trace `t` as `(id, parent)` pairs, whatever loops the parents make.
async fn write_calls(s: &Server, calls: &[(&str, &str)]) {
    let batch: Vec<Value> = calls
        .iter()
        .map(|(id, parent)| {
            json!({"project_id": "acme/proj", "id": id, "trace_id": "t", "parent_id": parent, "op_name": "op",
                "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z", "attributes": {},
                "inputs": {}, "output": null, "summary": {}})
        })
        .collect();
    json_ok(
        s.client
            .post(s.url("/calls/complete"))
            .basic_auth("api", Some(&s.key))
            .json(&json!({ "batch": batch })),
    )
    .await;
}

async fn delete_calls(s: &Server, ids: &[&str]) -> Value {
    let req = post_v1(s, "/calls/delete", &json!({"project_id": "acme/proj", "call_ids": ids}));
    tokio::time::timeout(Duration::from_secs(30), json_ok(req)).await.expect("calls/delete answered")
}

#[tokio::test]
async fn deleting_over_a_parent_cycle_deletes_what_it_reaches_once_and_returns() {
    let s = Server::start();
    // a -> b -> c -> a, with d under c; s is its own parent; x stands apart.
    write_calls(&s, &[("a", "c"), ("b", "a"), ("c", "b"), ("d", "c"), ("s", "s"), ("x", "none")]).await;
    let r = delete_calls(&s, &["b"]).await;
    assert_eq!(r["num_deleted"], 4, "{r}");
    let r = delete_calls(&s, &["s"]).await;
    assert_eq!(r["num_deleted"], 1, "{r}");
    let left = jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": "acme/proj"}))).await;
    let ids: Vec<&str> = left.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["x"]);
    // Writes of everyone else still go through.
    s.create_run("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1").await;
}

fn peak_rss_kib(s: &Server) -> u64 {
    let pid = s.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_batch_naming_one_big_value_many_times_holds_it_once() {
    let s = Server::start();
    // A 4 MB object, read through 1,000 refs: a 4 GB answer.
    let big = "y".repeat(4_000_000);
    let digest = create_obj(&s, "Big", json!({ "text": big })).await;
    let r = format!("weave:///acme/proj/object/Big:{digest}");
    let before = s.rss_kib();
    let resp =
        post_v1(&s, "/refs/read_batch", &json!({ "refs": vec![r.as_str(); 1000] })).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Read the first 40 MB (ten values), then hang up.
    let mut resp = resp;
    let mut got = Vec::new();
    while got.len() < 40_000_000 {
        let chunk = resp.chunk().await.unwrap().expect("more of the answer");
        got.extend_from_slice(&chunk);
    }
    let peak = peak_rss_kib(&s);
    drop(resp);
    assert!(got.starts_with(br#"{"vals":[{"text":"yyyy"#));
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!("server RSS before {} MiB, peak {} MiB", before / 1024, peak / 1024);
    assert!(grown_mib < 100, "the server grew by {grown_mib} MiB");
    // A small batch with repeats answers every ref in order.
    create_obj(&s, "Small", json!({ "n": 1 })).await;
    let small = "weave:///acme/proj/object/Small:latest";
    let (status, body) = read_refs(&s, &[small, &format!("{r}/key/text/index/0"), small]).await;
    assert_eq!(status, 404, "a string has no index: {body}");
    let (status, body) = read_refs(&s, &[small, small]).await;
    assert_eq!((status, body), (200, json!({"vals": [{"n": 1}, {"n": 1}]})));
    health_ok(&s).await;
}

#[tokio::test]
async fn a_batch_of_distinct_values_past_the_budget_is_refused() {
    let s = Server::start();
    let mut refs = Vec::new();
    for i in 0..17 {
        let val = json!({ "i": i, "text": "z".repeat(4_000_000) });
        let digest = create_obj(&s, &format!("Big{i}"), val).await;
        refs.push(format!("weave:///acme/proj/object/Big{i}:{digest}"));
    }
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let (status, body) = read_refs(&s, &refs).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("64 MiB"), "{body}");
    let (status, _) = read_refs(&s, &refs[..15]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_authentications_are_throttled_without_locking_out_valid_keys() {
    let s = Server::start();
    let get = |key: &str| s.client.get(s.url("/evaluation_runs")).bearer_auth(key).send();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(get("wrong-key").await.unwrap().status().as_u16());
    }
    assert!(statuses[..20].iter().all(|&c| c == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|&c| c == 429), "{statuses:?}");
    // The same address with a valid key is served.
    assert_eq!(get(&s.key).await.unwrap().status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own() {
    let s = Server::start_with(tempfile::tempdir().unwrap(), &["--trusted-proxy", "127.0.0.1"]);
    let get = |key: &str, client: &str| {
        s.client.get(s.url("/evaluation_runs")).bearer_auth(key).header("x-forwarded-for", client).send()
    };
    for _ in 0..25 {
        get("wrong-key", "10.0.0.1").await.unwrap();
    }
    assert_eq!(get("wrong-key", "10.0.0.1").await.unwrap().status(), 429);
    // Another client behind the same proxy still gets its plain 401, and valid keys pass.
    assert_eq!(get("wrong-key", "10.0.0.2").await.unwrap().status(), 401);
    assert_eq!(get(&s.key, "10.0.0.1").await.unwrap().status(), 200);
    // A client cannot hide behind a forged header: the proxy appends the real address last.
    assert_eq!(get("wrong-key", "10.0.0.2, 10.0.0.1").await.unwrap().status(), 429);
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_from_untrusted_peers() {
    let s = Server::start();
    let get = |client: &str| {
        s.client
            .get(s.url("/evaluation_runs"))
            .bearer_auth("wrong-key")
            .header("x-forwarded-for", client)
            .send()
    };
    for i in 0..25 {
        get(&format!("10.0.0.{i}")).await.unwrap();
    }
    assert_eq!(get("10.9.9.9").await.unwrap().status(), 429);
}

#[tokio::test]
async fn one_address_cannot_take_every_request_slot() {
    use std::io::Write;
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--max-requests", "8", "--max-requests-per-address", "2", "--trusted-proxy", "127.0.0.1"],
    );
    let addr = s.base.trim_start_matches("http://").to_string();
    // Client 10.0.0.1 (behind the proxy) starts two requests whose bodies never come.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!(
            "POST /v2/acme/proj/evaluation_runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             X-Forwarded-For: 10.0.0.1\r\nContent-Length: 100\r\n\r\n",
            s.key
        );
        conn.write_all(head.as_bytes()).unwrap();
        held.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let get = |client: &str| s.get("/evaluation_runs").header("x-forwarded-for", client).send();
    let refused = get("10.0.0.1").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // Every other client is served.
    assert_eq!(get("10.0.0.2").await.unwrap().status(), 200);
    assert_eq!(get("10.0.0.3").await.unwrap().status(), 200);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get("10.0.0.1").await.unwrap().status(), 200);
}
