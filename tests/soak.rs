//! Concurrency soak: many writers (run creates, predictions, scores, finishes, batched call
//! upserts) and readers (lists, single reads, filtered lists, call queries) against one server
//! for a bounded time. Then: every acknowledged write is stored exactly once, no answer was a
//! 5xx or carried "database is locked", every read saw the writes acknowledged before it, and
//! the server's memory stayed within a bound of what it used after warm-up.
//!
//! Smoke mode by default (about 5 s). The full mode and its knobs are in docs/reliability.md:
//! `WEFT_SOAK_SECS` (load time), `WEFT_SOAK_WRITERS`, `WEFT_SOAK_READERS`.

// The harness of the API tests. Public, so that this binary may use only a part of it: the API
// test binary uses all of it, and that is where a helper nothing uses is caught.
#[path = "api/helpers.rs"]
pub mod helpers;
use helpers::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PROJECT: &str = "acme/proj";
const EVALUATION: &str = "weave:///acme/proj/object/SoakEval:v1";
/// How much the server's resident memory may grow from the end of warm-up to the end.
const RSS_GROWTH_LIMIT_KIB: u64 = 50 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A run as its writer knows it once every write to it was acknowledged.
struct RunDone {
    id: String,
    marker: String,
    predictions: Vec<String>,
    scores: Vec<String>,
    finished: bool,
}

#[derive(Default)]
struct Shared {
    /// Runs whose create was acknowledged (id, marker): what readers may look for.
    acked_runs: Vec<(String, String)>,
    done: Vec<RunDone>,
    /// Upserted call ids acknowledged.
    calls: Vec<String>,
    /// Every failure seen by any client: status, body or transport error.
    failures: Vec<String>,
    writes: u64,
    reads: u64,
    read_rows: u64,
}

struct Ctx {
    client: reqwest::Client,
    base: String,
    key: String,
    shared: Mutex<Shared>,
    stop: AtomicBool,
}

impl Ctx {
    fn fail(&self, what: &str, msg: String) {
        self.shared.lock().unwrap().failures.push(format!("{what}: {msg}"));
    }

    /// Sends a request; a 200 gives its body. Anything else is booked as a failure.
    async fn call(&self, what: &str, req: reqwest::RequestBuilder) -> Option<String> {
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail(what, format!("transport: {e}"));
                return None;
            }
        };
        let status = resp.status();
        let body = match resp.text().await {
            Ok(b) => b,
            // A stream cut short: how an error after the first row reaches a client.
            Err(e) => {
                self.fail(what, format!("HTTP {status}, body cut: {e}"));
                return None;
            }
        };
        if body.contains("database is locked") || body.contains("database table is locked") {
            self.fail(what, format!("HTTP {status}: {body}"));
            return None;
        }
        if status != 200 {
            self.fail(what, format!("HTTP {status}: {}", &body[..body.len().min(300)]));
            return None;
        }
        Some(body)
    }

    async fn write(&self, what: &str, path: &str, body: Value) -> Option<Value> {
        let req = self.client.post(format!("{}{path}", self.base)).basic_auth("api", Some(&self.key));
        let text = self.call(what, req.body(body.to_string())).await?;
        self.shared.lock().unwrap().writes += 1;
        match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(what, format!("not JSON ({e}): {text}"));
                None
            }
        }
    }

    async fn read(&self, what: &str, req: reqwest::RequestBuilder) -> Option<Vec<Value>> {
        let text = self.call(what, req.basic_auth("api", Some(&self.key))).await?;
        let mut rows = Vec::new();
        for line in text.lines() {
            match serde_json::from_str(line) {
                Ok(v) => rows.push(v),
                Err(e) => {
                    self.fail(what, format!("bad JSON line ({e}): {line}"));
                    return None;
                }
            }
        }
        let mut s = self.shared.lock().unwrap();
        s.reads += 1;
        s.read_rows += rows.len() as u64;
        Some(rows)
    }
}

fn v2(path: &str) -> String {
    format!("/v2/{PROJECT}{path}")
}

/// One writer: a run at a time, with its predictions, scores and finish, plus call batches.
async fn writer(ctx: Arc<Ctx>, w: u64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
    let mut n = 0u64;
    while !ctx.stop.load(Ordering::SeqCst) {
        n += 1;
        if rng.below(4) == 0 {
            // A batch of calls: a root and children, started and ended in one request.
            let trace = format!("soak-w{w}-n{n}");
            let mut batch = Vec::new();
            let mut ids = Vec::new();
            for i in 0..1 + rng.below(5) {
                let id = format!("{trace}-{i}");
                let parent = (i > 0).then(|| format!("{trace}-0"));
                batch.push(json!({"mode": "start", "req": {"start": {"project_id": PROJECT, "id": id,
                    "trace_id": trace, "parent_id": parent, "op_name": "weave:///acme/proj/op/soak_step:v1",
                    "started_at": "2026-01-01T00:00:00Z", "inputs": {"i": i}, "attributes": {}}}}));
                batch.push(json!({"mode": "end", "req": {"end": {"project_id": PROJECT, "id": id,
                    "ended_at": "2026-01-01T00:00:01Z", "output": {"o": i}, "summary": {}}}}));
                ids.push(id);
            }
            if ctx.write("upsert batch", "/call/upsert_batch", json!({"batch": batch})).await.is_some() {
                ctx.shared.lock().unwrap().calls.extend(ids);
            }
            continue;
        }
        let marker = format!("w{w}n{n}");
        let model = format!("weave:///acme/proj/object/SoakModel:{marker}");
        let body = json!({"evaluation": EVALUATION, "model": model});
        let Some(v) = ctx.write("create run", &v2("/evaluation_runs"), body).await else { continue };
        let Some(id) = v["evaluation_run_id"].as_str().map(String::from) else {
            ctx.fail("create run", format!("no id in {v}"));
            continue;
        };
        ctx.shared.lock().unwrap().acked_runs.push((id.clone(), marker.clone()));
        let mut run =
            RunDone { id: id.clone(), marker, predictions: vec![], scores: vec![], finished: false };
        for k in 0..rng.below(4) {
            let body =
                json!({"model": model, "inputs": {"k": k}, "output": {"y": k}, "evaluation_run_id": id});
            let Some(p) = ctx.write("create prediction", &v2("/predictions"), body).await else { continue };
            let Some(pid) = p["prediction_id"].as_str().map(String::from) else { continue };
            let body = json!({"prediction_id": pid, "scorer": "weave:///acme/proj/object/Acc:v1",
                "value": (k % 2) as f64});
            if let Some(s) = ctx.write("create score", &v2("/scores"), body).await
                && let Some(sid) = s["score_id"].as_str()
            {
                run.scores.push(sid.to_string());
            }
            let path = v2(&format!("/predictions/{pid}/finish"));
            ctx.write("finish prediction", &path, json!({})).await;
            run.predictions.push(pid);
        }
        let body = json!({"summary": {"marker": run.marker}});
        run.finished =
            ctx.write("finish run", &v2(&format!("/evaluation_runs/{id}/finish")), body).await.is_some();
        ctx.shared.lock().unwrap().done.push(run);
    }
}

/// One reader: a mix of list, read and query requests, checking they see acknowledged writes.
async fn reader(ctx: Arc<Ctx>, r: u64) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (r + 101));
    while !ctx.stop.load(Ordering::SeqCst) {
        let known = {
            let s = ctx.shared.lock().unwrap();
            (!s.acked_runs.is_empty())
                .then(|| s.acked_runs[rng.below(s.acked_runs.len() as u64) as usize].clone())
        };
        let get = |path: String| ctx.client.get(format!("{}{}", ctx.base, v2(&path)));
        match (rng.below(12), known) {
            (0..=2, _) => {
                let q = format!("/evaluation_runs?limit=100&offset={}", rng.below(1000));
                ctx.read("list page", get(q)).await;
            }
            (3..=4, Some((id, marker))) => {
                if let Some(rows) = ctx.read("read run", get(format!("/evaluation_runs/{id}"))).await
                    && rows.first().and_then(|r| r["model"].as_str()).is_none_or(|m| !m.ends_with(&marker))
                {
                    ctx.fail("read run", format!("run {id} read as {rows:?}"));
                }
            }
            (5..=6, Some((id, marker))) => {
                let q = format!("/evaluation_runs?models=weave:///acme/proj/object/SoakModel:{marker}");
                if let Some(rows) = ctx.read("filtered list", get(q)).await
                    && (rows.len() != 1 || rows[0]["evaluation_run_id"] != id.as_str())
                {
                    ctx.fail("filtered list", format!("marker {marker}: {} rows", rows.len()));
                }
            }
            (7, Some((id, _))) => {
                ctx.read("list predictions", get(format!("/predictions?evaluation_run_id={id}"))).await;
            }
            (8..=9, _) => {
                let body = json!({"project_id": PROJECT, "filter": {"trace_roots_only": true},
                    "sort_by": [{"field": "started_at", "direction": "desc"}], "limit": 100});
                let req = ctx.client.post(format!("{}/calls/stream_query", ctx.base)).body(body.to_string());
                ctx.read("stream_query", req).await;
            }
            (10, _) => {
                let q = format!("/evaluation_runs?evaluations={EVALUATION}&limit=50");
                ctx.read("filtered page", get(q)).await;
            }
            _ => {
                // The whole list, streamed while the writers go on: it holds at least every run
                // acknowledged before it was asked for.
                let before = ctx.shared.lock().unwrap().acked_runs.len();
                if let Some(rows) = ctx.read("full list", get("/evaluation_runs".into())).await
                    && rows.len() < before
                {
                    ctx.fail("full list", format!("{} rows, {before} runs acknowledged before", rows.len()));
                }
            }
        }
    }
}

async fn list_all(s: &Server, path: &str) -> Vec<Value> {
    jsonl(s.get(path)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers() {
    let secs = env_u64("WEFT_SOAK_SECS", 5).max(2);
    let writers = env_u64("WEFT_SOAK_WRITERS", 16);
    let readers = env_u64("WEFT_SOAK_READERS", 16);
    let warmup = Duration::from_secs_f64((secs as f64 / 5.0).clamp(1.0, 30.0));
    let mut server = Server::start();
    let ctx = Arc::new(Ctx {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .unwrap(),
        base: server.base.clone(),
        key: server.key.clone(),
        shared: Mutex::new(Shared::default()),
        stop: AtomicBool::new(false),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        tasks.push(tokio::spawn(writer(ctx.clone(), w)));
    }
    for r in 0..readers {
        tasks.push(tokio::spawn(reader(ctx.clone(), r)));
    }

    tokio::time::sleep(warmup).await;
    let rss_warm = server.rss_kib();
    let mut rss_peak = rss_warm;
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let rss = server.rss_kib();
        rss_peak = rss_peak.max(rss);
        samples.push(rss);
    }
    ctx.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = server.rss_kib();

    let shared = std::mem::take(&mut *ctx.shared.lock().unwrap());
    assert!(
        shared.failures.is_empty(),
        "{} failed requests, first: {:#?}",
        shared.failures.len(),
        &shared.failures[..shared.failures.len().min(10)]
    );

    // Every acknowledged run stored exactly once, complete with its children.
    let rows = list_all(&server, "/evaluation_runs").await;
    let mut by_marker: HashMap<String, Vec<&Value>> = HashMap::new();
    for row in &rows {
        let marker = row["model"].as_str().unwrap_or_default().rsplit(':').next().unwrap_or_default();
        by_marker.entry(marker.to_string()).or_default().push(row);
    }
    assert_eq!(rows.len(), shared.acked_runs.len(), "runs stored = run creates acknowledged");
    for (id, marker) in &shared.acked_runs {
        let found = by_marker.get(marker).map_or(0, Vec::len);
        assert_eq!(found, 1, "run {marker} stored {found} times");
        assert_eq!(by_marker[marker][0]["evaluation_run_id"], id.as_str());
    }
    let preds = list_all(&server, "/predictions").await;
    let scores = list_all(&server, "/scores").await;
    let mut preds_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in &preds {
        let run = p["evaluation_run_id"].as_str().unwrap_or_default();
        preds_of.entry(run).or_default().push(p["prediction_id"].as_str().unwrap_or_default());
    }
    let mut scores_of: HashMap<&str, usize> = HashMap::new();
    for s in &scores {
        *scores_of.entry(s["evaluation_run_id"].as_str().unwrap_or_default()).or_default() += 1;
    }
    let completed: HashMap<&str, &Value> =
        rows.iter().map(|r| (r["evaluation_run_id"].as_str().unwrap_or_default(), r)).collect();
    for run in &shared.done {
        let mut stored = preds_of.get(run.id.as_str()).cloned().unwrap_or_default();
        stored.sort_unstable();
        let mut sent: Vec<&str> = run.predictions.iter().map(String::as_str).collect();
        sent.sort_unstable();
        assert_eq!(stored, sent, "predictions of run {}", run.marker);
        assert_eq!(
            scores_of.get(run.id.as_str()).copied().unwrap_or(0),
            run.scores.len(),
            "scores of {}",
            run.marker
        );
        if run.finished {
            let row = completed[run.id.as_str()];
            assert_eq!(row["status"], "completed", "run {}", run.marker);
            assert_eq!(row["summary"]["marker"], run.marker.as_str());
        }
    }
    let total_preds: usize = shared.done.iter().map(|r| r.predictions.len()).sum();
    let total_scores: usize = shared.done.iter().map(|r| r.scores.len()).sum();
    assert_eq!(preds.len(), total_preds, "predictions stored = predictions acknowledged");
    assert_eq!(scores.len(), total_scores, "scores stored = scores acknowledged");

    // Upserted calls: each acknowledged id once, nothing else.
    let mut stored_calls = 0;
    for chunk in shared.calls.chunks(500) {
        let body = json!({"project_id": PROJECT, "filter": {"call_ids": chunk}});
        let req = server.client.post(format!("{}/calls/stream_query", server.base));
        let rows = jsonl(req.basic_auth("api", Some(&server.key)).body(body.to_string())).await;
        let mut ids: Vec<&str> = rows.iter().map(|c| c["id"].as_str().unwrap_or_default()).collect();
        ids.sort_unstable();
        let mut want: Vec<&str> = chunk.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(ids, want, "calls stored once each");
        assert!(rows.iter().all(|c| !c["ended_at"].is_null()), "every call ended");
        stored_calls += rows.len();
    }

    // Memory: what the server holds after the load is within a bound of what it held after
    // warm-up (SQLite's caches and the allocator's pools fill during warm-up).
    println!(
        "soak: {writers} writers + {readers} readers for {elapsed:.1} s: {} writes ({:.0}/s), {} reads \
         ({:.0}/s, {} rows), 0 failed; runs {}, predictions {}, scores {}, calls {stored_calls}, each \
         stored once; RSS after warm-up {} MiB, peak {} MiB, end {} MiB",
        shared.writes,
        shared.writes as f64 / elapsed,
        shared.reads,
        shared.reads as f64 / elapsed,
        shared.read_rows,
        rows.len(),
        preds.len(),
        scores.len(),
        rss_warm / 1024,
        rss_peak / 1024,
        rss_end / 1024,
    );
    assert!(rss_warm > 0 && rss_end > 0, "RSS readable from /proc");
    assert!(
        rss_end <= rss_warm + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {rss_warm} KiB after warm-up to {rss_end} KiB (samples {samples:?})"
    );
    assert!(shared.writes > 0 && shared.reads > 0, "the load ran");

    assert!(server.terminate(), "clean shutdown after the soak");
    if skip_on_clickhouse("the final integrity check reads the SQLite file") {
        return;
    }
    let conn = rusqlite::Connection::open(server.data_dir().join("weft.db")).expect("open");
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(ok, "ok");
}
