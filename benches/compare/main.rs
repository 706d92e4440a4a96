//! Side-by-side benchmark of weft and the reference implementation (Weave's own SQLite trace
//! server over HTTP): same data, same requests, same run. Prints a table and writes it to
//! `docs/benchmarks.md`.
//!
//! ```sh
//! cargo bench --bench compare                       # N = 10k and 100k, reference up to 100k
//! cargo bench --bench compare -- --runs 1000000     # add a 1M-run store (weft only by default)
//! cargo bench --bench compare -- --smoke            # N = 200, a few requests (CI)
//! cargo bench --bench compare -- --clickhouse       # add a column: weft on ClickHouse
//! ```
//!
//! Options: `--runs N[,N...]`, `--ref-max N` (largest N the reference is run on),
//! `--out FILE` (default `docs/benchmarks.md`; smoke mode writes only when given),
//! `--refserver DIR` (or `REFSERVER_DIR`: the reference server's directory, holding
//! `refserver.py` and `setup.sh`), `--no-ref`. The reference runs in the Python virtualenv
//! `REFSERVER_VENV` (default `target/refserver-venv`, as the test script uses), made by its
//! `setup.sh` when missing. `--keep DIR` makes weft's stores in `DIR/weft-<N>` and keeps them
//! (with an admin key in `DIR/weft-<N>.key`), e.g. to profile a workload by hand afterwards.
//! Without a usable reference, weft runs alone and the table says so.
//!
//! `--clickhouse` (off by default) adds a third server: weft with `--store clickhouse` on
//! ClickHouse run in-process by chdb behind the Python HTTP front of the test tree
//! (`scripts/clickhouse-front`, which makes its virtualenv when missing). The bench starts the
//! front itself on a fresh data directory and stops it at the end; each N gets a fresh
//! database. `--clickhouse-max N` is the largest N run on ClickHouse (default 100,000, where
//! its part takes about two minutes on two cores, most of it the bulk load at about 6,000
//! calls/s). The report labels the column as such: it measures weft's ClickHouse backend on
//! that harness, whose Python HTTP layer sits in every query's path, not on a production
//! ClickHouse server. Its "server CPU" is weft's and the front's processes together; its RSS
//! is weft's process alone.
//!
//! Data: one generator (deterministic) fills every store with the same calls: N evaluation
//! runs in one project (20 evaluations, 50 models), a third of them finished with three
//! predictions of two scores each and a ~300-byte summary, plus N/10 runs spread over four
//! other projects. weft's stores (SQLite, and ClickHouse when asked) are filled through the
//! library's bulk path (large write jobs); the reference's through weave's own
//! `calls_complete` / `call_start`, by `seed_reference.py` (reference stores are cached under
//! `target/bench-cache`).
//!
//! Workloads, each against one server at a time, from an in-process client over loopback:
//!
//! 1. full list stream;
//! 2. filtered page (two models, limit 100) at concurrency 1 and 16;
//! 3. deep page (offset N/2);
//! 4. lookup of 100 ids;
//! 5. create + finish of runs at concurrency 16, `call/upsert_batch` ingestion, and
//!    `call/start` + `call/end` one call at a time;
//! 6. cold start (process start to first answered list request) and binary size.
//!
//! Server RSS and CPU time come from `/proc/<pid>`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft::domain::call::{Call, Micros, format_time};
use weft::domain::eval_run::aggregate;
use weft::domain::refs::method_op;
use weft::store::Store;
use weft::store::clickhouse::ClickHouseStore;
use weft::store::clickhouse::client::{Client, Config, Query};
use weft::store::sqlite::SqliteStore;

// ---------------------------------------------------------------------------------- options

const USAGE: &str = "usage: cargo bench --bench compare -- [--runs N[,N...]] [--ref-max N] [--smoke] \
     [--out FILE] [--refserver DIR] [--no-ref] [--keep DIR] [--clickhouse] [--clickhouse-max N]";

struct Args {
    runs: Vec<usize>,
    ref_max: usize,
    smoke: bool,
    out: Option<PathBuf>,
    refserver: Option<PathBuf>,
    no_ref: bool,
    keep: Option<PathBuf>,
    /// Also run weft on ClickHouse (the chdb test front).
    clickhouse: bool,
    /// Largest N run on ClickHouse.
    clickhouse_max: usize,
    /// The options as given, for the "produced by" line.
    given: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runs: Vec::new(),
        ref_max: 100_000,
        smoke: false,
        out: None,
        refserver: std::env::var_os("REFSERVER_DIR").map(PathBuf::from),
        no_ref: false,
        keep: None,
        clickhouse: false,
        clickhouse_max: 100_000,
        given: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    let number = |s: &str| -> Result<usize, String> {
        s.replace('_', "").parse::<usize>().map_err(|_| format!("not a number: {s}"))
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--bench" => continue, // passed by `cargo bench`
            "--runs" => {
                let v = value("--runs")?;
                a.runs = v.split(',').map(number).collect::<Result<_, _>>()?;
                a.given.extend([arg.clone(), v]);
            }
            "--ref-max" => {
                let v = value("--ref-max")?;
                a.ref_max = number(&v)?;
                a.given.extend([arg.clone(), v]);
            }
            "--out" => {
                let v = value("--out")?;
                a.out = Some(PathBuf::from(&v));
                a.given.extend([arg.clone(), v]);
            }
            "--refserver" => {
                a.refserver = Some(PathBuf::from(value("--refserver")?));
                a.given.extend([arg.clone(), "<dir>".into()]);
            }
            "--smoke" => {
                a.smoke = true;
                a.given.push(arg);
            }
            "--no-ref" => {
                a.no_ref = true;
                a.given.push(arg);
            }
            "--keep" => {
                a.keep = Some(PathBuf::from(value("--keep")?));
                a.given.extend([arg.clone(), "<dir>".into()]);
            }
            "--clickhouse" => {
                a.clickhouse = true;
                a.given.push(arg);
            }
            "--clickhouse-max" => {
                let v = value("--clickhouse-max")?;
                a.clickhouse_max = number(&v)?;
                a.given.extend([arg.clone(), v]);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if a.runs.is_empty() {
        a.runs = if a.smoke { vec![200] } else { vec![10_000, 100_000] };
    }
    if a.runs.iter().any(|&n| n < 100) {
        return Err("--runs: at least 100 runs per store".into());
    }
    Ok(a)
}

/// How many requests each workload sends: bounded in count and in time.
#[derive(Clone, Copy)]
struct Budget {
    time: Duration,
    max: usize,
    min: usize,
}

struct Plan {
    latency: Budget,
    list: Budget,
    writes: Budget,
    cold_weft: usize,
    cold_ref: usize,
}

impl Plan {
    fn new(smoke: bool) -> Plan {
        let s = Duration::from_secs_f64;
        if smoke {
            Plan {
                latency: Budget { time: s(0.2), max: 200, min: 3 },
                list: Budget { time: s(1.0), max: 2, min: 1 },
                writes: Budget { time: s(0.3), max: 2_000, min: 2 },
                cold_weft: 1,
                cold_ref: 1,
            }
        } else {
            Plan {
                latency: Budget { time: s(3.0), max: 5_000, min: 5 },
                list: Budget { time: s(20.0), max: 7, min: 1 },
                writes: Budget { time: s(4.0), max: 100_000, min: 2 },
                cold_weft: 5,
                cold_ref: 2,
            }
        }
    }
}

// -------------------------------------------------------------------------------- the data

/// Start of the generated timeline: 2025-01-01T00:00:00Z.
const BASE: Micros = 1_735_689_600_000_000;
/// Bump when the generated data changes (invalidates cached reference stores).
const GEN_VERSION: u32 = 1;
const SEED: u64 = 0x5eed_0000_0000_0001;
const MAIN: &str = "bench/evals";
const OTHERS: [&str; 4] = ["bench/other-a", "bench/other-b", "bench/other-c", "bench/other-d"];
const WRITES: &str = "bench/writes";
const USER: &str = "dXNlcg==";
const EVALS: usize = 20;
const MODELS: usize = 50;
const SCORERS: [&str; 2] = ["ExactMatch", "Fuzzy"];
const PREDICTIONS: usize = 3;

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
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

fn object_ref(project: &str, name: &str) -> String {
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
fn run_summary(rng: &mut Rng, dataset: &str) -> Value {
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
struct Data {
    /// Runs in the main project.
    n: usize,
    /// Ids of the main project's runs, in list order.
    ids: Vec<String>,
    /// Model refs of the main project.
    models: Vec<String>,
    /// Calls written, all projects.
    calls: usize,
    /// Mean size of a finished run's stored summary.
    summary_bytes: usize,
}

/// Console progress bar on stderr.
struct Progress {
    label: String,
    total: usize,
    done: usize,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new(label: &str, total: usize) -> Progress {
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
    fn finish(&self, calls: usize) -> f64 {
        self.draw();
        let secs = self.start.elapsed().as_secs_f64();
        eprintln!("({:.0} calls/s)", calls as f64 / secs);
        secs
    }
}

/// Generates the whole data set for `n` runs, handing each call to `sink`.
fn generate(n: usize, progress: &mut Progress, sink: &mut dyn FnMut(Call)) -> Data {
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

fn total_runs(n: usize) -> usize {
    n + n / 10 / OTHERS.len() * OTHERS.len()
}

/// Fills a weft store through the library's bulk path (one write job per 20,000 calls);
/// returns the data and seconds.
fn fill_weft(store: &dyn Store, label: &str, n: usize) -> Result<(Data, f64), String> {
    const TXN: usize = 20_000;
    let mut failed = None;
    let mut flush = |buf: &mut Vec<Call>| {
        let calls = std::mem::take(buf);
        if failed.is_some() || calls.is_empty() {
            return;
        }
        let written = weft::store::write(store, move |w| {
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

fn call_json(c: &Call) -> Value {
    json!({
        "project_id": c.project_id, "id": c.id, "trace_id": c.trace_id, "parent_id": c.parent_id,
        "op_name": c.op_name, "display_name": c.display_name,
        "started_at": format_time(c.started_at), "ended_at": c.ended_at.map(format_time),
        "exception": c.exception, "attributes": c.attributes, "inputs": c.inputs,
        "output": c.output, "summary": c.summary, "wb_user_id": c.wb_user_id,
    })
}

// ---------------------------------------------------------------------------- the reference

struct RefEnv {
    dir: PathBuf,
    python: PathBuf,
    venv: PathBuf,
    version: String,
}

/// Finds (and if needed sets up) the reference server; `Err` says why it cannot run.
fn reference_env(args: &Args) -> Result<RefEnv, String> {
    if args.no_ref {
        return Err("not run (--no-ref)".into());
    }
    let dir =
        args.refserver.clone().ok_or("not configured (set REFSERVER_DIR or --refserver to its directory)")?;
    if !dir.join("refserver.py").is_file() {
        return Err(format!("no refserver.py in the reference directory ({})", dir.display()));
    }
    let venv = PathBuf::from(
        std::env::var("REFSERVER_VENV")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/refserver-venv").into()),
    );
    let python = venv.join("bin/python");
    if !python.exists() {
        if args.smoke {
            return Err("its virtualenv is missing (smoke mode does not set it up)".into());
        }
        eprintln!("reference: setting up its virtualenv (setup.sh)...");
        let ok = Command::new("bash")
            .arg(dir.join("setup.sh"))
            .env("REFSERVER_VENV", &venv)
            .status()
            .map_err(|e| format!("setup.sh: {e}"))?
            .success();
        if !ok || !python.exists() {
            return Err("setup.sh failed".into());
        }
    }
    let out = Command::new(&python)
        .args(["-c", "import importlib.metadata as m; print(m.version('weave'))"])
        .output()
        .map_err(|e| format!("python: {e}"))?;
    if !out.status.success() {
        return Err("weave is not installed in its virtualenv".into());
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(RefEnv { dir, python, venv, version })
}

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-cache")
}

/// Puts the reference store for `n` runs at `db`: from the cache, or generated (and cached).
/// Returns the seconds spent generating (`None` when cached).
fn fill_ref(env: &RefEnv, db: &Path, n: usize, work: &Path) -> Result<Option<f64>, String> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let cached = cache.join(format!("reference-v{GEN_VERSION}-{n}.db"));
    let mut secs = None;
    if !cached.exists() {
        let script = work.join("seed_reference.py");
        std::fs::write(&script, include_str!("../seed_reference.py")).map_err(|e| e.to_string())?;
        let partial = cache.join(format!("reference-v{GEN_VERSION}-{n}.db.partial"));
        let _ = std::fs::remove_file(&partial);
        let log = work.join("seed_reference.log");
        let mut child = Command::new(&env.python)
            .arg(&script)
            .arg("--db")
            .arg(&partial)
            .arg("--refserver-dir")
            .arg(&env.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("seed_reference.py: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut w = BufWriter::with_capacity(1 << 20, stdin);
        let mut broken = false;
        let mut progress =
            Progress::new(&format!("reference store, N={}", thousands(n as f64)), total_runs(n));
        let data = generate(n, &mut progress, &mut |c| {
            if !broken {
                broken =
                    serde_json::to_writer(&mut w, &call_json(&c)).is_err() || w.write_all(b"\n").is_err();
            }
        });
        broken |= w.flush().is_err();
        drop(w);
        let status = child.wait().map_err(|e| e.to_string())?;
        let s = progress.finish(data.calls);
        if broken || !status.success() {
            return Err(format!("seeding failed: {}", tail(&log, 5)));
        }
        std::fs::rename(&partial, &cached).map_err(|e| e.to_string())?;
        secs = Some(s);
    } else {
        eprintln!("  reference store, N={}: cached ({})", thousands(n as f64), cached.display());
    }
    std::fs::copy(&cached, db).map_err(|e| format!("copy cached store: {e}"))?;
    Ok(secs)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

// ------------------------------------------------------------------------------ ClickHouse

/// The ClickHouse test front: ClickHouse run in-process by chdb behind a Python HTTP server
/// (`scripts/clickhouse-front`), started by the bench and stopped when dropped.
struct Front {
    child: Child,
    url: String,
    /// ClickHouse's version, as the engine reports it.
    version: String,
}

impl Front {
    /// Starts the front on the data directory `data` and waits for its listening line (its
    /// first start ever makes its virtualenv, which takes minutes).
    fn start(root: &Path, data: &Path, log: &Path) -> Result<Front, String> {
        let script = root.join("scripts/clickhouse-front");
        let mut child = Command::new(&script)
            .args(["--port", "0", "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let mut front = Front { child, url: String::new(), version: String::new() };
        front.url = rx
            .recv_timeout(Duration::from_secs(900))
            .map_err(|_| format!("the front did not start: {}", tail(log, 5)))?;
        let client = Client::new(front.config("default"));
        let q = Query::new("SELECT version() FORMAT JSONCompactEachRow");
        let rows: Vec<(String,)> = client.query_all(&q).map_err(|e| format!("the front: {e}"))?;
        front.version = rows.into_iter().next().map(|(v,)| v).unwrap_or_default();
        Ok(front)
    }

    fn config(&self, database: &str) -> Config {
        Config {
            url: self.url.clone(),
            database: database.into(),
            user: "default".into(),
            password: String::new(),
        }
    }

    /// weft's global options for this front and `database`.
    fn weft_args(&self, database: &str) -> Vec<String> {
        ["--store", "clickhouse", "--clickhouse-url", &self.url, "--clickhouse-database", database]
            .map(String::from)
            .to_vec()
    }

    /// Bytes on disk of a database's active parts.
    fn database_bytes(&self, database: &str) -> Result<u64, String> {
        let client = Client::new(self.config(database));
        let mut q = Query::default();
        let db = q.string(database);
        q.push(&format!(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db} AND active \
             FORMAT JSONCompactEachRow"
        ));
        let rows: Vec<(u64,)> = client.query_all(&q).map_err(|e| e.to_string())?;
        Ok(rows.first().map_or(0, |(b,)| *b))
    }

    fn drop_database(&self, database: &str) {
        let client = Client::new(self.config(database));
        let q = Query::new(format!("DROP DATABASE IF EXISTS {database}"));
        if let Err(e) = client.execute_in(&q, None) {
            eprintln!("  clickhouse: dropping {database}: {e}");
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // SIGTERM lets the front close its engine cleanly; SIGKILL if it lingers.
        let _ =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Results of weft on ClickHouse at one N.
struct ChRound {
    m: Measured,
    gen_secs: f64,
}

/// Fills a fresh database on the front with the data for `n` runs (the library's bulk path),
/// then benchmarks `weft --store clickhouse` on it.
async fn clickhouse_round(
    front: &Front,
    weft_bin: &Path,
    n: usize,
    plan: &Plan,
    work: &Path,
) -> Result<ChRound, String> {
    let database = format!("weft_bench_{n}");
    front.drop_database(&database);
    let store = ClickHouseStore::open(front.config(&database)).map_err(|e| format!("open: {e}"))?;
    let filled = fill_weft(&store, "weft store on ClickHouse", n);
    drop(store);
    let (data, gen_secs) = filled?;
    let size = front.database_bytes(&database);
    if let Err(e) = &size {
        eprintln!("  clickhouse: size of {database}: {e}");
    }
    let key = Command::new(weft_bin)
        .args(front.weft_args(&database))
        .args(["keys", "create", "--admin"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("weft keys create: {e}"))?;
    let secret = String::from_utf8_lossy(&key.stdout).trim().to_string();
    if !key.status.success() || secret.is_empty() {
        return Err("weft keys create failed".into());
    }
    let mut args = front.weft_args(&database);
    args.extend(["serve".into(), "--bind".into(), "127.0.0.1:{port}".into()]);
    let launch = Launch {
        which: Impl::WeftClickHouse,
        program: weft_bin.to_path_buf(),
        args,
        auth: basic_auth("api", &secret),
        log: work.join(format!("weft-clickhouse-{n}.log")),
        backend_pid: Some(front.child.id()),
    };
    let store_mb = size.ok().map(|b| b as f64 / 1e6);
    let m = bench_server(&launch, &data, plan, plan.cold_weft, store_mb).await;
    front.drop_database(&database);
    Ok(ChRound { m, gen_secs })
}

// ------------------------------------------------------------------------------- processes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Weft,
    Ref,
    /// weft with `--store clickhouse` on the chdb test front.
    WeftClickHouse,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Weft => "weft",
            Impl::Ref => "reference",
            Impl::WeftClickHouse => "weft on ClickHouse",
        }
    }
}

/// How to start one server on one store.
struct Launch {
    which: Impl,
    program: PathBuf,
    args: Vec<String>,
    auth: String,
    log: PathBuf,
    /// Another running process whose CPU time counts as the server's (the ClickHouse front).
    backend_pid: Option<u32>,
}

struct Server {
    child: Child,
    pid: u32,
    /// Processes whose CPU time is the server's: `pid`, and the backend's if any.
    cpu_pids: Vec<u32>,
    http: Http,
    /// Process start to first answered list request.
    ready_after: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

impl Launch {
    /// Starts the server and waits for its first answered list request.
    async fn start(&self) -> Result<Server, String> {
        let port = free_port();
        let mut args = self.args.clone();
        for a in &mut args {
            *a = a.replace("{port}", &port.to_string());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.program.display()))?;
        let pid = child.id();
        let mut server = Server {
            child,
            pid,
            cpu_pids: std::iter::once(pid).chain(self.backend_pid).collect(),
            http: Http::new(format!("http://127.0.0.1:{port}"), self.auth.clone()),
            ready_after: Duration::ZERO,
        };
        let probe = format!("/v2/{MAIN}/evaluation_runs?limit=1");
        let deadline = Duration::from_secs(180);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{} exited ({status}): {}", self.which.name(), tail(&self.log, 5)));
            }
            if server.http.get(&probe).await.is_ok() {
                server.ready_after = started.elapsed();
                return Ok(server);
            }
            if started.elapsed() > deadline {
                return Err(format!("{} not answering after {deadline:?}", self.which.name()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A `/proc/<pid>/status` field in MB.
fn proc_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// User + system CPU seconds of a process (`"self"` for this one).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of several processes together.
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().map(|pid| cpu_secs(&pid.to_string())).sum()
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_dir() {
        std::fs::read_dir(path).map(|rd| rd.flatten().map(|e| dir_bytes(&e.path())).sum()).unwrap_or(0)
    } else {
        meta.len()
    }
}

// ------------------------------------------------------------------------------------ HTTP

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
    auth: String,
}

impl Http {
    fn new(base: String, auth: String) -> Http {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(900))
            .build()
            .expect("HTTP client");
        Http { client, base, auth }
    }

    async fn check(resp: reqwest::Response) -> Result<bytes::Bytes, String> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])))
        }
    }

    async fn get(&self, path: &str) -> Result<bytes::Bytes, String> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::check(resp).await
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Result<bytes::Bytes, String> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::check(resp).await
    }
}

fn lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn first_id(b: &[u8]) -> String {
    let first = b.split(|&c| c == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<Value>(first)
        .ok()
        .and_then(|v| v.get("evaluation_run_id").and_then(Value::as_str).map(String::from))
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ------------------------------------------------------------------------------ load driver

struct Load {
    /// Latency of each successful request, ms.
    lat: Vec<f64>,
    wall: f64,
    errors: usize,
    first_error: Option<String>,
    /// Units of work done (requests, rows, calls...), summed over successful requests.
    units: u64,
    server_cpu: f64,
    client_cpu: f64,
}

impl Load {
    fn pct(&self, p: f64) -> Option<f64> {
        pct(&self.lat, p)
    }
    fn rate(&self) -> Option<f64> {
        (self.units > 0 && self.wall > 0.0).then(|| self.units as f64 / self.wall)
    }
}

fn pct(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Runs `op(i)` from `conc` concurrent workers until the budget is spent; each call returns
/// the units of work it did.
async fn drive<F, Fut>(pids: &[u32], conc: usize, budget: Budget, op: F) -> Load
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    let issued = Cell::new(0usize);
    let out = RefCell::new(Load {
        lat: Vec::new(),
        wall: 0.0,
        errors: 0,
        first_error: None,
        units: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
    });
    let (server0, client0) = (cpu_of(pids), cpu_secs("self"));
    let start = Instant::now();
    let worker = |_| async {
        loop {
            let i = issued.get();
            if i >= budget.max || (i >= budget.min && start.elapsed() >= budget.time) {
                break;
            }
            issued.set(i + 1);
            let t = Instant::now();
            let result = op(i).await;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let mut o = out.borrow_mut();
            match result {
                Ok(units) => {
                    o.lat.push(ms);
                    o.units += units;
                }
                Err(e) => {
                    o.errors += 1;
                    o.first_error.get_or_insert(e);
                }
            }
        }
    };
    futures_util::future::join_all((0..conc).map(worker)).await;
    let mut o = out.into_inner();
    o.wall = start.elapsed().as_secs_f64();
    o.server_cpu = cpu_of(pids) - server0;
    o.client_cpu = cpu_secs("self") - client0;
    o
}

// ------------------------------------------------------------------------------- workloads

/// Measurements of one server on one store, by key.
#[derive(Default)]
struct Measured {
    values: HashMap<&'static str, f64>,
    notes: Vec<String>,
    /// Strings compared between the two servers (first ids, row counts).
    checks: Vec<(&'static str, String)>,
}

impl Measured {
    fn set(&mut self, key: &'static str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.values.insert(key, v);
        }
    }
    fn get(&self, key: &str) -> Option<f64> {
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

const UPSERT_CALLS: usize = 100;

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
fn keys(w: &'static str) -> [&'static str; 6] {
    match w {
        "filt1" => ["filt1.p50", "filt1.p99", "filt1.rate", "filt1.n", "filt1.cpu", "filt1.ccpu"],
        "filt16" => ["filt16.p50", "filt16.p99", "filt16.rate", "filt16.n", "filt16.cpu", "filt16.ccpu"],
        "deep" => ["deep.p50", "deep.p99", "deep.rate", "deep.n", "deep.cpu", "deep.ccpu"],
        "lookup" => ["lookup.p50", "lookup.p99", "lookup.rate", "lookup.n", "lookup.cpu", "lookup.ccpu"],
        "create" => ["create.p50", "create.p99", "create.rate", "create.n", "create.cpu", "create.ccpu"],
        "upsert" => ["upsert.p50", "upsert.p99", "upsert.rate", "upsert.n", "upsert.cpu", "upsert.ccpu"],
        "single" => ["single.p50", "single.p99", "single.rate", "single.n", "single.cpu", "single.ccpu"],
        _ => unreachable!("unknown workload {w}"),
    }
}

/// Starts `launch`, runs every workload, then restarts it `cold` times to time cold starts.
/// `store_mb` is the store's size on disk before the server starts.
async fn bench_server(
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

// --------------------------------------------------------------------------------- report

#[derive(Clone, Copy)]
enum Unit {
    Ms,
    Rate,
    MBps,
    MB,
}

struct Spec {
    workload: &'static str,
    metric: &'static str,
    key: &'static str,
    unit: Unit,
    higher_is_better: bool,
    target: &'static str,
}

const fn spec(
    workload: &'static str,
    metric: &'static str,
    key: &'static str,
    unit: Unit,
    higher_is_better: bool,
    target: &'static str,
) -> Spec {
    Spec { workload, metric, key, unit, higher_is_better, target }
}

const SPECS: &[Spec] = &[
    spec("1. full list stream", "rows/s", "list.rows_s", Unit::Rate, true, "≥ 500,000"),
    spec("1. full list stream", "MB/s", "list.mb_s", Unit::MBps, true, ""),
    spec("1. full list stream", "time to first byte, p50", "list.ttfb_p50", Unit::Ms, false, "< 5 ms"),
    spec("1. full list stream", "time to first byte, p99", "list.ttfb_p99", Unit::Ms, false, ""),
    spec("1. full list stream", "whole stream, p50", "list.total_p50", Unit::Ms, false, ""),
    spec("1. full list stream", "peak server RSS", "rss.peak", Unit::MB, false, "< 100 MB"),
    spec("2. filtered page, c=1", "latency p50", "filt1.p50", Unit::Ms, false, "< 2 ms"),
    spec("2. filtered page, c=1", "latency p99", "filt1.p99", Unit::Ms, false, ""),
    spec("2. filtered page, c=1", "requests/s", "filt1.rate", Unit::Rate, true, ""),
    spec("2. filtered page, c=16", "latency p50", "filt16.p50", Unit::Ms, false, ""),
    spec("2. filtered page, c=16", "latency p99", "filt16.p99", Unit::Ms, false, ""),
    spec("2. filtered page, c=16", "requests/s", "filt16.rate", Unit::Rate, true, "≥ 5,000"),
    spec("3. deep page", "latency p50", "deep.p50", Unit::Ms, false, "< 50 ms"),
    spec("3. deep page", "latency p99", "deep.p99", Unit::Ms, false, ""),
    spec("3. deep page", "requests/s", "deep.rate", Unit::Rate, true, ""),
    spec("4. lookup, 100 ids", "latency p50", "lookup.p50", Unit::Ms, false, ""),
    spec("4. lookup, 100 ids", "latency p99", "lookup.p99", Unit::Ms, false, ""),
    spec("4. lookup, 100 ids", "requests/s", "lookup.rate", Unit::Rate, true, ""),
    spec("5. create + finish, c=16", "runs/s", "create.rate", Unit::Rate, true, "≥ 5,000"),
    spec("5. create + finish, c=16", "pair latency p50", "create.p50", Unit::Ms, false, ""),
    spec("5. create + finish, c=16", "pair latency p99", "create.p99", Unit::Ms, false, ""),
    spec("5. upsert_batch, c=4", "calls/s", "upsert.rate", Unit::Rate, true, "≥ 50,000"),
    spec("5. upsert_batch, c=4", "batch latency p50", "upsert.p50", Unit::Ms, false, ""),
    spec("5. call/start + call/end, c=4", "calls/s", "single.rate", Unit::Rate, true, ""),
    spec("5. call/start + call/end, c=4", "call latency p50", "single.p50", Unit::Ms, false, ""),
    spec("6. cold start", "first start after load", "cold.first", Unit::Ms, false, ""),
    spec("6. cold start", "restart, p50", "cold.restart", Unit::Ms, false, ""),
    spec("6. cold start", "idle RSS after start", "idle_rss", Unit::MB, false, ""),
    spec("store", "size on disk", "db.mb", Unit::MB, false, ""),
];

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{sign}{out}")
}

fn fmt(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v >= 10_000.0 => format!("{:.1} s", v / 1e3),
        Unit::Ms if v >= 100.0 => format!("{v:.0} ms"),
        Unit::Ms if v >= 10.0 => format!("{v:.1} ms"),
        Unit::Ms if v >= 1.0 => format!("{v:.2} ms"),
        Unit::Ms => format!("{v:.3} ms"),
        Unit::Rate if v >= 100.0 => thousands(v),
        Unit::Rate if v >= 1.0 => format!("{v:.1}"),
        Unit::Rate => format!("{v:.2}"),
        Unit::MBps => format!("{v:.1} MB/s"),
        Unit::MB => format!("{v:.1} MB"),
    }
}

fn ratio(weft: f64, reference: f64, higher_is_better: bool) -> String {
    let r = if higher_is_better { weft / reference } else { reference / weft };
    if !r.is_finite() {
        return "—".into();
    }
    if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.1}×") }
}

/// Results of one N.
struct Round {
    n: usize,
    data_calls: usize,
    summary_bytes: usize,
    weft_gen_secs: f64,
    ref_gen_secs: Option<f64>,
    weft: Measured,
    reference: Option<Measured>,
    ref_skipped: Option<String>,
    /// weft on ClickHouse, when asked for and run at this N.
    clickhouse: Option<Measured>,
    ch_gen_secs: Option<f64>,
    ch_skipped: Option<String>,
}

struct Context {
    command: String,
    /// `/proc/loadavg`'s 1, 5 and 15-minute averages when the bench started.
    load: String,
    ref_status: Result<String, String>,
    weft_bin_mb: f64,
    ref_venv_mb: Option<f64>,
    smoke: bool,
    /// With `--clickhouse`: the front's ClickHouse version, or why it did not run.
    clickhouse: Option<Result<String, String>>,
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM, {} {}",
        mem_kb / 1024.0 / 1024.0,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// How the report names weft on the ClickHouse test front.
const CH_LABEL: &str = "weft on ClickHouse (chdb behind the Python test front)";
/// Its column in the table.
const CH_COLUMN: &str = "weft on ClickHouse (test front)";

fn render(ctx: &Context, rounds: &[Round], notes_block: Option<&str>) -> String {
    let mut s = String::new();
    let ch = ctx.clickhouse.is_some();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let _ = writeln!(s, "# Benchmarks: weft vs the reference implementation\n");
    let _ = writeln!(s, "- Date: {date}");
    let _ = writeln!(s, "- Machine: {} (load average at start: {})", machine(), ctx.load);
    let _ = writeln!(s, "- Command: `{}`", ctx.command);
    let _ = writeln!(
        s,
        "- weft: {} (release build, binary {:.1} MB)",
        env!("CARGO_PKG_VERSION"),
        ctx.weft_bin_mb
    );
    match &ctx.ref_status {
        Ok(v) => {
            let venv = ctx.ref_venv_mb.map_or(String::new(), |mb| format!(", virtualenv {mb:.0} MB"));
            let _ = writeln!(
                s,
                "- Reference: Weave's own SQLite trace server (weave {v}) behind FastAPI/uvicorn{venv}"
            );
        }
        Err(why) => {
            let _ = writeln!(s, "- Reference: **not run**: {why}. The reference columns are empty.");
        }
    }
    match &ctx.clickhouse {
        None => {}
        Some(Ok(v)) => {
            let _ = writeln!(
                s,
                "- {CH_LABEL}: the same weft binary with `--store clickhouse`, on ClickHouse {v} run \
                 in-process by chdb behind the Python HTTP front of the test tree \
                 (`scripts/clickhouse-front`), on the same machine. **The front is a test harness, \
                 not a production ClickHouse server**: every query also pays its Python HTTP layer. \
                 In this column, server CPU is weft's and the front's processes together; server \
                 RSS is weft's process alone; cold start is weft's start against the running front; \
                 store size is the bytes on disk of the database's active parts (`system.parts`)."
            );
        }
        Some(Err(why)) => {
            let _ = writeln!(s, "- {CH_LABEL}: **not run**: {why}. Its columns are empty.");
        }
    }
    if ctx.smoke {
        let _ =
            writeln!(s, "- **Smoke mode**: tiny store and a handful of requests; the numbers mean nothing.");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Data per N: N evaluation runs in one project (20 evaluations, 50 models), a third of them \
         finished with 3 predictions of 2 scores each and a summary; plus N/10 runs over four other \
         projects. {} the same calls (one deterministic generator).",
        if ch { "Every server holds" } else { "Both servers hold" }
    );
    for r in rounds {
        let ref_gen = match r.ref_gen_secs {
            Some(secs) => format!(", reference seeding {:.0} calls/s", r.data_calls as f64 / secs),
            None if r.reference.is_some() => ", reference store from the cache".into(),
            None => String::new(),
        };
        let ch_gen = match r.ch_gen_secs {
            Some(secs) => format!(
                ", weft on ClickHouse bulk load {secs:.1} s ({} calls/s)",
                thousands(r.data_calls as f64 / secs)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "- N={}: {} calls in all, finished runs' summaries {} bytes on average; \
             weft bulk load {:.1} s ({} calls/s){ref_gen}{ch_gen}.",
            thousands(r.n as f64),
            thousands(r.data_calls as f64),
            r.summary_bytes,
            r.weft_gen_secs,
            thousands(r.data_calls as f64 / r.weft_gen_secs),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Ratio: how many times better weft is (reference ÷ weft for times and sizes, weft ÷ \
         reference for rates). Latencies are per request, from an in-process client over loopback \
         on the same machine; RSS from `/proc/<pid>/status` (VmHWM, VmRSS).{}\n",
        if ch {
            " \"ratio (ClickHouse)\" is the same for weft on ClickHouse: reference ÷ weft on \
             ClickHouse (test front)."
        } else {
            ""
        }
    );
    if ch {
        let _ = writeln!(
            s,
            "| Workload | N | Metric | weft | reference | ratio | {CH_COLUMN} | ratio (ClickHouse) | \
             target (weft) |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|---:|---|");
    } else {
        let _ = writeln!(s, "| Workload | N | Metric | weft | reference | ratio | target (weft) |");
        let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---|");
    }
    let mut last = "";
    for sp in SPECS {
        for r in rounds {
            let w = r.weft.get(sp.key);
            let rf = r.reference.as_ref().and_then(|m| m.get(sp.key));
            let wl = if sp.workload != last { sp.workload } else { "" };
            last = sp.workload;
            let cell = |v: Option<f64>, ran: bool| match v {
                Some(v) => fmt(v, sp.unit),
                None if ran => "failed".into(),
                None => "—".into(),
            };
            let rat = |w: Option<f64>| match (w, rf) {
                (Some(w), Some(rf)) => ratio(w, rf, sp.higher_is_better),
                _ => "—".into(),
            };
            let chs = if ch {
                let c = r.clickhouse.as_ref().and_then(|m| m.get(sp.key));
                format!(" {} | {} |", cell(c, r.clickhouse.is_some()), rat(c))
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "| {wl} | {} | {} | {} | {} | {} |{chs} {} |",
                thousands(r.n as f64),
                sp.metric,
                cell(w, true),
                cell(rf, r.reference.is_some()),
                rat(w),
                sp.target
            );
        }
    }
    let _ = writeln!(
        s,
        "| 6. binary size | — | on disk | {:.1} MB | {} | — |{} |",
        ctx.weft_bin_mb,
        ctx.ref_venv_mb.map_or("—".into(), |mb| format!("{mb:.0} MB (virtualenv)")),
        if ch { " same binary | — |" } else { "" }
    );
    let _ = writeln!(s);

    let _ = writeln!(s, "Samples (weft / reference{}):\n", if ch { " / weft on ClickHouse" } else { "" });
    for r in rounds {
        let mut servers = vec![Some(&r.weft), r.reference.as_ref()];
        if ch {
            servers.push(r.clickhouse.as_ref());
        }
        let n = |k: &str| {
            let each: Vec<String> =
                servers.iter().map(|m| m.and_then(|m| m.get(k)).map_or("—".into(), thousands)).collect();
            each.join(" / ")
        };
        let _ = writeln!(
            s,
            "- N={}: full list {} streams; filtered page c=1 {}, c=16 {}; deep page {}; \
             lookup {}; create+finish {} pairs; upsert_batch {} batches of {UPSERT_CALLS} calls; \
             call/start + call/end {} calls.",
            thousands(r.n as f64),
            n("list.reps"),
            n("filt1.n"),
            n("filt16.n"),
            n("deep.n"),
            n("lookup.n"),
            n("create.n"),
            n("upsert.n"),
            n("single.n"),
        );
        if let Some(why) = &r.ref_skipped {
            let _ = writeln!(s, "  Reference not run at this N: {why}.");
        }
        if let Some(why) = &r.ch_skipped {
            let _ = writeln!(s, "  weft on ClickHouse not run at this N: {why}.");
        }
    }
    let _ = writeln!(s);

    // Checks: both servers should answer the same requests with the same rows.
    let mut check_lines = Vec::new();
    for r in rounds {
        for note in &r.weft.notes {
            check_lines.push(format!("weft, N={}: {note}", thousands(r.n as f64)));
        }
        if let Some(m) = &r.reference {
            for note in &m.notes {
                check_lines.push(format!("reference, N={}: {note}", thousands(r.n as f64)));
            }
            for (label, w) in &r.weft.checks {
                if let Some((_, rf)) = m.checks.iter().find(|(l, _)| l == label)
                    && rf != w
                {
                    check_lines.push(format!(
                        "N={}: {label} differs: weft {w}, reference {rf}",
                        thousands(r.n as f64)
                    ));
                }
            }
        }
        // weft on ClickHouse against weft on SQLite, on the same requests.
        if let Some(m) = &r.clickhouse {
            for note in &m.notes {
                check_lines.push(format!("weft on ClickHouse, N={}: {note}", thousands(r.n as f64)));
            }
            for (label, w) in &r.weft.checks {
                match m.checks.iter().find(|(l, _)| l == label) {
                    Some((_, c)) if c != w => check_lines.push(format!(
                        "N={}: {label} differs: weft {w}, weft on ClickHouse {c}",
                        thousands(r.n as f64)
                    )),
                    Some(_) => {}
                    None => check_lines.push(format!(
                        "N={}: {label}: weft on ClickHouse has no answer to compare",
                        thousands(r.n as f64)
                    )),
                }
            }
        }
    }
    let _ = writeln!(s, "## Checks\n");
    let compared: Vec<String> = rounds
        .iter()
        .filter(|r| r.clickhouse.is_some())
        .map(|r| {
            let labels: Vec<&str> = r.weft.checks.iter().map(|(l, _)| *l).collect();
            format!(
                "- N={}: weft on ClickHouse is compared with weft (SQLite) on the same requests: {}.",
                thousands(r.n as f64),
                labels.join(", ")
            )
        })
        .collect();
    if !compared.is_empty() {
        let _ = writeln!(s, "{}\n", compared.join("\n"));
    }
    if check_lines.is_empty() && ch {
        let _ = writeln!(
            s,
            "Every workload answered without errors; where they ran, weft, the reference and weft \
             on ClickHouse returned the same row counts and the same first rows.\n"
        );
    } else if check_lines.is_empty() {
        let _ = writeln!(
            s,
            "Every workload answered without errors; where both ran, both servers returned the same \
             row counts and the same first rows.\n"
        );
    } else {
        for l in check_lines {
            let _ = writeln!(s, "- {l}");
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Where the time goes\n");
    let _ = writeln!(s, "{}", analysis(rounds));
    if let Some(block) = notes_block {
        let _ = writeln!(s, "{block}");
    }
    s
}

/// Measured CPU accounting, in words.
fn analysis(rounds: &[Round]) -> String {
    let mut s = String::new();
    let Some(r) = rounds.last() else { return s };
    let n = thousands(r.n as f64);
    let per = |m: &Measured, k: &str| m.get(k).unwrap_or(f64::NAN);
    let ms = |v: f64| if v.is_finite() { fmt(v, Unit::Ms) } else { "n/a (failed)".into() };
    let w = &r.weft;
    let _ = writeln!(
        s,
        "CPU time from `/proc/<pid>/stat` of the server and of the client process while each \
         workload ran (N={n}; the machine has {} cores, shared by client and server).\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let _ = writeln!(
        s,
        "- Full list, weft: {:.2} µs of server CPU per row against {:.2} µs of wall time per row \
         ({:.0} bytes per row); the client spent {:.2} µs per row reading the stream.",
        per(w, "list.cpu_us_row"),
        per(w, "list.wall_us_row"),
        per(w, "list.bytes_row"),
        per(w, "list.ccpu_us_row"),
    );
    if let Some(rf) = &r.reference {
        let _ = writeln!(
            s,
            "- Full list, reference: {:.1} µs of server CPU per row against {:.1} µs of wall time \
             per row ({:.0} bytes per row).",
            per(rf, "list.cpu_us_row"),
            per(rf, "list.wall_us_row"),
            per(rf, "list.bytes_row"),
        );
    }
    for (label, k) in WORKLOADS {
        let [p50, _, _, _, cpu, ccpu] = keys(k);
        let mut line = format!(
            "- {label}: weft {} server CPU and {} client CPU per request, p50 latency {}",
            ms(per(w, cpu)),
            ms(per(w, ccpu)),
            ms(per(w, p50)),
        );
        if let Some(rf) = &r.reference {
            let _ = write!(
                line,
                "; reference {} server CPU per request, p50 latency {}",
                ms(per(rf, cpu)),
                ms(per(rf, p50)),
            );
        }
        line.push('.');
        let _ = writeln!(s, "{line}");
    }
    if let Some((cr, c)) = rounds.iter().rev().find_map(|r| r.clickhouse.as_ref().map(|c| (r, c))) {
        let _ = writeln!(
            s,
            "\n{CH_LABEL}, N={}: server CPU is weft's process and the front's (chdb and its Python \
             HTTP layer) together.\n",
            thousands(cr.n as f64)
        );
        let _ = writeln!(
            s,
            "- Full list: {:.2} µs of server CPU per row against {:.2} µs of wall time per row \
             ({:.0} bytes per row); the client spent {:.2} µs per row reading the stream.",
            per(c, "list.cpu_us_row"),
            per(c, "list.wall_us_row"),
            per(c, "list.bytes_row"),
            per(c, "list.ccpu_us_row"),
        );
        for (label, k) in WORKLOADS {
            let [p50, _, _, _, cpu, ccpu] = keys(k);
            let _ = writeln!(
                s,
                "- {label}: {} server CPU and {} client CPU per request, p50 latency {}.",
                ms(per(c, cpu)),
                ms(per(c, ccpu)),
                ms(per(c, p50)),
            );
        }
    }
    s
}

/// The latency workloads of the analysis, by label and key.
const WORKLOADS: [(&str, &str); 7] = [
    ("Filtered page (c=1)", "filt1"),
    ("Filtered page (c=16)", "filt16"),
    ("Deep page", "deep"),
    ("Lookup", "lookup"),
    ("Create + finish (per pair)", "create"),
    ("upsert_batch (per batch)", "upsert"),
    ("call/start + call/end (per call)", "single"),
];

const NOTES_BEGIN: &str = "<!-- notes:begin (kept when the bench rewrites this file) -->";
const NOTES_END: &str = "<!-- notes:end -->";

/// The hand-written notes block of an existing report, kept across runs.
fn notes_block(path: &Path) -> Option<String> {
    let old = std::fs::read_to_string(path).ok()?;
    let start = old.find(NOTES_BEGIN)?;
    let end = old[start..].find(NOTES_END)? + start + NOTES_END.len();
    Some(old[start..end].to_string())
}

// ------------------------------------------------------------------------------------ main

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let plan = Plan::new(args.smoke);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let weft_bin = std::env::var_os("WEFT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weft")));
    let weft_bin_mb =
        std::fs::metadata(&weft_bin).map_err(|e| format!("{}: {e}", weft_bin.display()))?.len() as f64 / 1e6;
    let ref_env = reference_env(&args);
    if let Err(why) = &ref_env {
        eprintln!("reference: {why}; running weft alone");
    }
    let mut command = String::from("cargo bench --bench compare");
    if !args.given.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.given.join(" "));
    }
    if ref_env.is_ok() && !args.given.iter().any(|a| a == "--refserver") {
        command = format!("REFSERVER_DIR=<reference server dir> {command}");
    }
    eprintln!("compare: N = {:?}, reference up to N = {}", args.runs, args.ref_max);
    if args.clickhouse {
        eprintln!("compare: weft on ClickHouse (test front) up to N = {}", args.clickhouse_max);
    }

    let work = tempfile::Builder::new().prefix("weft-bench-").tempdir().map_err(|e| e.to_string())?;
    // Declared after `work`, so it stops before its data directory goes.
    let front = if !args.clickhouse {
        None
    } else if args.runs.iter().all(|&n| n > args.clickhouse_max) {
        Some(Err(format!("every N is above --clickhouse-max {}", thousands(args.clickhouse_max as f64))))
    } else {
        eprintln!("clickhouse: starting the test front (scripts/clickhouse-front)");
        let front = Front::start(
            root,
            &work.path().join("clickhouse-data"),
            &work.path().join("clickhouse-front.log"),
        );
        match &front {
            Ok(f) => eprintln!("clickhouse: ClickHouse {} at {}", f.version, f.url),
            Err(why) => eprintln!("clickhouse: {why}; running without it"),
        }
        Some(front)
    };
    let mut rounds = Vec::new();
    for &n in &args.runs {
        eprintln!("N = {}", thousands(n as f64));
        let dir = args.keep.as_deref().unwrap_or(work.path()).join(format!("weft-{n}"));
        if args.keep.is_some() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let (data, weft_gen_secs) = {
            let store = SqliteStore::open(&dir).map_err(|e| format!("open weft store: {e}"))?;
            fill_weft(&store, "weft store", n)?
        };
        let key = Command::new(&weft_bin)
            .args(["keys", "create", "--admin", "--data-dir"])
            .arg(&dir)
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("weft keys create: {e}"))?;
        let secret = String::from_utf8_lossy(&key.stdout).trim().to_string();
        if !key.status.success() || secret.is_empty() {
            return Err("weft keys create failed".into());
        }
        if let Some(keep) = &args.keep {
            std::fs::write(keep.join(format!("weft-{n}.key")), &secret).map_err(|e| e.to_string())?;
        }
        let launch = Launch {
            which: Impl::Weft,
            program: weft_bin.clone(),
            args: vec![
                "serve".into(),
                "--data-dir".into(),
                dir.display().to_string(),
                "--bind".into(),
                "127.0.0.1:{port}".into(),
            ],
            auth: basic_auth("api", &secret),
            log: work.path().join(format!("weft-{n}.log")),
            backend_pid: None,
        };
        let store_mb = Some(dir_bytes(&dir) as f64 / 1e6);
        let weft = bench_server(&launch, &data, &plan, plan.cold_weft, store_mb).await;
        if args.keep.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }

        let (mut reference, mut ref_gen_secs, mut ref_skipped) = (None, None, None);
        match &ref_env {
            Ok(env) if n <= args.ref_max => {
                let rdir = work.path().join(format!("ref-{n}"));
                std::fs::create_dir_all(&rdir).map_err(|e| e.to_string())?;
                let db = rdir.join("reference.db");
                match fill_ref(env, &db, n, work.path()) {
                    Ok(secs) => {
                        ref_gen_secs = secs;
                        let launch = Launch {
                            which: Impl::Ref,
                            program: env.python.clone(),
                            args: vec![
                                env.dir.join("refserver.py").display().to_string(),
                                "--db".into(),
                                db.display().to_string(),
                                "--port".into(),
                                "{port}".into(),
                            ],
                            auth: basic_auth("api", "bench"),
                            log: work.path().join(format!("ref-{n}.log")),
                            backend_pid: None,
                        };
                        let store_mb = Some(dir_bytes(&db) as f64 / 1e6);
                        reference = Some(bench_server(&launch, &data, &plan, plan.cold_ref, store_mb).await);
                    }
                    Err(e) => {
                        eprintln!("reference: {e}");
                        ref_skipped = Some(e);
                    }
                }
                let _ = std::fs::remove_dir_all(&rdir);
            }
            Ok(_) => ref_skipped = Some(format!("N is above --ref-max {}", thousands(args.ref_max as f64))),
            Err(_) => {}
        }

        let (mut clickhouse, mut ch_gen_secs, mut ch_skipped) = (None, None, None);
        match &front {
            Some(Ok(f)) if n <= args.clickhouse_max => {
                let started = Instant::now();
                match clickhouse_round(f, &weft_bin, n, &plan, work.path()).await {
                    Ok(r) => {
                        clickhouse = Some(r.m);
                        ch_gen_secs = Some(r.gen_secs);
                    }
                    Err(e) => {
                        eprintln!("clickhouse: {e}");
                        ch_skipped = Some(e);
                    }
                }
                eprintln!(
                    "  weft on ClickHouse, N={}: {:.0} s in all (load and workloads)",
                    thousands(n as f64),
                    started.elapsed().as_secs_f64()
                );
            }
            Some(Ok(_)) => {
                ch_skipped =
                    Some(format!("N is above --clickhouse-max {}", thousands(args.clickhouse_max as f64)))
            }
            _ => {}
        }
        rounds.push(Round {
            n,
            data_calls: data.calls,
            summary_bytes: data.summary_bytes,
            weft_gen_secs,
            ref_gen_secs,
            weft,
            reference,
            ref_skipped,
            clickhouse,
            ch_gen_secs,
            ch_skipped,
        });
    }
    let clickhouse = front.map(|f| f.map(|f| f.version.clone()));

    let out = match (&args.out, args.smoke) {
        (Some(p), _) => Some(if p.is_absolute() { p.clone() } else { root.join(p) }),
        (None, false) => Some(root.join("docs/benchmarks.md")),
        (None, true) => None,
    };
    let ctx = Context {
        command,
        load,
        ref_status: ref_env.as_ref().map(|e| e.version.clone()).map_err(Clone::clone),
        weft_bin_mb,
        ref_venv_mb: ref_env.as_ref().ok().map(|e| dir_bytes(&e.venv) as f64 / 1e6),
        smoke: args.smoke,
        clickhouse,
    };
    let notes = out.as_deref().and_then(notes_block);
    let report = render(&ctx, &rounds, notes.as_deref());
    println!("\n{report}");
    if let Some(path) = out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
