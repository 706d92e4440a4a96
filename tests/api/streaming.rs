//! The list endpoint streams from the store: memory stays flat however many runs match.

use crate::helpers::*;

use futures_util::StreamExt;
use serde_json::json;
use weft::domain::call::{Call, now};

const RUNS: usize = 100_000;

/// Fills `dir` with `n` finished runs of `acme/proj`, each with a ~300-byte summary.
fn fill(dir: &std::path::Path, n: usize) {
    let store = open_store(dir);
    let base = now();
    let summary = json!({
        "accuracy": {"mean": 0.8125}, "f1": {"mean": 0.77}, "latency": {"mean": 1.25},
        "notes": "x".repeat(200),
    });
    weft::domain::store::write(store.as_ref(), move |w| {
        for i in 0..n {
            let mut c = Call::new("acme/proj", "Evaluation.evaluate", base + i as i64);
            let (e, m) = (
                format!("weave:///acme/proj/object/Ev{}:d", i % 20),
                format!("weave:///acme/proj/object/M{}:d", i % 50),
            );
            c.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": e, "model": m}});
            c.inputs = json!({"self": e, "model": m});
            c.ended_at = Some(base + i as i64 + 1000);
            c.summary = Some(summary.clone());
            w.insert_call(&c)?;
        }
        Ok(())
    })
    .expect("fill");
}

#[tokio::test]
async fn listing_100k_runs_keeps_server_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), RUNS);
    let server = Server::start_in(dir);

    // Warm up every code path with a small page, then take the baseline.
    assert_eq!(jsonl(server.get("/evaluation_runs?limit=1000")).await.len(), 1000);
    let baseline = server.rss_kib();

    let resp = server.get("/evaluation_runs").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let (mut lines, mut bytes, mut peak, mut chunks) = (0usize, 0usize, baseline, 0usize);
    let mut last = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        bytes += chunk.len();
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
        chunks += 1;
        if chunks % 16 == 0 {
            peak = peak.max(server.rss_kib());
        }
        last = chunk.to_vec();
    }
    peak = peak.max(server.rss_kib());
    assert_eq!(lines, RUNS, "every run listed once");
    let tail = String::from_utf8_lossy(&last);
    let last_line = tail.trim_end().rsplit('\n').next().unwrap();
    let v: serde_json::Value = serde_json::from_str(last_line).unwrap();
    assert_eq!(v["status"], "completed");
    let growth_kib = peak.saturating_sub(baseline);
    eprintln!("baseline {baseline} KiB, peak {peak} KiB, body {} KiB", bytes / 1024);
    let body_kib = (bytes / 1024) as u64;
    assert!(body_kib > 40_000, "the response is large ({body_kib} KiB)");
    // A server that buffered the result would grow by at least the body's size.
    assert!(
        growth_kib < 16 * 1024,
        "server RSS grew by {growth_kib} KiB while streaming {body_kib} KiB (baseline {baseline} KiB)"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_stall_the_server() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 20_000);
    let server = Server::start_in(dir);
    // Open the full stream, read one chunk, then drop the connection.
    let resp = server.get("/evaluation_runs").send().await.unwrap();
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"{\"evaluation_run_id\":"));
    drop(body);
    // The server keeps answering, writes included.
    let id = server.create_run("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1").await;
    let rows = jsonl(server.get(&format!("/evaluation_runs?evaluation_run_ids={id}"))).await;
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn a_stream_whose_reader_stalls_is_cut_off_and_never_looks_complete() {
    use std::io::{Read, Write};
    const N: usize = 40_000;
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), N);
    let server = Server::start_with(dir, &["--client-timeout", "1"]);
    let mut conn = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let request = format!(
        "GET /v2/acme/proj/evaluation_runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        server.key
    );
    conn.write_all(request.as_bytes()).unwrap();
    let mut received = vec![0u8; 4096];
    let first = conn.read(&mut received).unwrap();
    assert!(String::from_utf8_lossy(&received[..first]).starts_with("HTTP/1.1 200"));
    // Stall well past the deadline; the server keeps serving others meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(jsonl(server.get("/evaluation_runs?limit=5")).await.len(), 5);
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    let rows = rest.iter().filter(|&&b| b == b'\n').count();
    assert!(rows < N, "the stream went on after the deadline ({rows} lines)");
    assert!(!rest.ends_with(b"\r\n0\r\n\r\n"), "a cut-off stream must not end like a complete one");
}
