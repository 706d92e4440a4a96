//! "Nothing lost": concurrent clients run a varied write load over HTTP (run creates and
//! finishes, predictions, scores, batched call upserts) while the server is killed with SIGKILL
//! at random moments and restarted on the same data directory. After each kill the database
//! files pass SQLite's `integrity_check`; after each restart every write acknowledged with a
//! 2xx is present and correct, nothing appears that was never sent, and a batch whose answer
//! was lost in the crash is there entirely or not at all.
//!
//! Smoke mode by default (3 cycles). The full mode and its knobs are in docs/reliability.md:
//! `WEFT_CRASH_CYCLES` (cycles), `WEFT_CRASH_MAX_MS` (longest load before a kill),
//! `WEFT_CRASH_SEED` (the random choices; the kill timing is the OS's).

// The harness of the API tests. Public, so that this binary may use only a part of it: the API
// test binary uses all of it, and that is where a helper nothing uses is caught.
#[path = "api/helpers.rs"]
pub mod helpers;
use helpers::*;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PROJECT: &str = "acme/proj";
/// Concurrent client tasks writing during each cycle.
const TASKS: u64 = 6;
/// Writes one cycle may send at most (the load is bounded even if the kill is late).
const MAX_WRITES_PER_CYCLE: u64 = 20_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A printable payload, mostly short, sometimes tens of KiB (pages overflow, the WAL grows and
/// is checkpointed while the load runs).
fn blob(rng: &mut Rng) -> String {
    let len = match rng.below(20) {
        0 => 16_384 + rng.below(49_152),
        1..=3 => 1024 + rng.below(4096),
        _ => rng.below(64),
    };
    (0..len).map(|_| (b'a' + rng.below(26) as u8) as char).collect()
}

// ------------------------------------------------------------------------------ the ledger

/// What the clients sent and what the server acknowledged.
#[derive(Default)]
struct Ledger {
    runs: Vec<RunExp>,
    predictions: Vec<PredExp>,
    scores: Vec<ScoreExp>,
    /// Calls whose upserted start was acknowledged.
    calls: HashMap<String, CallExp>,
    /// Acknowledged started calls whose end has not been sent yet.
    open_calls: Vec<String>,
    /// Upsert batches whose answer never came: all of them or none of them is stored.
    lost_batches: Vec<LostBatch>,
    tally: Tally,
    /// Non-2xx answers to valid requests (there should be none).
    rejected: Vec<String>,
    /// Transport errors while the server was not being killed (there should be none).
    unexpected: Vec<String>,
}

struct RunExp {
    id: String,
    evaluation: String,
    model: String,
    finish_sent: bool,
    /// The summary of an acknowledged finish.
    summary: Option<Value>,
}

struct PredExp {
    id: String,
    run_id: String,
    model: String,
    inputs: Value,
    output: Value,
}

struct ScoreExp {
    id: String,
    prediction_id: String,
    run_id: String,
    scorer: String,
    value: f64,
}

struct CallExp {
    trace_id: String,
    parent_id: Option<String>,
    op_name: String,
    inputs: Value,
    /// The end as sent (output, exception), once sent.
    end: Option<(Value, Option<String>)>,
    /// Whether that end was acknowledged.
    end_acked: bool,
}

struct LostBatch {
    /// Calls started by the batch: (id, op name, inputs, end sent in the same batch).
    started: Vec<(String, String, Value, Option<Value>)>,
    /// Earlier calls the batch ended, with the output it sent.
    ended: Vec<(String, Value)>,
}

#[derive(Default, Clone, Copy)]
struct Count {
    sent: u64,
    acked: u64,
    lost: u64,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    create: Count,
    finish: Count,
    prediction: Count,
    score: Count,
    upsert: Count,
}

impl Tally {
    fn all(&self) -> [(&'static str, Count); 5] {
        [
            ("run creates", self.create),
            ("run finishes", self.finish),
            ("predictions", self.prediction),
            ("scores", self.score),
            ("upsert batches", self.upsert),
        ]
    }
}

// ------------------------------------------------------------------------------ the load

enum Outcome {
    /// A 2xx answer, with its JSON body if it could be read.
    Acked(Option<Value>),
    /// A non-2xx answer.
    Rejected(String),
    /// No answer: the request or its answer was cut.
    Lost(String),
}

async fn send(req: reqwest::RequestBuilder) -> Outcome {
    match req.send().await {
        Err(e) => Outcome::Lost(e.to_string()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await;
            if status.is_success() {
                Outcome::Acked(body.ok().and_then(|t| serde_json::from_str(&t).ok()))
            } else {
                Outcome::Rejected(format!("HTTP {status}: {}", body.unwrap_or_default()))
            }
        }
    }
}

/// One cycle's view of the server, shared by its client tasks.
struct Ctx {
    client: reqwest::Client,
    base: String,
    key: String,
    ledger: Arc<Mutex<Ledger>>,
    /// Set just before the kill: transport errors after it are expected.
    killing: AtomicBool,
    budget: std::sync::atomic::AtomicU64,
}

impl Ctx {
    /// A request to the v1 trace API.
    fn v1(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .basic_auth("api", Some(&self.key))
            .body(body.to_string())
    }

    /// A request to the evaluation runs API of the project.
    fn v2(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v2/{PROJECT}{path}", self.base))
            .basic_auth("api", Some(&self.key))
            .body(body.to_string())
    }

    /// Books an outcome; returns false when the task should stop (the server is going away).
    fn book(
        &self,
        l: &mut Ledger,
        what: &str,
        outcome: &Outcome,
        count: fn(&mut Tally) -> &mut Count,
    ) -> bool {
        count(&mut l.tally).sent += 1;
        match outcome {
            Outcome::Acked(_) => {
                count(&mut l.tally).acked += 1;
                true
            }
            Outcome::Rejected(msg) => {
                l.rejected.push(format!("{what}: {msg}"));
                true
            }
            Outcome::Lost(msg) => {
                count(&mut l.tally).lost += 1;
                if !self.killing.load(Ordering::SeqCst) {
                    l.unexpected.push(format!("{what}: {msg}"));
                }
                false
            }
        }
    }
}

fn id_of(outcome: &Outcome, field: &str) -> Option<String> {
    match outcome {
        Outcome::Acked(Some(v)) => v[field].as_str().map(String::from),
        _ => None,
    }
}

async fn create_run(ctx: &Ctx, rng: &mut Rng, tag: &str) -> bool {
    let evaluation = format!("weave:///acme/proj/object/Eval{}:v{}", rng.below(4), rng.below(3));
    let model = format!("weave:///acme/proj/object/Model{}:{tag}", rng.below(5));
    let out = send(ctx.v2("/evaluation_runs", &json!({"evaluation": evaluation, "model": model}))).await;
    let mut l = ctx.ledger.lock().unwrap();
    let go = ctx.book(&mut l, "create run", &out, |t| &mut t.create);
    if let Outcome::Acked(_) = out {
        match id_of(&out, "evaluation_run_id") {
            Some(id) => l.runs.push(RunExp { id, evaluation, model, finish_sent: false, summary: None }),
            None => l.rejected.push("create run: 2xx without an evaluation_run_id".into()),
        }
    }
    go
}

async fn finish_run(ctx: &Ctx, rng: &mut Rng, tag: &str) -> bool {
    let picked = {
        let mut l = ctx.ledger.lock().unwrap();
        let n = l.runs.len() as u64;
        let start = rng.below(n);
        let found = (0..n).map(|i| ((start + i) % n) as usize).find(|&i| !l.runs[i].finish_sent);
        found.map(|i| {
            l.runs[i].finish_sent = true;
            (i, l.runs[i].id.clone())
        })
    };
    let Some((i, id)) = picked else { return create_run(ctx, rng, tag).await };
    let summary = json!({"tag": tag, "n": rng.below(1000), "note": blob(rng), "nested": {"ok": true}});
    let out = send(ctx.v2(&format!("/evaluation_runs/{id}/finish"), &json!({"summary": summary}))).await;
    let mut l = ctx.ledger.lock().unwrap();
    let go = ctx.book(&mut l, "finish run", &out, |t| &mut t.finish);
    if let Outcome::Acked(_) = out {
        l.runs[i].summary = Some(summary);
    }
    go
}

async fn predict(ctx: &Ctx, rng: &mut Rng, tag: &str) -> bool {
    let run = {
        let l = ctx.ledger.lock().unwrap();
        (!l.runs.is_empty()).then(|| {
            let r = &l.runs[rng.below(l.runs.len() as u64) as usize];
            (r.id.clone(), r.model.clone())
        })
    };
    let Some((run_id, model)) = run else { return create_run(ctx, rng, tag).await };
    let inputs = json!({"tag": tag, "x": rng.below(1_000_000), "text": blob(rng)});
    let output = json!({"y": rng.below(1_000_000), "tag": tag});
    let body = json!({"model": model, "inputs": inputs, "output": output, "evaluation_run_id": run_id});
    let out = send(ctx.v2("/predictions", &body)).await;
    let mut l = ctx.ledger.lock().unwrap();
    let go = ctx.book(&mut l, "create prediction", &out, |t| &mut t.prediction);
    if let Outcome::Acked(_) = out {
        match id_of(&out, "prediction_id") {
            Some(id) => l.predictions.push(PredExp { id, run_id, model, inputs, output }),
            None => l.rejected.push("create prediction: 2xx without a prediction_id".into()),
        }
    }
    go
}

async fn score(ctx: &Ctx, rng: &mut Rng, tag: &str) -> bool {
    let pred = {
        let l = ctx.ledger.lock().unwrap();
        (!l.predictions.is_empty()).then(|| {
            let p = &l.predictions[rng.below(l.predictions.len() as u64) as usize];
            (p.id.clone(), p.run_id.clone())
        })
    };
    let Some((prediction_id, run_id)) = pred else { return predict(ctx, rng, tag).await };
    let scorer = format!("weave:///acme/proj/object/Scorer{}:v1", rng.below(3));
    // Multiples of 1/8: exact in binary, so the value read back must be equal.
    let value = rng.below(80) as f64 / 8.0;
    let out =
        send(ctx.v2("/scores", &json!({"prediction_id": prediction_id, "scorer": scorer, "value": value})))
            .await;
    let mut l = ctx.ledger.lock().unwrap();
    let go = ctx.book(&mut l, "create score", &out, |t| &mut t.score);
    if let Outcome::Acked(_) = out {
        match id_of(&out, "score_id") {
            Some(id) => l.scores.push(ScoreExp { id, prediction_id, run_id, scorer, value }),
            None => l.rejected.push("create score: 2xx without a score_id".into()),
        }
    }
    go
}

const STARTED_AT: &str = "2026-01-01T00:00:00.000001Z";
const ENDED_AT: &str = "2026-01-01T00:00:01.5Z";

fn start_item(id: &str, trace: &str, parent: Option<&str>, op: &str, inputs: &Value) -> Value {
    json!({"mode": "start", "req": {"start": {"project_id": PROJECT, "id": id, "trace_id": trace,
        "parent_id": parent, "op_name": op, "started_at": STARTED_AT, "attributes": {"crash": true},
        "inputs": inputs}}})
}

fn end_item(id: &str, output: &Value, exception: Option<&str>) -> Value {
    json!({"mode": "end", "req": {"end": {"project_id": PROJECT, "id": id, "ended_at": ENDED_AT,
        "exception": exception, "output": output, "summary": {}}}})
}

async fn upsert(ctx: &Ctx, rng: &mut Rng, tag: &str) -> bool {
    let mut items = Vec::new();
    let mut started = Vec::new();
    let root = format!("{tag}-0");
    for i in 0..1 + rng.below(4) {
        let id = format!("{tag}-{i}");
        let parent = (i > 0).then_some(root.as_str());
        let op = format!("weave:///acme/proj/op/crash_step{}:v1", rng.below(3));
        let inputs = json!({"i": i, "text": blob(rng)});
        items.push(start_item(&id, tag, parent, &op, &inputs));
        let end = (rng.below(4) != 0).then(|| json!({"out": rng.below(1000), "tag": tag}));
        if let Some(output) = &end {
            items.push(end_item(&id, output, None));
        }
        started.push((id, op, inputs, end));
    }
    // End some calls an earlier acknowledged batch started.
    let mut ended = Vec::new();
    {
        let mut l = ctx.ledger.lock().unwrap();
        for _ in 0..rng.below(3) {
            if l.open_calls.is_empty() {
                break;
            }
            let at = rng.below(l.open_calls.len() as u64) as usize;
            let id = l.open_calls.swap_remove(at);
            let output = json!({"late": rng.below(1000), "tag": tag});
            let exception = (rng.below(5) == 0).then(|| "boom".to_string());
            items.push(end_item(&id, &output, exception.as_deref()));
            if let Some(c) = l.calls.get_mut(&id) {
                c.end = Some((output.clone(), exception));
            }
            ended.push((id, output));
        }
    }
    let out = send(ctx.v1("/call/upsert_batch", &json!({"batch": items}))).await;
    let mut l = ctx.ledger.lock().unwrap();
    let go = ctx.book(&mut l, "upsert batch", &out, |t| &mut t.upsert);
    match out {
        Outcome::Acked(_) => {
            for (id, op_name, inputs, end) in started {
                let end_acked = end.is_some();
                if end.is_none() {
                    l.open_calls.push(id.clone());
                }
                let parent_id = (id != root).then(|| root.clone());
                let end = end.map(|o| (o, None));
                let call = CallExp { trace_id: tag.to_string(), parent_id, op_name, inputs, end, end_acked };
                l.calls.insert(id, call);
            }
            for (id, _) in &ended {
                if let Some(c) = l.calls.get_mut(id) {
                    c.end_acked = true;
                }
            }
        }
        Outcome::Lost(_) => l.lost_batches.push(LostBatch { started, ended }),
        Outcome::Rejected(_) => {}
    }
    go
}

/// One client task: writes until the server goes away or the cycle's budget is spent.
async fn client_task(ctx: Arc<Ctx>, seed: u64, prefix: String) {
    let mut rng = Rng::new(seed);
    for n in 0.. {
        if ctx.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_err() {
            return;
        }
        let tag = format!("{prefix}n{n}");
        let go = match rng.below(20) {
            0..=4 => create_run(&ctx, &mut rng, &tag).await,
            5..=7 => finish_run(&ctx, &mut rng, &tag).await,
            8..=11 => predict(&ctx, &mut rng, &tag).await,
            12..=14 => score(&ctx, &mut rng, &tag).await,
            _ => upsert(&ctx, &mut rng, &tag).await,
        };
        if !go {
            return;
        }
    }
}

// ------------------------------------------------------------------------------ checks

/// Runs `PRAGMA integrity_check` on a copy of the database files as the kill left them (the
/// server then recovers the originals itself); returns the check's rows.
fn integrity_check(data_dir: &Path) -> Vec<String> {
    if skip_on_clickhouse("the integrity check reads the SQLite file") {
        return vec!["ok".to_string()];
    }
    let copy = tempfile::tempdir().expect("tempdir");
    for name in ["weft.db", "weft.db-wal"] {
        let from = data_dir.join(name);
        if from.exists() {
            std::fs::copy(&from, copy.path().join(name)).expect("copy database file");
        }
    }
    let conn = rusqlite::Connection::open(copy.path().join("weft.db")).expect("open database copy");
    let mut stmt = conn.prepare("PRAGMA integrity_check").expect("prepare");
    let rows: Vec<String> =
        stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").map(|r| r.expect("row")).collect();
    rows
}

async fn get_jsonl(client: &reqwest::Client, key: &str, url: String) -> Vec<Value> {
    let resp = client.get(url).basic_auth("api", Some(key)).send().await.expect("list request");
    let status = resp.status();
    let text = resp.text().await.expect("list body");
    assert_eq!(status, 200, "list failed: {text}");
    text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

/// Collects the problems found: what the ledger says must be there and is not, or is wrong.
async fn verify(s: &Server, l: &Ledger) -> Vec<String> {
    let mut bad = Vec::new();
    let base = format!("{}/v2/{PROJECT}", s.base);

    // Runs: every acknowledged create listed once, with its refs; every acknowledged finish
    // completed with its summary; nothing that was never sent.
    let rows = get_jsonl(&s.client, &s.key, format!("{base}/evaluation_runs")).await;
    let mut listed: HashMap<String, Value> = HashMap::new();
    for row in rows {
        let id = row["evaluation_run_id"].as_str().unwrap_or_default().to_string();
        if listed.insert(id.clone(), row).is_some() {
            bad.push(format!("run {id} listed twice"));
        }
    }
    if listed.len() as u64 > l.tally.create.sent {
        bad.push(format!("{} runs listed but only {} creates sent", listed.len(), l.tally.create.sent));
    }
    for r in &l.runs {
        let Some(row) = listed.get(&r.id) else {
            bad.push(format!("acknowledged run {} missing", r.id));
            continue;
        };
        if row["evaluation"] != r.evaluation.as_str() || row["model"] != r.model.as_str() {
            bad.push(format!("run {} has other refs: {row}", r.id));
        }
        match &r.summary {
            Some(summary) => {
                if row["status"] != "completed" || row["finished_at"].is_null() {
                    bad.push(format!("acknowledged finish of run {} not recorded: {}", r.id, row["status"]));
                }
                for (k, v) in summary.as_object().unwrap() {
                    if &row["summary"][k] != v {
                        bad.push(format!("run {} summary[{k}] is {}, expected {v}", r.id, row["summary"][k]));
                    }
                }
            }
            None if !r.finish_sent && row["status"] != "running" => {
                bad.push(format!("run {} never finished but is {}", r.id, row["status"]));
            }
            None => {}
        }
    }

    // Predictions and scores: every acknowledged one readable with what was sent.
    let preds = get_jsonl(&s.client, &s.key, format!("{base}/predictions")).await;
    let preds: HashMap<String, Value> =
        preds.into_iter().map(|p| (p["prediction_id"].as_str().unwrap_or_default().to_string(), p)).collect();
    if preds.len() as u64 > l.tally.prediction.sent {
        bad.push(format!("{} predictions listed, {} sent", preds.len(), l.tally.prediction.sent));
    }
    for p in &l.predictions {
        match preds.get(&p.id) {
            None => bad.push(format!("acknowledged prediction {} missing", p.id)),
            Some(row) => {
                let want = json!({"model": p.model, "inputs": p.inputs, "output": p.output,
                    "evaluation_run_id": p.run_id});
                for k in ["model", "inputs", "output", "evaluation_run_id"] {
                    if row[k] != want[k] {
                        bad.push(format!("prediction {} {k} is {}, expected {}", p.id, row[k], want[k]));
                    }
                }
            }
        }
    }
    let scores = get_jsonl(&s.client, &s.key, format!("{base}/scores")).await;
    let scores: HashMap<String, Value> =
        scores.into_iter().map(|x| (x["score_id"].as_str().unwrap_or_default().to_string(), x)).collect();
    if scores.len() as u64 > l.tally.score.sent {
        bad.push(format!("{} scores listed, {} sent", scores.len(), l.tally.score.sent));
    }
    for x in &l.scores {
        match scores.get(&x.id) {
            None => bad.push(format!("acknowledged score {} (of {}) missing", x.id, x.prediction_id)),
            Some(row) => {
                if row["value"].as_f64() != Some(x.value)
                    || row["scorer"] != x.scorer.as_str()
                    || row["evaluation_run_id"] != x.run_id.as_str()
                {
                    bad.push(format!("score {} is {row}, expected {} from {}", x.id, x.value, x.scorer));
                }
            }
        }
    }
    // A score is read back one by one too (the single-item read path).
    if let Some(x) = l.scores.last() {
        let (status, v) =
            status_json(s.client.get(format!("{base}/scores/{}", x.id)).basic_auth("api", Some(&s.key)))
                .await;
        if status != 200 || v["value"].as_f64() != Some(x.value) {
            bad.push(format!("GET score {}: {status} {v}", x.id));
        }
    }

    // Upserted calls, by id.
    let mut wanted: Vec<String> = l.calls.keys().cloned().collect();
    for b in &l.lost_batches {
        wanted.extend(b.started.iter().map(|s| s.0.clone()));
    }
    let mut found: HashMap<String, Value> = HashMap::new();
    for chunk in wanted.chunks(500) {
        let body = json!({"project_id": PROJECT, "filter": {"call_ids": chunk}});
        let resp = s
            .client
            .post(format!("{}/calls/stream_query", s.base))
            .basic_auth("api", Some(&s.key))
            .body(body.to_string())
            .send()
            .await
            .expect("stream_query");
        let status = resp.status();
        let text = resp.text().await.expect("stream_query body");
        assert_eq!(status, 200, "stream_query: {text}");
        for line in text.lines() {
            let c: Value = serde_json::from_str(line).expect("JSON line");
            let id = c["id"].as_str().unwrap_or_default().to_string();
            if found.insert(id.clone(), c).is_some() {
                bad.push(format!("call {id} returned twice"));
            }
        }
    }
    for (id, want) in &l.calls {
        let Some(c) = found.get(id) else {
            bad.push(format!("acknowledged call {id} missing"));
            continue;
        };
        if c["op_name"] != want.op_name.as_str()
            || c["trace_id"] != want.trace_id.as_str()
            || c["parent_id"].as_str() != want.parent_id.as_deref()
            || c["inputs"] != want.inputs
            || c["attributes"]["crash"] != true
        {
            bad.push(format!("call {id} start differs: {}", c["op_name"]));
        }
        match (&want.end, want.end_acked) {
            (Some((output, exception)), true) => {
                if &c["output"] != output
                    || c["ended_at"].is_null()
                    || c["exception"].as_str() != exception.as_deref()
                {
                    bad.push(format!("call {id}: acknowledged end not recorded: output {}", c["output"]));
                }
            }
            // An end that was sent in a batch whose answer was lost: checked with the batch.
            (Some(_), false) => {}
            (None, _) => {
                if !c["ended_at"].is_null() {
                    bad.push(format!("call {id} ended though no end was sent"));
                }
            }
        }
    }
    // A batch is one transaction: after a crash it is there whole or not at all.
    for b in &l.lost_batches {
        let present = b.started.iter().filter(|s| found.contains_key(&s.0)).count();
        if present != 0 && present != b.started.len() {
            bad.push(format!("batch of {} calls half applied: {present} stored", b.started.len()));
            continue;
        }
        let applied = present != 0;
        for (id, op, inputs, end) in &b.started {
            if let Some(c) = found.get(id)
                && (c["op_name"] != op.as_str()
                    || &c["inputs"] != inputs
                    || c["output"] != end.clone().unwrap_or(Value::Null))
            {
                bad.push(format!("call {id} of a lost batch stored wrong: {}", c["output"]));
            }
        }
        for (id, output) in &b.ended {
            let Some(c) = found.get(id) else { continue };
            let ended_here = &c["output"] == output;
            if ended_here != applied {
                bad.push(format!(
                    "call {id}: end in a batch {} but its output is {}",
                    if applied { "applied" } else { "not applied" },
                    c["output"]
                ));
            }
        }
    }
    bad
}

// ------------------------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let cycles = env_u64("WEFT_CRASH_CYCLES", 3);
    let max_ms = env_u64("WEFT_CRASH_MAX_MS", 1500).max(100);
    let seed = env_u64(
        "WEFT_CRASH_SEED",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    );
    println!("crash: {cycles} cycles, kills within {max_ms} ms, seed {seed}");
    let mut rng = Rng::new(seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = Server::start();
    let key = server.key.clone();
    assert!(!key.is_empty(), "the first start prints the admin key");
    let started = Instant::now();
    let mut restart_ms = Vec::new();

    for cycle in 0..cycles {
        let ctx = Arc::new(Ctx {
            client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            base: server.base.clone(),
            key: key.clone(),
            ledger: ledger.clone(),
            killing: AtomicBool::new(false),
            budget: std::sync::atomic::AtomicU64::new(MAX_WRITES_PER_CYCLE),
        });
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| tokio::spawn(client_task(ctx.clone(), rng.next_u64(), format!("c{cycle}t{t}"))))
            .collect();
        // A random moment: anywhere from the first requests to well into the load.
        let delay = Duration::from_millis(rng.below(max_ms) + 1);
        tokio::time::sleep(delay).await;
        ctx.killing.store(true, Ordering::SeqCst);
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reap");
        for t in tasks {
            t.await.expect("client task");
        }

        let rows = integrity_check(&server.data_dir());
        assert_eq!(rows, vec!["ok".to_string()], "cycle {cycle}: integrity_check after SIGKILL");

        let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
        let t0 = Instant::now();
        let restarted = Server::start_in(dir);
        restart_ms.push(t0.elapsed().as_millis());
        drop(std::mem::replace(&mut server, restarted));
        server.key = key.clone();

        // The clients are done: take the ledger out to check it (no lock held across awaits).
        let l = std::mem::take(&mut *ledger.lock().unwrap());
        assert!(l.rejected.is_empty(), "valid writes refused: {:?}", &l.rejected[..l.rejected.len().min(5)]);
        assert!(
            l.unexpected.is_empty(),
            "transport errors before any kill: {:?}",
            &l.unexpected[..l.unexpected.len().min(5)]
        );
        let bad = verify(&server, &l).await;
        assert!(
            bad.is_empty(),
            "cycle {cycle} (killed after {delay:?}): {} problems, first: {:#?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
        let acked: u64 = l.tally.all().iter().map(|(_, c)| c.acked).sum();
        println!(
            "crash: cycle {cycle}: killed after {} ms, {acked} acknowledged writes so far, all present",
            delay.as_millis()
        );
        *ledger.lock().unwrap() = l;
    }

    // A clean stop after the last recovery leaves a sound database too.
    assert!(server.terminate(), "clean shutdown after the last restart");
    assert_eq!(integrity_check(&server.data_dir()), vec!["ok".to_string()]);

    let l = ledger.lock().unwrap();
    let t = l.tally;
    let acked: u64 = t.all().iter().map(|(_, c)| c.acked).sum();
    let lost: u64 = t.all().iter().map(|(_, c)| c.lost).sum();
    assert!(t.create.acked > 0 && acked > cycles, "the load ran: {acked} acknowledged writes");
    let calls_acked = l.calls.len();
    let ends_acked = l.calls.values().filter(|c| c.end_acked).count();
    println!(
        "crash: {cycles} SIGKILLs survived in {:.1} s; writes sent {}, acknowledged {acked} \
         (all present and correct), answer lost in the kill {lost}; restart median {} ms",
        started.elapsed().as_secs_f64(),
        t.all().iter().map(|(_, c)| c.sent).sum::<u64>(),
        median(&mut restart_ms),
    );
    for (name, c) in t.all() {
        println!("crash:   {name}: sent {}, acknowledged {}, lost in the kill {}", c.sent, c.acked, c.lost);
    }
    println!(
        "crash:   upserted calls acknowledged {calls_acked} ({ends_acked} ended); batches with \
         a lost answer {} (each all-or-nothing)",
        l.lost_batches.len()
    );
    let distinct: HashSet<&str> = l.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(distinct.len(), l.runs.len(), "run ids are unique");
}

fn median(v: &mut [u128]) -> u128 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}
