//! The workloads, run against one server at a time, and what they measure.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};
use weft::domain::call::format_time;

use crate::data::{Data, EVALS, MAIN, MODELS, Rng, SEED, WRITES, object_ref, run_summary};
use crate::format::thousands;
use crate::http::{enc, first_id, lines};
use crate::load::{Load, drive, pct};
use crate::options::{Budget, Plan};
use crate::server::{Impl, Launch, Server, cpu_of, cpu_secs, proc_mb};

/// Results of one N.
pub(crate) struct Round {
    pub(crate) n: usize,
    pub(crate) data_calls: usize,
    pub(crate) summary_bytes: usize,
    pub(crate) weft_gen_secs: f64,
    pub(crate) ref_gen_secs: Option<f64>,
    pub(crate) weft: Measured,
    pub(crate) reference: Option<Measured>,
    pub(crate) ref_skipped: Option<String>,
    /// weft on ClickHouse, when asked for and run at this N.
    pub(crate) clickhouse: Option<Measured>,
    pub(crate) ch_gen_secs: Option<f64>,
    pub(crate) ch_skipped: Option<String>,
    /// ClickHouse's own time per query shape during weft's workloads (`system.query_log`).
    pub(crate) ch_own: Vec<String>,
}

/// Measurements of one server on one store, by key.
#[derive(Default)]
pub(crate) struct Measured {
    values: HashMap<&'static str, f64>,
    pub(crate) notes: Vec<String>,
    /// Strings compared between the two servers (first ids, row counts).
    pub(crate) checks: Vec<(&'static str, String)>,
}

impl Measured {
    fn set(&mut self, key: &'static str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.values.insert(key, v);
        }
    }
    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }
    fn record(&mut self, name: &str, load: &Load, keys: [&'static str; 6]) {
        let [p50, p99, rate, n, cpu, ccpu] = keys;
        self.set(p50, load.pct(0.5));
        self.set(p99, load.pct(0.99));
        self.set(rate, load.rate());
        self.set(n, Some(load.lat.len() as f64));
        let per = (load.lat.len() + load.errors).max(1) as f64;
        self.set(cpu, Some(load.server_cpu * 1e3 / per));
        self.set(ccpu, Some(load.client_cpu * 1e3 / per));
        if load.errors > 0 {
            self.notes.push(format!(
                "{name}: {} of {} requests failed ({})",
                load.errors,
                load.errors + load.lat.len(),
                load.first_error.clone().unwrap_or_default()
            ));
        }
    }
}

/// A 300-byte-ish summary for finish requests.
fn finish_body(i: usize) -> Vec<u8> {
    let mut rng = Rng(SEED ^ i as u64);
    serde_json::to_vec(&json!({"summary": run_summary(&mut rng, &object_ref(WRITES, "Dataset"))}))
        .expect("json")
}

/// One call's start and end (`call/start` and `call/end` bodies), written as text: building
/// them must cost the client far less than the server spends storing them.
fn call_bodies(i: usize, k: usize) -> (String, String) {
    let id = uuid::Uuid::now_v7();
    let now = weft::domain::call::now();
    let start = format!(
        r#"{{"start":{{"project_id":"{WRITES}","id":"{id}","trace_id":"{id}","op_name":"bench.generate","started_at":"{}","attributes":{{"weave":{{"client_version":"0.52.38"}}}},"inputs":{{"prompt":"Summarise document {i}-{k} in one sentence.","temperature":0.2}}}}}}"#,
        format_time(now)
    );
    let end = format!(
        r#"{{"end":{{"project_id":"{WRITES}","id":"{id}","ended_at":"{}","output":{{"text":"A short summary of the document.","tokens":42}},"summary":{{}}}}}}"#,
        format_time(now + 1_500)
    );
    (start, end)
}

/// One `call/upsert_batch` body: `calls` calls, each a start then an end.
fn upsert_body(calls: usize, i: usize) -> Vec<u8> {
    let mut body = String::with_capacity(calls * 700);
    body.push_str(r#"{"batch":["#);
    for k in 0..calls {
        let (start, end) = call_bodies(i, k);
        if k > 0 {
            body.push(',');
        }
        let _ = write!(body, r#"{{"mode":"start","req":{start}}},{{"mode":"end","req":{end}}}"#);
    }
    body.push_str("]}");
    body.into_bytes()
}

pub(crate) const UPSERT_CALLS: usize = 100;

/// Calls in one `calls/complete` batch: the official SDK's largest (`MAX_BATCH_SIZE` of its
/// `CallBatchProcessor`, weave 0.54), what a client logging faster than it flushes sends.
pub(crate) const COMPLETE_CALLS: usize = 1_000;

/// One `POST /v2/{entity}/{project}/calls/complete` body as the SDK 0.54 sends it: `{"batch":
/// [call...]}`, each call complete (start and end in one object), in traces of ten calls (a
/// root op and nine children), with the attributes the SDK adds to every call.
fn complete_body(calls: usize, i: usize) -> Vec<u8> {
    let mut body = String::with_capacity(calls * 900);
    body.push_str(r#"{"batch":["#);
    let now = weft::domain::call::now();
    let mut trace = uuid::Uuid::now_v7();
    for k in 0..calls {
        let id = uuid::Uuid::now_v7();
        let (parent, op) = if k % 10 == 0 {
            trace = id;
            ("null".to_string(), "pipeline")
        } else {
            (format!("\"{trace}\""), "generate")
        };
        if k > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"project_id":"{WRITES}","id":"{id}","trace_id":"{trace}","parent_id":{parent},"thread_id":null,"turn_id":null,"op_name":"weave:///{WRITES}/op/{op}:Yb8eZ2uT4XNcmyd0wkxK9OOIn7V6DYP2ltnGz8o4DpA","display_name":null,"started_at":"{}","ended_at":"{}","attributes":{{"weave":{{"client_version":"0.54.0","source":"python-sdk","os_name":"Linux","os_version":"6.8.0","os_release":"6.8.0-generic","sys_version":"3.11.9 (main) [GCC 12.2.0]"}}}},"inputs":{{"prompt":"Summarise document {i}-{k} in one sentence.","temperature":0.2}},"output":{{"text":"A short summary of the document.","tokens":42}},"summary":{{"usage":{{"gpt-4o-mini":{{"requests":1,"prompt_tokens":120,"completion_tokens":42,"total_tokens":162}}}}}},"exception":null,"wb_run_id":null,"wb_run_step":null,"wb_run_step_end":null}}"#,
            format_time(now + k as i64),
            format_time(now + k as i64 + 1_500),
        );
    }
    body.push_str("]}");
    body.into_bytes()
}

/// Request bodies made in order on a thread of their own, a few ahead of the requests that
/// take them: a `calls/complete` batch takes about a millisecond to make, which the timed loop
/// would otherwise add to every request (at c=1 the server waits for it). The thread stops
/// once the receiver is dropped.
fn made_ahead(
    conc: usize,
    make: impl Fn(usize) -> Vec<u8> + Send + 'static,
) -> tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(conc + 1);
    std::thread::spawn(move || {
        for i in 0.. {
            if tx.blocking_send(make(i)).is_err() {
                break;
            }
        }
    });
    tokio::sync::Mutex::new(rx)
}

async fn run_workloads(which: Impl, server: &Server, data: &Data, plan: &Plan, m: &mut Measured) {
    let h = &server.http;
    let pid = server.pid;
    let pids = &server.cpu_pids[..];
    let runs = format!("/v2/{MAIN}/evaluation_runs");
    m.set("idle_rss", proc_mb(pid, "VmRSS"));
    let latency = if which == Impl::Ref {
        Budget { min: plan.latency.min.min(3), ..plan.latency }
    } else {
        plan.latency
    };

    // 1. Full list stream.
    eprintln!("    1. full list");
    let mut ttfb = Vec::new();
    let mut total = Vec::new();
    let (mut rows, mut bytes) = (0usize, 0usize);
    let (s0, c0) = (cpu_of(pids), cpu_secs("self"));
    let started = Instant::now();
    for rep in 0..plan.list.max {
        if rep >= plan.list.min && started.elapsed() >= plan.list.time {
            break;
        }
        let t = Instant::now();
        let resp = h.client.get(format!("{}{runs}", h.base)).header("authorization", &h.auth).send().await;
        let mut resp = match resp {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                m.notes.push(format!("full list: HTTP {}", r.status()));
                break;
            }
            Err(e) => {
                m.notes.push(format!("full list: {e}"));
                break;
            }
        };
        let (mut r, mut b, mut first) = (0usize, 0usize, None);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    first.get_or_insert_with(|| t.elapsed());
                    r += lines(&chunk);
                    b += chunk.len();
                }
                Ok(None) => break,
                Err(e) => {
                    m.notes.push(format!("full list: body {e}"));
                    break;
                }
            }
        }
        total.push(t.elapsed().as_secs_f64() * 1e3);
        ttfb.push(first.unwrap_or_default().as_secs_f64() * 1e3);
        (rows, bytes) = (r, b);
    }
    let (server_cpu, client_cpu) = (cpu_of(pids) - s0, cpu_secs("self") - c0);
    m.set("rss.peak", proc_mb(pid, "VmHWM"));
    if let Some(t50) = pct(&total, 0.5) {
        m.set("list.rows_s", Some(rows as f64 / (t50 / 1e3)));
        m.set("list.mb_s", Some(bytes as f64 / 1e6 / (t50 / 1e3)));
        m.set("list.total_p50", Some(t50));
        m.set("list.ttfb_p50", pct(&ttfb, 0.5));
        m.set("list.ttfb_p99", pct(&ttfb, 0.99));
        m.set("list.reps", Some(total.len() as f64));
        m.set("list.bytes_row", Some(bytes as f64 / rows.max(1) as f64));
        let all_rows = (rows * total.len()).max(1) as f64;
        m.set("list.cpu_us_row", Some(server_cpu * 1e6 / all_rows));
        m.set("list.ccpu_us_row", Some(client_cpu * 1e6 / all_rows));
        m.set("list.wall_us_row", Some(total.iter().sum::<f64>() * 1e3 / all_rows));
    }
    m.checks.push(("full list rows", rows.to_string()));
    if rows != data.n {
        m.notes.push(format!("full list returned {rows} rows, expected {}", data.n));
    }

    // 2. Filtered page, concurrency 1 and 16.
    let filtered =
        format!("{runs}?models={}&models={}&limit=100", enc(&data.models[0]), enc(&data.models[1]));
    match h.get(&filtered).await {
        Ok(b) => {
            m.checks.push(("filtered page rows", lines(&b).to_string()));
            m.checks.push(("filtered page first id", first_id(&b)));
        }
        Err(e) => m.notes.push(format!("filtered page: {e}")),
    }
    let page = |path: String| {
        move |_| {
            let path = path.clone();
            async move { h.get(&path).await.map(|_| 1) }
        }
    };
    eprintln!("    2. filtered page, c=1");
    let l = drive(pids, 1, latency, page(filtered.clone())).await;
    m.record("filtered page c=1", &l, keys("filt1"));
    eprintln!("    2. filtered page, c=16");
    let budget16 = Budget { min: latency.min.max(16), ..latency };
    let l = drive(pids, 16, budget16, page(filtered.clone())).await;
    m.record("filtered page c=16", &l, keys("filt16"));

    // 3. Deep page.
    eprintln!("    3. deep page");
    let deep = format!("{runs}?offset={}&limit=100", data.n / 2);
    match h.get(&deep).await {
        Ok(b) => {
            m.checks.push(("deep page rows", lines(&b).to_string()));
            m.checks.push(("deep page first id", first_id(&b)));
            if first_id(&b) != data.ids[data.n / 2] {
                m.notes.push("deep page: first row is not run N/2 of the generated order".into());
            }
        }
        Err(e) => m.notes.push(format!("deep page: {e}")),
    }
    let l = drive(pids, 1, latency, page(deep)).await;
    m.record("deep page", &l, keys("deep"));

    // 3. The same deep page by cursor (`after=`, the run before it), and a filtered one past
    // the middle run. The reference has no `after` (it would answer the first page).
    if which != Impl::Ref {
        eprintln!("    3. deep page by cursor");
        let cursor = format!("{runs}?after={}&limit=100", enc(&data.ids[data.n / 2 - 1]));
        match h.get(&cursor).await {
            Ok(b) => {
                m.checks.push(("deep page by cursor rows", lines(&b).to_string()));
                m.checks.push(("deep page by cursor first id", first_id(&b)));
                if first_id(&b) != data.ids[data.n / 2] {
                    m.notes
                        .push("deep page by cursor: first row is not run N/2 of the generated order".into());
                }
            }
            Err(e) => m.notes.push(format!("deep page by cursor: {e}")),
        }
        let l = drive(pids, 1, latency, page(cursor)).await;
        m.record("deep page by cursor", &l, keys("cursor"));
        eprintln!("    3. deep filtered page by cursor");
        let cursor = format!(
            "{runs}?models={}&models={}&after={}&limit=100",
            enc(&data.models[0]),
            enc(&data.models[1]),
            enc(&data.ids[data.n / 2])
        );
        match h.get(&cursor).await {
            Ok(b) => {
                m.checks.push(("deep filtered page by cursor rows", lines(&b).to_string()));
                m.checks.push(("deep filtered page by cursor first id", first_id(&b)));
            }
            Err(e) => m.notes.push(format!("deep filtered page by cursor: {e}")),
        }
        let l = drive(pids, 1, latency, page(cursor)).await;
        m.record("deep filtered page by cursor", &l, keys("cursorf"));
    }

    // 4. Lookup of 100 ids.
    eprintln!("    4. lookup");
    let mut rng = Rng(SEED ^ 0x100);
    let lookup: String = (0..100)
        .map(|_| format!("evaluation_run_ids={}", enc(&data.ids[rng.below(data.ids.len())])))
        .collect::<Vec<_>>()
        .join("&");
    let lookup = format!("{runs}?{lookup}");
    match h.get(&lookup).await {
        Ok(b) => m.checks.push(("lookup rows", lines(&b).to_string())),
        Err(e) => m.notes.push(format!("lookup: {e}")),
    }
    let l = drive(pids, 1, latency, page(lookup)).await;
    m.record("lookup", &l, keys("lookup"));

    // 5. Writes: create + finish at concurrency 16; upsert_batch ingestion.
    eprintln!("    5. create+finish, c=16");
    let wruns = format!("/v2/{WRITES}/evaluation_runs");
    let evals: Vec<String> = (0..EVALS).map(|i| object_ref(WRITES, &format!("Eval{i}"))).collect();
    let models: Vec<String> = (0..MODELS).map(|i| object_ref(WRITES, &format!("Model{i}"))).collect();
    let finish: Vec<Vec<u8>> = (0..64).map(finish_body).collect();
    let writes = Budget { min: plan.writes.min.max(16), ..plan.writes };
    let l = drive(pids, 16, writes, |i| {
        let body = serde_json::to_vec(&json!({"evaluation": evals[i % EVALS], "model": models[i % MODELS]}));
        let (wruns, finish) = (&wruns, &finish);
        async move {
            let created = h.post(wruns, body.expect("json")).await?;
            let v: Value = serde_json::from_slice(&created).map_err(|e| e.to_string())?;
            let id = v["evaluation_run_id"].as_str().ok_or("no evaluation_run_id")?;
            h.post(&format!("{wruns}/{id}/finish"), finish[i % finish.len()].clone()).await?;
            Ok(1)
        }
    })
    .await;
    m.record("create+finish", &l, keys("create"));

    eprintln!("    5. upsert_batch, c=4");
    let ingest = Budget { min: plan.writes.min.max(4), ..plan.writes };
    let l = drive(pids, 4, ingest, |i| async move {
        h.post("/call/upsert_batch", upsert_body(UPSERT_CALLS, i)).await.map(|_| UPSERT_CALLS as u64)
    })
    .await;
    m.record("upsert_batch", &l, keys("upsert"));

    // The official SDK's write path (weave 0.54): `calls/complete` batches. The reference's
    // route generator (weave 0.52) has no such route.
    if which != Impl::Ref {
        let complete = format!("/v2/{WRITES}/calls/complete");
        for (conc, key) in [(1, "complete1"), (8, "complete8")] {
            eprintln!("    5. calls/complete, c={conc}");
            let budget = Budget { min: plan.writes.min.max(conc), ..plan.writes };
            let complete = &complete;
            let bodies = &made_ahead(conc, |i| complete_body(COMPLETE_CALLS, i));
            let l = drive(pids, conc, budget, |_| async move {
                let body = bodies.lock().await.recv().await.ok_or_else(|| "no body was made".to_string())?;
                h.post(complete, body).await.map(|_| COMPLETE_CALLS as u64)
            })
            .await;
            m.record(&format!("calls/complete c={conc}"), &l, keys(key));
        }
    }

    eprintln!("    5. call/start + call/end, c=4");
    let l = drive(pids, 4, ingest, |i| async move {
        let (start, end) = call_bodies(i, 0);
        h.post("/call/start", start.into_bytes()).await?;
        h.post("/call/end", end.into_bytes()).await?;
        Ok(1)
    })
    .await;
    m.record("call/start + call/end", &l, keys("single"));
}

/// Keys of one latency workload: p50, p99, rate, samples, server CPU ms/req, client CPU ms/req.
pub(crate) fn keys(w: &'static str) -> [&'static str; 6] {
    match w {
        "filt1" => ["filt1.p50", "filt1.p99", "filt1.rate", "filt1.n", "filt1.cpu", "filt1.ccpu"],
        "filt16" => ["filt16.p50", "filt16.p99", "filt16.rate", "filt16.n", "filt16.cpu", "filt16.ccpu"],
        "deep" => ["deep.p50", "deep.p99", "deep.rate", "deep.n", "deep.cpu", "deep.ccpu"],
        "lookup" => ["lookup.p50", "lookup.p99", "lookup.rate", "lookup.n", "lookup.cpu", "lookup.ccpu"],
        "create" => ["create.p50", "create.p99", "create.rate", "create.n", "create.cpu", "create.ccpu"],
        "upsert" => ["upsert.p50", "upsert.p99", "upsert.rate", "upsert.n", "upsert.cpu", "upsert.ccpu"],
        "single" => ["single.p50", "single.p99", "single.rate", "single.n", "single.cpu", "single.ccpu"],
        "cursor" => ["cursor.p50", "cursor.p99", "cursor.rate", "cursor.n", "cursor.cpu", "cursor.ccpu"],
        "cursorf" => {
            ["cursorf.p50", "cursorf.p99", "cursorf.rate", "cursorf.n", "cursorf.cpu", "cursorf.ccpu"]
        }
        "complete1" => [
            "complete1.p50",
            "complete1.p99",
            "complete1.rate",
            "complete1.n",
            "complete1.cpu",
            "complete1.ccpu",
        ],
        "complete8" => [
            "complete8.p50",
            "complete8.p99",
            "complete8.rate",
            "complete8.n",
            "complete8.cpu",
            "complete8.ccpu",
        ],
        _ => unreachable!("unknown workload {w}"),
    }
}

/// Starts `launch`, runs every workload, then restarts it `cold` times to time cold starts.
/// `store_mb` is the store's size on disk before the server starts.
pub(crate) async fn bench_server(
    launch: &Launch,
    data: &Data,
    plan: &Plan,
    cold: usize,
    store_mb: Option<f64>,
) -> Measured {
    let mut m = Measured::default();
    m.set("db.mb", store_mb);
    eprintln!("  {} N={}: starting", launch.which.name(), thousands(data.n as f64));
    match launch.start().await {
        Ok(server) => {
            m.set("cold.first", Some(server.ready_after.as_secs_f64() * 1e3));
            run_workloads(launch.which, &server, data, plan, &mut m).await;
            drop(server);
        }
        Err(e) => {
            m.notes.push(format!("server did not start: {e}"));
            return m;
        }
    }
    eprintln!("    6. cold start x{cold}");
    let mut times = Vec::new();
    for _ in 0..cold {
        match launch.start().await {
            Ok(server) => times.push(server.ready_after.as_secs_f64() * 1e3),
            Err(e) => m.notes.push(format!("restart: {e}")),
        }
    }
    m.set("cold.restart", pct(&times, 0.5));
    m
}
