//! The data: one deterministic generator of the calls every store holds, and the bulk fill of
//! weft's stores.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft::domain::call::{Call, Micros, format_time};
use weft::domain::eval_run::aggregate;
use weft::domain::refs::method_op;
use weft::domain::store::Store;

use crate::format::thousands;

/// Start of the generated timeline: 2025-01-01T00:00:00Z.
const BASE: Micros = 1_735_689_600_000_000;
/// Bump when the generated data changes (invalidates cached reference stores).
pub(crate) const GEN_VERSION: u32 = 1;
pub(crate) const SEED: u64 = 0x5eed_0000_0000_0001;
pub(crate) const MAIN: &str = "bench/evals";
const OTHERS: [&str; 4] = ["bench/other-a", "bench/other-b", "bench/other-c", "bench/other-d"];
pub(crate) const WRITES: &str = "bench/writes";
const USER: &str = "dXNlcg==";
pub(crate) const EVALS: usize = 20;
pub(crate) const MODELS: usize = 50;
const SCORERS: [&str; 2] = ["ExactMatch", "Fuzzy"];
const PREDICTIONS: usize = 3;

/// splitmix64: small, fast, deterministic.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn r4(&mut self) -> f64 {
        (self.unit() * 10_000.0).round() / 10_000.0
    }
    fn bytes10(&mut self) -> [u8; 10] {
        let a = self.next().to_le_bytes();
        let b = self.next().to_le_bytes();
        [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]]
    }
}

/// 43 alphanumerics derived from `s`, shaped like a weave object digest.
fn digest(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let seed = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let mut rng = Rng(seed);
    (0..43).map(|_| ALPHABET[rng.below(ALPHABET.len())] as char).collect()
}

pub(crate) fn object_ref(project: &str, name: &str) -> String {
    format!("weave:///{project}/object/{name}:{}", digest(&format!("{project}/{name}")))
}

/// A UUIDv7 for time `t`, random bits from `rng`.
fn uuid_at(t: Micros, rng: &mut Rng) -> String {
    uuid::Builder::from_unix_timestamp_millis((t / 1000) as u64, &rng.bytes10()).into_uuid().to_string()
}

/// Times never fall on a whole second: Python's isoformat drops a zero fraction, and the
/// reference sorts its text.
fn nz(t: Micros) -> Micros {
    if t % 1_000_000 == 0 { t + 1 } else { t }
}

fn new_call(project: &str, id: String, op: &str, at: Micros) -> Call {
    let mut c = Call::new(project, op, nz(at));
    c.trace_id = id.clone();
    c.id = id;
    c.wb_user_id = Some(USER.into());
    c
}

/// The ~300-byte summary a finished run carries.
pub(crate) fn run_summary(rng: &mut Rng, dataset: &str) -> Value {
    json!({
        "accuracy": rng.r4(), "f1": rng.r4(), "precision": rng.r4(), "recall": rng.r4(),
        "n_examples": 100 + rng.below(400), "n_errors": rng.below(5),
        "latency_ms": {"p50": 200.0 + (rng.unit() * 6000.0).round() / 10.0,
                       "p95": 900.0 + (rng.unit() * 9000.0).round() / 10.0,
                       "p99": 1800.0 + (rng.unit() * 9000.0).round() / 10.0},
        "cost_usd": rng.r4(), "tokens": {"prompt": 10_000 + rng.below(200_000), "completion": 1_000 + rng.below(50_000)},
        "dataset": dataset,
        "tags": ["nightly", "bench"],
    })
}

/// What the workloads need to know about the generated data.
pub(crate) struct Data {
    /// Runs in the main project.
    pub(crate) n: usize,
    /// Ids of the main project's runs, in list order.
    pub(crate) ids: Vec<String>,
    /// Model refs of the main project.
    pub(crate) models: Vec<String>,
    /// Calls written, all projects.
    pub(crate) calls: usize,
    /// Mean size of a finished run's stored summary.
    pub(crate) summary_bytes: usize,
}

/// Console progress bar on stderr.
pub(crate) struct Progress {
    label: String,
    total: usize,
    done: usize,
    start: Instant,
    last: Instant,
}

impl Progress {
    pub(crate) fn new(label: &str, total: usize) -> Progress {
        let now = Instant::now();
        let p = Progress { label: label.into(), total, done: 0, start: now, last: now };
        p.draw();
        p
    }
    fn tick(&mut self) {
        self.done += 1;
        if self.last.elapsed() >= Duration::from_millis(200) {
            self.last = Instant::now();
            self.draw();
        }
    }
    fn draw(&self) {
        let frac = self.done as f64 / self.total.max(1) as f64;
        let width = 30;
        let fill = (frac * width as f64) as usize;
        eprint!(
            "\r  {:<34} [{}{}] {:>3.0}% {}/{} runs {:.1} s ",
            self.label,
            "#".repeat(fill),
            " ".repeat(width - fill),
            frac * 100.0,
            self.done,
            self.total,
            self.start.elapsed().as_secs_f64()
        );
    }
    pub(crate) fn finish(&self, calls: usize) -> f64 {
        self.draw();
        let secs = self.start.elapsed().as_secs_f64();
        eprintln!("({:.0} calls/s)", calls as f64 / secs);
        secs
    }
}

/// Generates the whole data set for `n` runs, handing each call to `sink`.
pub(crate) fn generate(n: usize, progress: &mut Progress, sink: &mut dyn FnMut(Call)) -> Data {
    let mut rng = Rng(SEED);
    let mut data = Data { n, ids: Vec::with_capacity(n), models: Vec::new(), calls: 0, summary_bytes: 0 };
    let mut summaries = (0usize, 0usize);
    let other = n / 10 / OTHERS.len();
    let projects = std::iter::once((MAIN, n)).chain(OTHERS.iter().map(|p| (*p, other)));
    for (project, runs) in projects {
        let evals: Vec<String> = (0..EVALS).map(|i| object_ref(project, &format!("Eval{i}"))).collect();
        let models: Vec<String> = (0..MODELS).map(|i| object_ref(project, &format!("Model{i}"))).collect();
        let scorers: Vec<String> = SCORERS.iter().map(|s| object_ref(project, s)).collect();
        let dataset = object_ref(project, "Dataset");
        if project == MAIN {
            data.models = models.clone();
        }
        let mut emit = |c: Call| {
            data.calls += 1;
            sink(c);
        };
        for i in 0..runs {
            let t0 = BASE + i as i64 * 10_000 + 1 + rng.below(9_998) as i64;
            let eval = &evals[rng.below(EVALS)];
            let model = &models[rng.below(MODELS)];
            let run_id = uuid_at(t0, &mut rng);
            if project == MAIN {
                data.ids.push(run_id.clone());
            }
            let mut run = new_call(project, run_id.clone(), "Evaluation.evaluate", t0);
            run.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": eval, "model": model}});
            run.inputs = json!({"self": eval, "model": model});
            let mut children = Vec::new();
            if rng.below(3) == 0 {
                let mut t = t0;
                let mut outputs = Vec::new();
                for k in 0..PREDICTIONS {
                    t = nz(t + 1_000 + rng.below(999) as i64);
                    let (a, b) = (rng.below(100), rng.below(100));
                    let example = json!({"id": format!("ex-{k}"), "question": format!("What is {a} + {b}?"), "expected": (a + b).to_string()});
                    let correct = rng.below(4) != 0;
                    let answer = if correct { (a + b).to_string() } else { (a + b + 1).to_string() };
                    let mut pas = new_call(project, uuid_at(t, &mut rng), "Evaluation.predict_and_score", t);
                    pas.trace_id = run_id.clone();
                    pas.parent_id = Some(run_id.clone());
                    pas.inputs = json!({"self": eval, "model": model, "example": example});
                    let p_start = nz(t + 10);
                    let latency = 50_000 + rng.below(450_000) as i64;
                    let p_end = nz(p_start + latency);
                    let op = method_op(model, "Model", "predict");
                    let mut predict = new_call(project, uuid_at(p_start, &mut rng), &op, p_start);
                    predict.trace_id = run_id.clone();
                    predict.parent_id = Some(pas.id.clone());
                    predict.attributes =
                        json!({"weave": {"prediction": "true", "model": model, "evaluation_run_id": run_id}});
                    predict.inputs = example.clone();
                    predict.output = Some(json!(answer));
                    predict.ended_at = Some(p_end);
                    predict.summary = Some(json!({}));
                    let mut scores = serde_json::Map::new();
                    let mut score_calls = Vec::new();
                    for (s, scorer) in scorers.iter().enumerate() {
                        let value = if s == 0 { if correct { 1.0 } else { 0.0 } } else { rng.r4() };
                        scores.insert(SCORERS[s].to_string(), json!(value));
                        let at = nz(p_end + 1 + s as i64 * 3);
                        let op = method_op(scorer, "Scorer", "score");
                        let mut score = new_call(project, uuid_at(at, &mut rng), &op, at);
                        score.trace_id = run_id.clone();
                        score.parent_id = Some(pas.id.clone());
                        score.attributes = json!({"weave": {"score": "true", "prediction_id": predict.id,
                            "scorer": scorer, "evaluation_run_id": run_id}});
                        score.inputs = json!({"self": scorer, "output": answer, "inputs": example});
                        score.output = Some(json!(value));
                        score.ended_at = Some(nz(at + 1));
                        score.summary = Some(json!({}));
                        score_calls.push(score);
                    }
                    t = nz(p_end + 10);
                    let out = json!({"output": answer, "scores": scores,
                        "model_latency": {"mean": latency as f64 / 1e6}});
                    outputs.push(out.clone());
                    pas.output = Some(out);
                    pas.ended_at = Some(t);
                    pas.summary = Some(json!({}));
                    children.push(pas);
                    children.push(predict);
                    children.extend(score_calls);
                }
                let means = aggregate(&outputs);
                let at = nz(t + 5);
                let mut summarize = new_call(project, uuid_at(at, &mut rng), "Evaluation.summarize", at);
                summarize.trace_id = run_id.clone();
                summarize.parent_id = Some(run_id.clone());
                summarize.inputs = json!({"self": eval});
                summarize.output = Some(means.clone());
                summarize.ended_at = Some(nz(at + 1));
                summarize.summary = Some(json!({}));
                children.push(summarize);
                let summary = run_summary(&mut rng, &dataset);
                summaries.0 += summary.to_string().len();
                summaries.1 += 1;
                run.ended_at = Some(nz(at + 2));
                run.output = Some(means);
                run.summary = Some(summary);
            }
            emit(run);
            for c in children {
                emit(c);
            }
            progress.tick();
        }
    }
    data.summary_bytes = summaries.0 / summaries.1.max(1);
    data
}

pub(crate) fn total_runs(n: usize) -> usize {
    n + n / 10 / OTHERS.len() * OTHERS.len()
}

/// Fills a weft store through the library's bulk path (one write job per 20,000 calls);
/// returns the data and seconds.
pub(crate) fn fill_weft(store: &dyn Store, label: &str, n: usize) -> Result<(Data, f64), String> {
    const TXN: usize = 20_000;
    let mut failed = None;
    let mut flush = |buf: &mut Vec<Call>| {
        let calls = std::mem::take(buf);
        if failed.is_some() || calls.is_empty() {
            return;
        }
        let written = weft::domain::store::write(store, move |w| {
            // One look-up of the batch's ids per project instead of one per call on a store
            // that pays a round trip per look-up (ClickHouse); nothing on SQLite.
            let mut ids: HashMap<&str, Vec<String>> = HashMap::new();
            for c in &calls {
                ids.entry(&c.project_id).or_default().push(c.id.clone());
            }
            for (project, ids) in &ids {
                w.prefetch_calls(project, ids)?;
            }
            for c in &calls {
                w.insert_call(c)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            failed = Some(format!("bulk write: {e}"));
        }
    };
    let mut buf = Vec::with_capacity(TXN);
    let mut progress = Progress::new(&format!("{label}, N={}", thousands(n as f64)), total_runs(n));
    let data = generate(n, &mut progress, &mut |c| {
        buf.push(c);
        if buf.len() >= TXN {
            flush(&mut buf);
        }
    });
    flush(&mut buf);
    let secs = progress.finish(data.calls);
    match failed {
        Some(e) => Err(e),
        None => Ok((data, secs)),
    }
}

pub(crate) fn call_json(c: &Call) -> Value {
    json!({
        "project_id": c.project_id, "id": c.id, "trace_id": c.trace_id, "parent_id": c.parent_id,
        "op_name": c.op_name, "display_name": c.display_name,
        "started_at": format_time(c.started_at), "ended_at": c.ended_at.map(format_time),
        "exception": c.exception, "attributes": c.attributes, "inputs": c.inputs,
        "output": c.output, "summary": c.summary, "wb_user_id": c.wb_user_id,
    })
}
