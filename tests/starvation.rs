//! One key holding many unread streams must not starve another key, nor the health check.
//! Alone in its test binary, so that no other test's load is measured with it.

// The harness of the API tests. Public, so that this binary may use only a part of it: the API
// test binary uses all of it, and that is where a helper nothing uses is caught.
#[path = "api/helpers.rs"]
pub mod helpers;
use helpers::*;

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Calls big enough that a stream of them cannot fit in the buffers between the store and
/// a client that does not read: about 24 MB.
async fn seed_big_project(s: &Server, key: &str, project: &str) {
    let blob = "x".repeat(8 * 1024);
    for batch in 0..30 {
        let calls: Vec<Value> = (0..100)
            .map(|i| {
                json!({"project_id": project, "id": format!("c{batch}-{i}"), "trace_id": "t", "op_name": "op",
                    "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z", "attributes": {},
                    "inputs": {"blob": blob}, "output": null, "summary": {}})
            })
            .collect();
        let url = format!("{}/v2/{project}/calls/complete", s.base);
        json_ok(s.client.post(url).basic_auth("api", Some(key)).json(&json!({ "batch": calls }))).await;
    }
}

fn percentile(mut ms: Vec<f64>, p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn one_key_holding_many_unread_streams_cannot_starve_another() {
    if skip_on_clickhouse("the read connections it guards are SQLite's") {
        return;
    }
    let s = Server::start();
    let attacker = s.entity_key("evil");
    seed_big_project(&s, &attacker, "evil/big").await;
    // The other key's data: a few runs to list by model.
    let victim = s.entity_key("acme");
    let victim_get = |path: &str| s.client.get(s.url(path)).basic_auth("api", Some(&victim));
    for i in 0..5 {
        let body = json!({"evaluation": "weave:///acme/proj/object/E:1", "model": format!("weave:///acme/proj/object/M:{i}")});
        json_ok(s.client.post(s.url("/evaluation_runs")).basic_auth("api", Some(&victim)).json(&body)).await;
    }

    // 64 streams of the whole big project, never read: each client its own connection.
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    let opened = (0..64).map(|_| {
        let c = reqwest::Client::builder().build().unwrap();
        let body = json!({"project_id": "evil/big"});
        let url = format!("{}/calls/stream_query", s.base);
        let attacker = attacker.clone();
        async move { c.post(url).basic_auth("api", Some(&attacker)).json(&body).send().await.unwrap() }
    });
    for resp in futures_join_all(opened).await {
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        held.push(resp);
    }
    let served = statuses.iter().filter(|&&c| c == 200).count();
    assert!(served >= 1 && statuses.iter().all(|&c| c == 200 || c == 429), "{statuses:?}");
    assert!(served <= 16, "a key's streams are capped: {served} served");

    // The served streams fill the buffers between them and their clients, then wait.
    settle(&s).await;
    // While they are held: the other key's filtered list and the health check answer fast.
    let (mut lists, mut healths) = (Vec::new(), Vec::new());
    for i in 0..50 {
        let t = Instant::now();
        let rows =
            jsonl(victim_get(&format!("/evaluation_runs?models=weave:///acme/proj/object/M:{}", i % 5)))
                .await;
        lists.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(rows.len(), 1);
        let t = Instant::now();
        health_ok(&s).await;
        healths.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (list_p99, health_max) = (percentile(lists, 0.99), healths.iter().copied().fold(0.0, f64::max));
    eprintln!("while held: filtered list p99 {list_p99:.1} ms, health max {health_max:.1} ms");
    // Starved, these would wait behind the held streams until their clients gave up (seconds,
    // up to the client timeout); served, they take milliseconds. The bounds sit far between
    // the two, so that a machine busy with other work cannot fail the test while starvation
    // still would. Speed itself is the benchmarks' business.
    assert!(list_p99 < 1_000.0, "filtered list p99 {list_p99} ms");
    assert!(percentile(healths, 0.99) < 500.0, "health p99 over 500 ms");
    drop(held);
}

/// Awaits all futures (a tiny join_all: the tests' dependencies have no futures crate).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// CPU time the server has used, in clock ticks.
fn cpu_ticks(s: &Server) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.pid())).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // utime and stime: the 14th and 15th fields, the 12th and 13th after the name.
    fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
}

/// Waits (at most 30 s) until the server stops using CPU: what it is busy with has ended.
async fn settle(s: &Server) {
    let mut last = cpu_ticks(s);
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = cpu_ticks(s);
        if now.saturating_sub(last) <= 1 {
            return;
        }
        last = now;
    }
}
