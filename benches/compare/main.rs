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
//! `refserver.py`; default the project's own, `tests/refserver`), `--no-ref`. The reference
//! runs in the Python virtualenv `REFSERVER_VENV` (default `target/refserver-venv`, as the test
//! script uses), made by `scripts/refserver --setup` when missing. `--keep DIR` makes weft's stores in `DIR/weft-<N>` and keeps them
//! (with an admin key in `DIR/weft-<N>.key`), e.g. to profile a workload by hand afterwards.
//! `--load-only` fills weft's SQLite stores, prints their size on disk and stops (with
//! `--keep`, e.g. to see where the bytes go with SQLite's `dbstat`).
//! Without a usable reference, weft runs alone and the table says so.
//!
//! `--clickhouse` (off by default) adds a third server: weft with `--store clickhouse` on
//! ClickHouse 26.9's own HTTP server (`scripts/clickhouse`: the clickhouse-local of
//! `chdb-core` with its listeners started, which makes its virtualenv when missing), with
//! `system.query_log` on. The bench starts it on a fresh data directory and stops it at the
//! end; each N gets a fresh database. `--clickhouse-max N` is the largest N run on ClickHouse
//! (default 100,000). After each N the report lists ClickHouse's own time per query shape
//! (from `system.query_log`), to set against weft's latency per request. Its "server CPU" is
//! weft's and ClickHouse's processes together; its RSS is weft's process alone.
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
//! 3. deep page (offset N/2), and the same page by cursor (`after=`, weft only: the reference
//!    has no such parameter), unfiltered and filtered by two models;
//! 4. lookup of 100 ids;
//! 5. create + finish of runs at concurrency 16, `call/upsert_batch` ingestion, the official
//!    SDK's `calls/complete` batches of 1,000 calls at concurrency 1 and 8 (weft only: the
//!    reference has no such route), and
//!    `call/start` + `call/end` one call at a time;
//! 6. cold start (process start to first answered list request) and binary size.
//!
//! Server RSS and CPU time come from `/proc/<pid>`.
//!
//! Layout (`benches/compare/`):
//!
//! - `main.rs`: this entry point, running every N in turn;
//! - `options.rs`: the command line, and the plan (request budgets) it makes;
//! - `data.rs`: the deterministic generator, and the bulk fill of weft's stores;
//! - `reference.rs`: the reference server's virtualenv and its seeded, cached stores
//!   (`benches/seed_reference.py`);
//! - `clickhouse.rs`: ClickHouse's server for the bench, and weft's round on it;
//! - `server.rs`: starting a server process, and its RSS and CPU time from `/proc`;
//! - `http.rs`: the HTTP client of the workloads;
//! - `load.rs`: the load driver (concurrent workers within a budget);
//! - `workloads.rs`: workloads 1 to 6 against one server, and what they measure;
//! - `report.rs`: the Markdown report (table, samples, checks);
//! - `analysis.rs`: the report's CPU accounting ("Where the time goes").

mod analysis;
mod clickhouse;
mod data;
mod format;
mod http;
#[path = "../common/keys.rs"]
mod keys;
mod load;
mod options;
mod reference;
mod report;
mod server;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Instant;

use weft::store::sqlite::SqliteStore;

use crate::clickhouse::{ChServer, clickhouse_round};
use crate::data::fill_weft;
use crate::format::thousands;
use crate::options::{Args, Plan, parse_args};
use crate::reference::{fill_ref, reference_env};
use crate::report::{Context, notes_block, render};
use crate::server::{Impl, Launch, basic_auth, dir_bytes};
use crate::workloads::{Round, bench_server};

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
    if ref_env.is_ok()
        && !args.given.iter().any(|a| a == "--refserver")
        && std::env::var_os("REFSERVER_DIR").is_some()
    {
        command = format!("REFSERVER_DIR=<reference server dir> {command}");
    }
    eprintln!("compare: N = {:?}, reference up to N = {}", args.runs, args.ref_max);
    if args.clickhouse {
        eprintln!("compare: weft on ClickHouse up to N = {}", args.clickhouse_max);
    }

    let work = tempfile::Builder::new().prefix("weft-bench-").tempdir().map_err(|e| e.to_string())?;
    // Declared after `work`, so it stops before its data directory goes.
    let clickhouse_server = if !args.clickhouse {
        None
    } else if args.runs.iter().all(|&n| n > args.clickhouse_max) {
        Some(Err(format!("every N is above --clickhouse-max {}", thousands(args.clickhouse_max as f64))))
    } else {
        eprintln!("clickhouse: starting ClickHouse (scripts/clickhouse)");
        let clickhouse_server =
            ChServer::start(root, &work.path().join("clickhouse-data"), &work.path().join("clickhouse.log"));
        match &clickhouse_server {
            Ok(f) => eprintln!("clickhouse: ClickHouse {} at {}", f.version, f.url),
            Err(why) => eprintln!("clickhouse: {why}; running without it"),
        }
        Some(clickhouse_server)
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
        if args.load_only {
            eprintln!(
                "  weft store, N={}: {} calls, {:.1} MB on disk",
                thousands(n as f64),
                thousands(data.calls as f64),
                dir_bytes(&dir) as f64 / 1e6
            );
            continue;
        }
        let secret = keys::admin_key(&weft_bin, &["--data-dir".into(), dir.display().to_string()])?;
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

        let (mut clickhouse, mut ch_gen_secs, mut ch_skipped, mut ch_own) = (None, None, None, Vec::new());
        match &clickhouse_server {
            Some(Ok(f)) if n <= args.clickhouse_max => {
                let started = Instant::now();
                match clickhouse_round(f, &weft_bin, n, &plan, work.path()).await {
                    Ok(r) => {
                        clickhouse = Some(r.m);
                        ch_gen_secs = Some(r.gen_secs);
                        ch_own = r.own;
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
            ch_own,
        });
    }
    if args.load_only {
        return Ok(());
    }
    let clickhouse = clickhouse_server.map(|f| f.map(|f| f.version.clone()));

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
