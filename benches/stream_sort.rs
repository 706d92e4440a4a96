//! `calls/stream_query` sorted by a nested input field against the same query sorted by
//! `started_at`, on the real weft binary over one project of N calls (100,000 by default), each
//! with `inputs.x.y` a number and a ~1 KB payload, on the SQLite store.
//!
//! For each query: time to the response's first byte, total time to read it all, and how far
//! the server's resident set grew while it answered (peak RSS, `VmHWM` reset through
//! `/proc/<pid>/clear_refs` before the request, minus `VmRSS` before it). A server that held
//! the result in memory would grow with N; a streamed one does not. One unmeasured read warms
//! the server first.
//!
//! `cargo bench --bench stream_sort` (full size), `cargo bench --bench stream_sort -- --smoke`
//! (CI: 2,000 calls, one repetition, checks that every row comes back), `--calls N`, `--reps R`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use weft::domain::call::{Call, Micros};
use weft::domain::store::write;
use weft::store::sqlite::SqliteStore;

#[path = "common/keys.rs"]
mod keys;
#[path = "common/server.rs"]
mod server;
use server::{Measure, Options, Server, ms, options, start, status_kib, weft_bin};

const PROJECT: &str = "bench/sort";
/// 2025-01-01T00:00:00Z.
const BASE: Micros = 1_735_689_600_000_000;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills the store with `n` calls, a second apart, `inputs.x.y` random.
fn fill(dir: &Path, n: usize) -> Result<(), String> {
    let store = SqliteStore::open(dir).map_err(|e| format!("open store: {e}"))?;
    let payload: String = (0..1000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    const TXN: usize = 20_000;
    let mut start = 0;
    while start < n {
        let end = (start + TXN).min(n);
        let calls: Vec<Call> = (start..end)
            .map(|i| {
                let at = BASE + i as Micros * 1_000_000 + 1;
                let mut c = Call::new(PROJECT, "weave:///bench/sort/op/predict:abc", at);
                c.id = format!("{:032x}", mix(i as u64) as u128 | ((i as u128) << 64));
                c.trace_id = c.id.clone();
                c.ended_at = Some(at + 250_000);
                let y = (mix(i as u64 ^ 0xabc) % 1_000_000) as f64 / 1000.0;
                c.inputs = json!({ "x": { "y": y }, "payload": payload });
                c.output = Some(json!({ "answer": i }));
                c
            })
            .collect();
        write(&store, move |w| {
            for c in &calls {
                w.insert_call(c)?;
            }
            Ok(())
        })
        .map_err(|e| format!("write: {e}"))?;
        start = end;
    }
    Ok(())
}

/// One `calls/stream_query` sorted by `field`, descending, read to its end.
fn measure(server: &Server, field: &str) -> Result<Measure, String> {
    let pid = server.child.id();
    // Writing 5 resets the peak (`VmHWM`) to the current resident set.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").map_err(|e| format!("clear_refs: {e}"))?;
    let before = status_kib(pid, "VmRSS:");
    let body = json!({
        "project_id": PROJECT,
        "sort_by": [{ "field": field, "direction": "desc" }],
    })
    .to_string();
    let request = format!(
        "POST /calls/stream_query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nAccept: application/jsonl\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        server.auth,
        body.len()
    );
    let started = Instant::now();
    let mut sock = TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| e.to_string())?;
    sock.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut ttfb = None;
    let (mut bytes, mut rows, mut head) = (0usize, 0usize, Vec::new());
    let mut last = 0u8;
    loop {
        let got = sock.read(&mut buf).map_err(|e| e.to_string())?;
        if got == 0 {
            break;
        }
        ttfb.get_or_insert_with(|| started.elapsed());
        if head.len() < 64 {
            head.extend_from_slice(&buf[..got.min(64)]);
        }
        bytes += got;
        // Rows end with `}` and a newline; chunk framing never does.
        for &b in &buf[..got] {
            if b == b'\n' && last == b'}' {
                rows += 1;
            }
            last = b;
        }
    }
    let total = started.elapsed();
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(format!("{field}: {}", String::from_utf8_lossy(&head)));
    }
    let peak = status_kib(pid, "VmHWM:");
    Ok(Measure {
        ttfb: ttfb.unwrap_or(total),
        total,
        rows,
        bytes,
        rss_growth_kib: peak.saturating_sub(before),
    })
}

fn run() -> Result<(), String> {
    let Options { n, reps } = options("--calls")?;
    let n = n as usize;
    let bin = weft_bin();
    let work = tempfile::Builder::new().prefix("weft-bench-").tempdir().map_err(|e| e.to_string())?;
    let dir = work.path().join("weft");
    let filled = Instant::now();
    fill(&dir, n)?;
    eprintln!("filled {n} calls in {:.1} s", filled.elapsed().as_secs_f64());
    let server = start(&bin, &dir)?;
    // One unmeasured read first: the reader's page cache and the server's buffers are warm
    // for every measured query alike.
    measure(&server, "started_at")?;
    let idle_kib = status_kib(server.child.id(), "VmRSS:");
    let fields = ["started_at", "inputs.x.y"];
    let mut best: Vec<Option<Measure>> = fields.iter().map(|_| None).collect();
    for _ in 0..reps {
        for (f, slot) in fields.iter().zip(best.iter_mut()) {
            let m = measure(&server, f)?;
            if m.rows != n {
                return Err(format!("sorted by {f}: {} rows, expected {n}", m.rows));
            }
            m.keep_best(slot);
        }
    }
    println!(
        "calls/stream_query over {n} calls ({reps} runs each, fastest shown; RSS growth: the largest; \
         server RSS after a warm-up read {:.1} MB)",
        idle_kib as f64 / 1024.0
    );
    println!("| sort_by (desc) | first byte | total | rows | MB sent | peak RSS growth |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (f, m) in fields.iter().zip(&best) {
        let Some(m) = m else { continue };
        println!(
            "| `{f}` | {} | {} | {} | {:.1} | {:.1} MB |",
            ms(m.ttfb),
            ms(m.total),
            m.rows,
            m.bytes as f64 / 1e6,
            m.rss_growth_kib as f64 / 1024.0
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("stream_sort: {e}");
        std::process::exit(1);
    }
}
