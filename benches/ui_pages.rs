//! Server time of the web UI's heaviest pages: the compare page of two runs and the run page of
//! one, each run 10,000 examples logged as the Python SDK logs an evaluation. Prints a table of
//! medians (release build).
//!
//! ```sh
//! cargo bench --bench ui_pages                   # 2 runs × 10,000 examples, 15 repetitions
//! cargo bench --bench ui_pages -- --smoke        # 2 runs × 200 examples, 2 repetitions (CI)
//! WEFT_BENCH_CLICKHOUSE_URL=http://127.0.0.1:PORT cargo bench --bench ui_pages   # and on ClickHouse
//! ```
//!
//! Options: `--examples N` (per run), `--repeats R`, `--no-memory` (skips the peak-RSS check).
//!
//! Data: a dataset (an object and its table of N rows) and two runs, each a root
//! `Evaluation.evaluate` call with one `Evaluation.predict_and_score` child per dataset row
//! (inputs `{self, model, example: <row ref>}`, output `{output, scores: {judge: {correct},
//! overlap, fluency: {score}}, model_latency}`) holding the model's `predict` call. Four
//! metrics per example; the compare page's statistics draw 10,000 bootstrap resamples.
//!
//! What is measured, each repeated and reported as the median (and the fastest) wall time, and
//! the mean CPU time per request of the process doing the work (all its threads, counted in
//! 10 ms ticks, hence a mean over the repetitions), which a loaded machine disturbs less:
//!
//! - the domain reads alone, called directly on a store opened in a temporary directory
//!   (`compare_view::read`, `run_view::read`): what a page costs the server before rendering;
//! - the whole pages over HTTP from the `weft` binary on the same store, signed in: from the
//!   request to the last byte of the HTML;
//! - the server's peak RSS (VmHWM) before and after one request of each page, on a fresh
//!   server over a store whose outputs are 10 KB each: a page must not hold every output.
//!
//! With `WEFT_BENCH_CLICKHOUSE_URL` set (e.g. to ClickHouse's own server for tests:
//! `scripts/clickhouse --port 0 --data $(mktemp -d)` prints `listening on URL`; its user and
//! password, `weft` and `weft`, go in `WEFT_CLICKHOUSE_USER` and `WEFT_CLICKHOUSE_PASSWORD`),
//! the same on ClickHouse, in a database of its own that is dropped at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft::domain::call::Call;
use weft::domain::compare_view::{self, CompareQuery};
use weft::domain::page::Page;
use weft::domain::run_view::{self, RunPageQuery};
use weft::domain::store::{Store, write};
use weft::domain::writes::objects;
use weft::store::clickhouse::ClickHouseStore;
use weft::store::clickhouse::client::{Client, Config, Query};
use weft::store::sqlite::SqliteStore;

#[path = "common/keys.rs"]
mod keys;
use keys::admin_key;

const PROJECT: &str = "acme/bench";
const RUNS: [&str; 2] = ["0190aaaa-0000-7000-8000-00000000000a", "0190aaaa-0000-7000-8000-00000000000b"];

struct Args {
    smoke: bool,
    examples: usize,
    repeats: usize,
    memory: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { smoke: false, examples: 10_000, repeats: 15, memory: true };
    let (mut examples, mut repeats) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--smoke" => a.smoke = true,
            "--examples" => examples = Some(number("--examples")?),
            "--repeats" => repeats = Some(number("--repeats")?),
            "--no-memory" => a.memory = false,
            "--bench" => {}
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.smoke {
        (a.examples, a.repeats) = (200, 2);
    }
    a.examples = examples.unwrap_or(a.examples).max(1);
    a.repeats = repeats.unwrap_or(a.repeats).max(1);
    Ok(a)
}

/// A small deterministic generator for the data.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Fills `store` with the dataset and the two runs; `output_bytes` is the size of each model
/// output. Returns the number of calls written.
fn fill(store: &dyn Store, examples: usize, output_bytes: usize) -> Result<usize, String> {
    let rows: Vec<Value> =
        (0..examples).map(|i| json!({"question": format!("What is {i} + {i}?"), "answer": 2 * i})).collect();
    let (table, row_digests) = write(store, move |w| {
        let (table, digests) = objects::create_table(w, PROJECT, &rows, None)?;
        Ok((table, digests))
    })
    .map_err(|e| format!("dataset table: {e}"))?;
    let dataset = json!({"_type": "Dataset", "_class_name": "Dataset", "_bases": ["Object", "BaseModel"],
        "name": "Data", "description": null, "rows": format!("weave:///{PROJECT}/table/{table}")});
    let data = write(store, move |w| objects::create(w, PROJECT, "Data", dataset, None, None, None))
        .map_err(|e| format!("dataset: {e}"))?;
    let eval = format!("weave:///{PROJECT}/object/Evaluation:e1");
    let filler = "lorem ipsum ".repeat(output_bytes / 12 + 1);
    let mut calls = Vec::new();
    let mut rng = Lcg(42);
    for (r, run_id) in RUNS.iter().enumerate() {
        let model = ["Alpha", "Beta"][r];
        let model_ref = format!("weave:///{PROJECT}/object/{model}:v1");
        let base = 1_700_000_000_000_000 + r as i64 * 100_000_000;
        let mut run = Call::with_ids(
            PROJECT,
            &format!("weave:///{PROJECT}/op/Evaluation.evaluate:e1"),
            base,
            run_id.to_string(),
            run_id.to_string(),
        );
        run.inputs = json!({"self": eval, "model": model_ref});
        let (mut trues, mut overlap) = (0, 0.0);
        let mut children = Vec::with_capacity(2 * examples);
        for (i, digest) in row_digests.iter().enumerate() {
            let t = base + 1_000 * (i as i64 + 1);
            let answer = format!("{} {}", 2 * i + usize::from(rng.unit() < 0.2), &filler[..output_bytes]);
            let correct = rng.unit() < 0.7 + 0.05 * r as f64;
            let score = (rng.unit() + 0.03 * r as f64).min(1.0);
            let latency = 0.2 + rng.unit() * (0.1 + 0.05 * r as f64);
            trues += usize::from(correct);
            overlap += score;
            let mut pas =
                Call::new(PROJECT, &format!("weave:///{PROJECT}/op/Evaluation.predict_and_score:p1"), t)
                    .under(&run);
            pas.inputs = json!({"self": eval, "model": model_ref,
                "example": format!("weave:///{PROJECT}/object/Data:{}/attr/rows/id/{digest}", data.digest)});
            pas.output = Some(json!({"output": answer,
                "scores": {"judge": {"correct": correct}, "overlap": score, "fluency": {"score": rng.unit()}},
                "model_latency": latency}));
            pas.ended_at = Some(t + 600);
            pas.summary = Some(json!({}));
            let mut predict =
                Call::new(PROJECT, &format!("weave:///{PROJECT}/op/{model}.predict:m1"), t + 1).under(&pas);
            predict.inputs = json!({"self": model_ref, "question": format!("What is {i} + {i}?")});
            predict.output = Some(json!(answer));
            predict.ended_at = Some(t + 1 + (latency * 1e6) as i64 / 1000);
            predict.summary = Some(json!({}));
            children.push(pas);
            children.push(predict);
        }
        let n = examples as f64;
        run.output =
            Some(json!({"judge": {"correct": {"true_count": trues, "true_fraction": trues as f64 / n}},
            "overlap": {"mean": overlap / n}, "model_latency": {"mean": 0.25}}));
        run.ended_at = Some(base + 1_000 * (examples as i64 + 2));
        run.summary = Some(json!({"status_counts": {"success": examples, "error": 0}}));
        calls.push(run);
        calls.extend(children);
    }
    let written = calls.len();
    let mut calls = calls.into_iter().peekable();
    while calls.peek().is_some() {
        let batch: Vec<Call> = calls.by_ref().take(10_000).collect();
        write(store, move |w| batch.iter().try_for_each(|c| w.insert_call(c)))
            .map_err(|e| format!("calls: {e}"))?;
    }
    Ok(written)
}

fn compare_query() -> CompareQuery {
    CompareQuery {
        runs: RUNS.map(String::from).to_vec(),
        baseline: RUNS[0].to_string(),
        metric: None,
        candidate: 0,
        sort: None,
        regressions_only: false,
        page: Page { limit: Some(50), offset: 0 },
    }
}

/// User + system CPU time of a process (`"self"` for this one), in ms, all its threads.
fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10.0
}

/// Median and fastest of `repeats` timings of `f`, and the mean CPU time of process `pid`
/// per call, in ms.
fn time(repeats: usize, pid: &str, mut f: impl FnMut() -> Result<(), String>) -> Result<Line, String> {
    let mut ms = Vec::with_capacity(repeats);
    let cpu = cpu_ms(pid);
    for _ in 0..repeats {
        let started = Instant::now();
        f()?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let cpu_ms = (cpu_ms(pid) - cpu) / repeats as f64;
    ms.sort_by(f64::total_cmp);
    Ok(Line { what: String::new(), median_ms: ms[ms.len() / 2], fastest_ms: ms[0], cpu_ms })
}

/// One line of the table.
struct Line {
    what: String,
    median_ms: f64,
    fastest_ms: f64,
    /// CPU time per request, all threads of the process serving it.
    cpu_ms: f64,
}

/// Times the domain reads of both pages on `store`.
fn domain_reads(store: &dyn Store, label: &str, repeats: usize, out: &mut Vec<Line>) -> Result<(), String> {
    let q = compare_query();
    let page = compare_view::read(store, PROJECT, &q).map_err(|e| format!("compare_view::read: {e}"))?;
    if page.comparison.metrics.len() != 4 || page.rows.len() != 50.min(page.matching) {
        return Err(format!("unexpected compare page: {} metrics", page.comparison.metrics.len()));
    }
    let line = time(repeats, "self", || {
        compare_view::read(store, PROJECT, &q).map(drop).map_err(|e| e.to_string())
    })?;
    out.push(Line { what: format!("{label}: compare_view::read (direct call)"), ..line });
    let rq = RunPageQuery::default();
    let line = time(repeats, "self", || {
        run_view::read(store, PROJECT, RUNS[0], &rq).map(drop).map_err(|e| e.to_string())
    })?;
    out.push(Line { what: format!("{label}: run_view::read (direct call)"), ..line });
    Ok(())
}

/// A `weft serve` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
    cookie: String,
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

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let (pair, _) = v.split_once(';').unwrap_or((v, ""));
        let (n, value) = pair.split_once('=')?;
        (n.trim() == name).then(|| value.to_string())
    })
}

impl Server {
    /// Starts `weft serve` on the store and signs in to the web UI with `key`.
    async fn start(bin: &Path, store_args: &[String], key: &str, log: &Path) -> Result<Server, String> {
        let port = free_port();
        let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(store_args)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| e.to_string())?;
        let mut s = Server { child, base: format!("http://127.0.0.1:{port}"), client, cookie: String::new() };
        let started = Instant::now();
        let page = loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(format!("weft exited: {status}"));
            }
            if let Ok(r) = s.client.get(format!("{}/", s.base)).send().await {
                break r;
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err("weft did not answer".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let csrf = set_cookie(&page, "weft_signin").ok_or("no sign-in cookie")?;
        let r = s
            .client
            .post(format!("{}/ui/sign-in", s.base))
            .header("cookie", format!("weft_signin={csrf}"))
            .form(&[("api_key", key), ("next", "/"), ("csrf", csrf.as_str())])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        s.cookie = format!("weft_session={}", set_cookie(&r, "weft_session").ok_or("sign-in failed")?);
        Ok(s)
    }

    /// GETs a page signed in; its length.
    async fn page(&self, path: &str) -> Result<usize, String> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!(
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        Ok(body.len())
    }

    /// A `/proc/<pid>/status` field in MiB.
    fn status_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

fn compare_path() -> String {
    format!("/{PROJECT}/weave/compare?runs={},{}", RUNS[0], RUNS[1])
}

fn run_path() -> String {
    format!("/{PROJECT}/weave/runs/{}", RUNS[0])
}

/// Times both pages over HTTP.
async fn http_pages(s: &Server, label: &str, repeats: usize, out: &mut Vec<Line>) -> Result<(), String> {
    for (name, path) in [("compare page", compare_path()), ("run page", run_path())] {
        s.page(&path).await?;
        let pid = s.child.id().to_string();
        let cpu = cpu_ms(&pid);
        let mut ms = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let started = Instant::now();
            s.page(&path).await?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let cpu_ms = (cpu_ms(&pid) - cpu) / repeats as f64;
        ms.sort_by(f64::total_cmp);
        out.push(Line {
            what: format!("{label}: GET {name} over HTTP"),
            median_ms: ms[ms.len() / 2],
            fastest_ms: ms[0],
            cpu_ms,
        });
    }
    Ok(())
}

/// Peak RSS of a fresh server before and after one request of each page, in MiB.
async fn peak_rss(
    bin: &Path,
    store_args: &[String],
    key: &str,
    log: &Path,
) -> Result<Vec<(String, f64, f64)>, String> {
    let mut out = Vec::new();
    for (name, path) in [("compare page", compare_path()), ("run page", run_path())] {
        let s = Server::start(bin, store_args, key, log).await?;
        let before = s.status_mib("VmHWM:");
        s.page(&path).await?;
        out.push((name.to_string(), before, s.status_mib("VmHWM:")));
    }
    Ok(out)
}

fn print_table(args: &Args, lines: &[Line], memory: &[(String, f64, f64)], notes: &[String]) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!(
        "\n2 runs × {} examples (4 metrics each), 10,000 bootstrap resamples; {} repetitions; load {load}\n",
        args.examples, args.repeats
    );
    println!("| what | median | fastest | CPU per request |\n|---|---:|---:|---:|");
    for l in lines {
        println!("| {} | {:.1} ms | {:.1} ms | {:.0} ms |", l.what, l.median_ms, l.fastest_ms, l.cpu_ms);
    }
    if !memory.is_empty() {
        println!(
            "\n| page (fresh server, 10 KB outputs) | peak RSS before | after one request |\n|---|---:|---:|"
        );
        for (name, before, after) in memory {
            println!("| {name} | {before:.1} MiB | {after:.1} MiB |");
        }
    }
    for n in notes {
        println!("\n{n}");
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ui: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(&args)) {
        eprintln!("ui: {e}");
        std::process::exit(1);
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let bin = std::env::var_os("WEFT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weft")));
    let work = tempfile::Builder::new().prefix("weft-bench-ui-").tempdir().map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    let mut memory = Vec::new();
    let mut notes = Vec::new();

    // SQLite.
    let dir = work.path().join("sqlite");
    let store_args = vec!["--data-dir".to_string(), dir.display().to_string()];
    {
        let store = SqliteStore::open(&dir).map_err(|e| format!("open: {e}"))?;
        let started = Instant::now();
        let calls = fill(&store, args.examples, 40)?;
        eprintln!("ui: SQLite store filled with {calls} calls in {:.1} s", started.elapsed().as_secs_f64());
        domain_reads(&store, "SQLite", args.repeats, &mut lines)?;
    }
    let key = admin_key(&bin, &store_args)?;
    {
        let s = Server::start(&bin, &store_args, &key, &work.path().join("weft.log")).await?;
        http_pages(&s, "SQLite", args.repeats, &mut lines).await?;
    }
    if args.memory {
        let dir = work.path().join("sqlite-big");
        let store_args = vec!["--data-dir".to_string(), dir.display().to_string()];
        {
            let store = SqliteStore::open(&dir).map_err(|e| format!("open: {e}"))?;
            let started = Instant::now();
            fill(&store, args.examples, 10_000)?;
            eprintln!(
                "ui: SQLite store with 10 KB outputs filled in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        let key = admin_key(&bin, &store_args)?;
        memory = peak_rss(&bin, &store_args, &key, &work.path().join("weft-big.log")).await?;
        let _ = std::fs::remove_dir_all(&dir);
    }

    // ClickHouse, when given.
    match std::env::var("WEFT_BENCH_CLICKHOUSE_URL") {
        Ok(url) if !url.is_empty() => {
            let database = format!("weft_bench_ui_{}", std::process::id());
            let config = Config {
                url: url.clone(),
                database: database.clone(),
                user: std::env::var("WEFT_CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
                password: std::env::var("WEFT_CLICKHOUSE_PASSWORD").unwrap_or_default(),
            };
            let result = clickhouse(args, &bin, &config, work.path(), &mut lines).await;
            let q = Query::new(format!("DROP DATABASE IF EXISTS {database}"));
            let _ = Client::new(config).execute_in(&q, None);
            result?;
            notes.push(format!("ClickHouse: {url} (WEFT_BENCH_CLICKHOUSE_URL)."));
        }
        _ => notes.push("ClickHouse: not run (set WEFT_BENCH_CLICKHOUSE_URL to run it).".into()),
    }
    notes.push(
        "Direct calls run the domain function on a store opened in a temporary directory, in this \
         process; HTTP rows time a signed-in GET of the page from the weft binary, request to last byte \
         (CPU: the server's)."
            .into(),
    );
    print_table(args, &lines, &memory, &notes);
    Ok(())
}

async fn clickhouse(
    args: &Args,
    bin: &Path,
    config: &Config,
    work: &Path,
    lines: &mut Vec<Line>,
) -> Result<(), String> {
    {
        let store = ClickHouseStore::open(config.clone()).map_err(|e| format!("open ClickHouse: {e}"))?;
        let started = Instant::now();
        let calls = fill(&store, args.examples, 40)?;
        eprintln!(
            "ui: ClickHouse store filled with {calls} calls in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        domain_reads(&store, "ClickHouse", args.repeats, lines)?;
    }
    let store_args: Vec<String> =
        ["--store", "clickhouse", "--clickhouse-url", &config.url, "--clickhouse-database", &config.database]
            .map(String::from)
            .to_vec();
    let key = admin_key(bin, &store_args)?;
    let s = Server::start(bin, &store_args, &key, &work.join("weft-clickhouse.log")).await?;
    http_pages(&s, "ClickHouse", args.repeats, lines).await
}
