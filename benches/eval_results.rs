//! `eval_results/query` over two evaluation runs of N predictions each (100,000 by default), on
//! the real weft binary over the SQLite store: each run logged as the Python SDK's
//! `Evaluation.evaluate` logs one (a root `Evaluation.evaluate` call, one `predict_and_score`
//! child per example with the example, the model's output and two scores, and the model's
//! `Model.predict` call under it). Both runs score the same examples, so rows pair up.
//!
//! For each query: time to the response's first byte, total time to read it all, and how far
//! the server's resident set grew while it answered (peak RSS, `VmHWM` reset through
//! `/proc/<pid>/clear_refs` before the request, minus `VmRSS` before it). The queries: both
//! runs with the summary and every row; the same with a window of 100 rows; one run's summary
//! alone; a window sorted by a score. Each query runs on a fresh server, after one query of no
//! run (so that what an earlier query's allocator kept does not hide a later one's growth).
//!
//! `cargo bench --bench eval_results` (full size), `cargo bench --bench eval_results -- --smoke`
//! (CI: 2,000 predictions, one repetition, checks the row counts), `--predictions N`,
//! `--reps R`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use serde_json::{Value, json};
use weft::domain::call::{Call, Micros};
use weft::domain::store::write;
use weft::store::sqlite::SqliteStore;

#[path = "common/keys.rs"]
mod keys;
#[path = "common/server.rs"]
mod server;
use server::{Measure, Options, Server, ms, options, start, status_kib, weft_bin};

const PROJECT: &str = "bench/eval";
/// 2025-01-01T00:00:00Z.
const BASE: Micros = 1_735_689_600_000_000;
const EVAL: &str = "weave:///bench/eval/object/Eval:abc";
const EVALUATE: &str = "weave:///bench/eval/op/Evaluation.evaluate:abc";
const PAS: &str = "weave:///bench/eval/op/Evaluation.predict_and_score:abc";
const PREDICT: &str = "weave:///bench/eval/op/Model.predict:abc";

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn id(run: u64, i: u64, kind: u64) -> String {
    format!("{:032x}", (mix(run << 40 ^ i << 2 ^ kind) as u128) << 64 | (run << 40 | i << 2 | kind) as u128)
}

/// Writes run `run` (model `model`) with `n` predictions; returns the run's id.
fn fill_run(store: &SqliteStore, run: u64, model: &str, n: u64) -> Result<String, String> {
    let run_id = id(run, 0, 3);
    let start = BASE + run as Micros * 1_000_000_000;
    let mut root = Call::new(PROJECT, EVALUATE, start);
    root.id = run_id.clone();
    root.trace_id = run_id.clone();
    root.inputs = json!({ "self": EVAL, "model": model });
    root.ended_at = Some(start + (n as Micros + 1) * 1_000);
    root.output = Some(json!({ "acc": { "true_count": n / 2, "true_fraction": 0.5 } }));
    let root_for_write = root.clone();
    write(store, move |w| w.insert_call(&root_for_write)).map_err(|e| format!("write: {e}"))?;
    const TXN: u64 = 10_000;
    let mut from = 0;
    while from < n {
        let to = (from + TXN).min(n);
        let mut calls = Vec::with_capacity(2 * (to - from) as usize);
        for i in from..to {
            let at = start + (i as Micros + 1) * 1_000;
            let example = json!({ "q": format!("question {i}"), "expected": i % 7 });
            let answer = (mix(run ^ i) % 7) as i64;
            let mut pas = Call::new(PROJECT, PAS, at).under(&root);
            pas.id = id(run, i, 1);
            pas.inputs = json!({ "self": EVAL, "model": model, "example": example });
            pas.output = Some(json!({
                "output": { "answer": answer },
                "scores": {
                    "exact": { "correct": answer == (i % 7) as i64 },
                    "close": (mix(i ^ run << 8) % 1000) as f64 / 1000.0,
                },
                "model_latency": 0.01,
            }));
            pas.ended_at = Some(at + 900);
            let mut predict = Call::new(PROJECT, PREDICT, at + 10).under(&pas);
            predict.id = id(run, i, 2);
            predict.inputs = json!({ "self": model, "q": format!("question {i}") });
            predict.output = Some(json!({ "answer": answer }));
            predict.ended_at = Some(at + 800);
            calls.push(pas);
            calls.push(predict);
        }
        write(store, move |w| {
            for c in &calls {
                w.insert_call(c)?;
            }
            Ok(())
        })
        .map_err(|e| format!("write: {e}"))?;
        from = to;
    }
    Ok(run_id)
}

/// One `eval_results/query` with `body`, read to its end; `rows` is the answer's row count.
fn measure(server: &Server, body: &Value) -> Result<Measure, String> {
    let pid = server.child.id();
    // Writing 5 resets the peak (`VmHWM`) to the current resident set.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").map_err(|e| format!("clear_refs: {e}"))?;
    let before = status_kib(pid, "VmRSS:");
    let body = body.to_string();
    // HTTP/1.0: the answer comes unchunked and ends when the connection closes.
    let request = format!(
        "POST /v2/{PROJECT}/eval_results/query HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.auth,
        body.len()
    );
    let started = Instant::now();
    let mut sock = TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| e.to_string())?;
    sock.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut ttfb = None;
    let mut answer = Vec::new();
    loop {
        let got = sock.read(&mut buf).map_err(|e| e.to_string())?;
        if got == 0 {
            break;
        }
        ttfb.get_or_insert_with(|| started.elapsed());
        answer.extend_from_slice(&buf[..got]);
    }
    let total = started.elapsed();
    let peak = status_kib(pid, "VmHWM:");
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP head")?;
    let (head, payload) = (&answer[..split], &answer[split + 4..]);
    if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
        return Err(format!("{}: {}", String::from_utf8_lossy(head), String::from_utf8_lossy(payload)));
    }
    let parsed: Value = serde_json::from_slice(payload).map_err(|e| format!("answer: {e}"))?;
    let rows = parsed["rows"].as_array().map_or(0, Vec::len);
    Ok(Measure {
        ttfb: ttfb.unwrap_or(total),
        total,
        bytes: payload.len(),
        rows,
        rss_growth_kib: peak.saturating_sub(before),
    })
}

fn run() -> Result<(), String> {
    let Options { n, reps } = options("--predictions")?;
    let bin = weft_bin();
    let work = tempfile::Builder::new().prefix("weft-bench-").tempdir().map_err(|e| e.to_string())?;
    let dir = work.path().join("weft");
    let filled = Instant::now();
    let (a, b) = {
        let store = SqliteStore::open(&dir).map_err(|e| format!("open store: {e}"))?;
        let a = fill_run(&store, 1, "weave:///bench/eval/object/ModelA:abc", n)?;
        let b = fill_run(&store, 2, "weave:///bench/eval/object/ModelB:abc", n)?;
        (a, b)
    };
    eprintln!("filled 2 runs of {n} predictions in {:.1} s", filled.elapsed().as_secs_f64());
    let both = json!([a, b]);
    // (what, body, rows expected, trials read)
    let queries: Vec<(String, Value, usize, u64)> = vec![
        (
            "2 runs, summary, every row".into(),
            json!({"evaluation_call_ids": both, "include_summary": true}),
            n as usize,
            2 * n,
        ),
        (
            format!("2 runs, summary, 100 rows from row {}", n / 2),
            json!({"evaluation_call_ids": both, "include_summary": true, "limit": 100, "offset": n / 2}),
            100.min(n as usize - (n / 2) as usize),
            2 * n,
        ),
        (
            "1 run, summary only".into(),
            json!({"evaluation_call_ids": [a], "include_summary": true, "include_rows": false}),
            0,
            n,
        ),
        (
            "2 runs, 100 rows sorted by a score".into(),
            json!({"evaluation_call_ids": both, "limit": 100,
                   "sort_by": [{"field": "scores.close", "direction": "desc"}]}),
            100.min(n as usize),
            2 * n,
        ),
    ];
    let mut best: Vec<Option<Measure>> = queries.iter().map(|_| None).collect();
    let mut idle_kib = 0;
    for _ in 0..reps {
        for ((name, body, want, _), slot) in queries.iter().zip(best.iter_mut()) {
            // A fresh server for each query, so that what one query's allocator keeps does not
            // hide the next one's growth; one small query first sets up its buffers.
            let server = start(&bin, &dir)?;
            measure(&server, &json!({"evaluation_call_ids": ["none"], "include_summary": true}))?;
            idle_kib = idle_kib.max(status_kib(server.child.id(), "VmRSS:"));
            let m = measure(&server, body)?;
            if m.rows != *want {
                return Err(format!("{name}: {} rows, expected {want}", m.rows));
            }
            m.keep_best(slot);
        }
    }
    println!(
        "eval_results/query over 2 runs of {n} predictions ({reps} runs each, each on a fresh server, fastest \
         shown; RSS growth: the largest; server RSS before a query at most {:.1} MB)",
        idle_kib as f64 / 1024.0
    );
    println!("| query | first byte | total | rows | MB sent | peak RSS growth | per trial read |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for ((name, _, _, trials), m) in queries.iter().zip(&best) {
        let Some(m) = m else { continue };
        println!(
            "| {name} | {} | {} | {} | {:.1} | {:.1} MB | {:.0} B |",
            ms(m.ttfb),
            ms(m.total),
            m.rows,
            m.bytes as f64 / 1e6,
            m.rss_growth_kib as f64 / 1024.0,
            m.rss_growth_kib as f64 * 1024.0 / *trials as f64
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("eval_results: {e}");
        std::process::exit(1);
    }
}
