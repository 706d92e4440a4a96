//! The web UI's reads at scale: the runs page (newest first: first, middle and last page;
//! filtered by model and by evaluation), the filters' choices, and the leaderboard (50 models
//! × 20 evaluations), over one project of N runs (1,000,000 by default) on the SQLite store.
//!
//! Times are server time without HTTP: the domain functions a page calls
//! (`run_table::list`, `Store::run_values`, `leaderboard::build`), each the median (p50) of
//! repeated calls on a warm store, in this process.
//!
//! `cargo bench --bench ui` (full size), `cargo bench --bench ui -- --smoke` (CI: 20,000 runs,
//! a few repetitions, only checks that every workload answers), `--runs N`, `--dir PATH`
//! (keep the filled store there and reuse it on the next start).

use std::time::{Duration, Instant};

use serde_json::json;
use weft::domain::call::{Call, Micros};
use weft::domain::leaderboard::{self, LeaderboardQuery, Pick};
use weft::domain::page::Page;
use weft::domain::run_rows::{RunCursor, RunDimension};
use weft::domain::run_table::{self, Position, RunTableQuery};
use weft::domain::store::{Store, write};
use weft::store::sqlite::SqliteStore;

const PROJECT: &str = "bench/ui";
const EVALS: usize = 20;
const MODELS: usize = 50;
/// 2025-01-01T00:00:00Z.
const BASE: Micros = 1_735_689_600_000_000;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn object(name: &str) -> String {
    format!(
        "weave:///{PROJECT}/object/{name}:{:016x}{:016x}",
        mix(name.len() as u64),
        mix(name.as_bytes()[name.len() - 1] as u64)
    )
}

/// Run `i`: its start, id, evaluation and model.
fn run_at(i: usize) -> (Micros, String, usize, usize) {
    let h = mix(i as u64);
    let t = BASE + i as i64 * 10_000 + (h % 9_000) as i64;
    let id = format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        t >> 20,
        (t >> 4) & 0xffff,
        h & 0xfff,
        (h >> 12) & 0xfff,
        h >> 16
    );
    (t, id, (h >> 40) as usize % EVALS, (h >> 48) as usize % MODELS)
}

fn fill(store: &dyn Store, n: usize) {
    let evals: Vec<String> = (0..EVALS).map(|e| object(&format!("Eval{e}"))).collect();
    let models: Vec<String> = (0..MODELS).map(|m| object(&format!("Model{m}"))).collect();
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + 20_000).min(n);
        let calls: Vec<Call> = (i..end)
            .map(|k| {
                let (t, id, e, m) = run_at(k);
                let mut c = Call::new(PROJECT, "Evaluation.evaluate", t);
                c.id = id.clone();
                c.trace_id = id;
                c.attributes =
                    json!({"weave": {"evaluation_run": "true", "evaluation": evals[e], "model": models[m]}});
                c.inputs = json!({"self": evals[e], "model": models[m]});
                if k % 10 != 9 {
                    let h = mix(k as u64 ^ 0xabc);
                    c.ended_at = Some(t + 5_000);
                    c.summary = Some(json!({
                        "accuracy": {"mean": (h % 10_000) as f64 / 1e4},
                        "latency": {"mean": (h >> 20) as f64 % 3_000.0 / 1e3},
                        "tokens": {"total": (h >> 40) % 100_000},
                    }));
                }
                c
            })
            .collect();
        write(store, move |w| calls.iter().try_for_each(|c| w.insert_call(c))).expect("fill");
        i = end;
        eprint!("\rfilled {i} runs");
    }
    eprintln!(" in {:.1} s", started.elapsed().as_secs_f64());
}

/// Median of `reps` timed calls of `f`, in milliseconds.
fn p50(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let n: usize =
        value("--runs").map_or(if smoke { 20_000 } else { 1_000_000 }, |v| v.parse().expect("--runs N"));
    let reps = if smoke { 3 } else { 30 };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = value("--dir").map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir).expect("data dir");
    let store = SqliteStore::open(&dir).expect("open store");
    let mut have = 0;
    store
        .projects(&mut |p| {
            if p.project_id == PROJECT {
                have = p.runs as usize;
            }
            true
        })
        .expect("projects");
    if have != n {
        assert_eq!(have, 0, "{} holds {have} runs, not {n}: use another --dir", dir.display());
        fill(&store, n);
    }
    let store: &dyn Store = &store;
    let model = object("Model7");
    let evaluation = object("Eval3");
    let cursor = |i: usize| {
        let (started_at, id, _, _) = run_at(i);
        RunCursor { started_at, id }
    };
    let page = |q: RunTableQuery| {
        move || {
            let p = run_table::list(store, PROJECT, &q).expect("page");
            assert!(!p.rows.is_empty());
        }
    };
    let newest = RunTableQuery { page: Page { limit: Some(50), offset: 0 }, ..Default::default() };
    // The cursor of the model's run at about the middle of its runs, newest first.
    let mid_of = |wanted: usize| (0..n).rev().filter(|&i| run_at(i).3 == 7).nth(wanted).map(cursor);
    let model_runs = (0..n).filter(|&i| run_at(i).3 == 7).count();
    let rows: Vec<(&str, f64)> = vec![
        ("runs page, newest first: first page", p50(reps, page(newest.clone()))),
        (
            "runs page, newest first: middle page",
            p50(reps, page(RunTableQuery { position: Position::After(cursor(n / 2)), ..newest.clone() })),
        ),
        (
            "runs page, newest first: last page",
            p50(reps, page(RunTableQuery { position: Position::After(cursor(50)), ..newest.clone() })),
        ),
        (
            "runs page, one model: first page",
            p50(reps, page(RunTableQuery { models: vec![model.clone()], ..newest.clone() })),
        ),
        (
            "runs page, one model: middle page",
            p50(
                reps,
                page(RunTableQuery {
                    models: vec![model.clone()],
                    position: Position::After(mid_of(model_runs / 2).expect("model runs")),
                    ..newest.clone()
                }),
            ),
        ),
        (
            "runs page, one evaluation: first page",
            p50(reps, page(RunTableQuery { evaluations: vec![evaluation.clone()], ..newest.clone() })),
        ),
        (
            "runs page: the filters' choices (evaluations and models)",
            p50(reps, || {
                let e = store.run_values(PROJECT, RunDimension::Evaluation, 1_000).expect("values");
                let m = store.run_values(PROJECT, RunDimension::Model, 1_000).expect("values");
                assert_eq!((e.len(), m.len()), (EVALS, MODELS));
            }),
        ),
        (
            "leaderboard 50 × 20, latest run per cell",
            p50(reps, || {
                let lb =
                    leaderboard::build(store, PROJECT, &LeaderboardQuery::default()).expect("leaderboard");
                assert_eq!((lb.models.len(), lb.evaluations.len()), (MODELS, EVALS));
            }),
        ),
        (
            "leaderboard 50 × 20, best run per cell (reads every run)",
            p50(if smoke { 1 } else { 3 }, || {
                let q = LeaderboardQuery { pick: Pick::Best, ..Default::default() };
                leaderboard::build(store, PROJECT, &q).expect("leaderboard");
            }),
        ),
    ];
    println!(
        "\nweft web UI reads, SQLite, {n} runs (20 evaluations × 50 models), server time p50 of {reps} calls\n"
    );
    println!("| Workload | p50 |\n|---|---:|");
    for (name, ms) in rows {
        println!("| {name} | {ms:.2} ms |");
    }
}
