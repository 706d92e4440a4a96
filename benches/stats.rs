//! Timing of the statistics behind the compare and leaderboard views: the paired bootstrap,
//! comparing runs, aligning their examples, and flattening scores and summaries into metrics.
//! Prints a table of median times (release build).
//!
//! ```sh
//! cargo bench --bench stats              # every case
//! cargo bench --bench stats -- --quick   # fewer repetitions
//! ```
//!
//! Data is deterministic: runs of 10,000 examples whose metrics are three numbers and one
//! boolean (or the first number alone), candidates that differ from the baseline a little.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use weft::domain::compare::{ExampleMetrics, RunExamples, Sort, align, compare};
use weft::domain::examples::Example;
use weft::domain::metrics::{Metric, MetricKind, summary_metrics};
use weft::domain::stats::{Bootstrap, RESAMPLES, bootstrap_means};

const EXAMPLES: usize = 10_000;

/// A small deterministic generator for the data (not the one under test).
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The scores of one example as a scorer logs them: a boolean, a number, an object of both.
fn scores(rng: &mut Lcg, shift: f64) -> Map<String, Value> {
    let s = (rng.unit() + shift).min(1.0);
    json!({
        "exact_match": rng.unit() < 0.6 + shift,
        "f1": s,
        "judge": {"relevance": (rng.unit() * 5.0).round(), "reason": "the answer names the right city"},
    })
    .as_object()
    .unwrap()
    .clone()
}

fn examples(seed: u64, shift: f64) -> Vec<Example> {
    let mut rng = Lcg(seed);
    (0..EXAMPLES)
        .map(|i| Example {
            id: format!("p{i}"),
            call_id: format!("c{i}"),
            row_key: format!("{:064x}", i as u64 * 0x9E37_79B9_7F4A_7C15),
            inputs: Value::Null,
            output: Value::Null,
            scores: scores(&mut rng, shift),
            latency: Some(0.2 + rng.unit()),
            error: None,
            started_at: 0,
        })
        .collect()
}

fn run(id: &str, examples: &[Example], metrics: usize) -> RunExamples {
    RunExamples {
        run_id: id.into(),
        examples: examples
            .iter()
            .map(|e| {
                let mut m = ExampleMetrics::of(e);
                // Keep `f1` alone for the one-metric case.
                if metrics == 1 {
                    m.metrics.retain(|x| x.name == "f1");
                }
                m
            })
            .collect(),
    }
}

/// The cases run and their median times; `--only TEXT` runs the cases whose name holds TEXT.
struct Bench {
    only: Option<String>,
    rows: Vec<Row>,
}

impl Bench {
    fn case<T>(&mut self, name: String, reps: usize, f: impl FnMut() -> T) {
        if self.only.as_deref().is_some_and(|o| !name.contains(o)) {
            return;
        }
        let cpu = cpu_time();
        let (med, min) = median(reps, f);
        // CPU time of the process (all threads) per call, warm-up call included.
        let per_call = (cpu_time() - cpu) / (reps as u32 + 1);
        eprintln!("{name}: median {}, min {}, CPU {}", ms(med), ms(min), ms(per_call));
        self.rows.push(Row { name, median: med, min, cpu: per_call });
    }
}

struct Row {
    name: String,
    median: Duration,
    min: Duration,
    cpu: Duration,
}

/// User and system time of this process so far, all threads, from `/proc/self/stat` (in
/// clock ticks, taken as 100 a second as on Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let ticks: u64 = after.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Median and least wall time of `reps` calls (after one warm-up call).
fn median<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    black_box(f());
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[reps / 2], times[0])
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (heavy, light) = if quick { (3, 5) } else { (11, 31) };
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut b = Bench { only: std::env::args().skip_while(|a| a != "--only").nth(1), rows: Vec::new() };

    let base_ex = examples(1, 0.0);
    let cand_ex: Vec<Vec<Example>> = (0..7).map(|k| examples(2 + k, 0.02 * k as f64)).collect();
    let base4 = run("base", &base_ex, 4);
    let cands4: Vec<RunExamples> =
        cand_ex.iter().enumerate().map(|(k, e)| run(&format!("c{k}"), e, 4)).collect();
    let base1 = run("base", &base_ex, 1);
    let cand1 = run("c0", &cand_ex[0], 1);
    let auto = Bootstrap::default();
    let one = Bootstrap { threads: 1, ..auto };

    // The bootstrap alone, on the paired differences.
    let diffs: Vec<Vec<f64>> = (0..4)
        .map(|m| {
            let mut rng = Lcg(100 + m);
            (0..EXAMPLES).map(|_| rng.unit() - 0.45).collect()
        })
        .collect();
    let cols: Vec<&[f64]> = diffs.iter().map(Vec::as_slice).collect();
    for (label, o) in [("1 thread", one), ("auto threads", auto)] {
        for k in [1, 4] {
            b.case(
                format!("bootstrap alone, 10k pairs × {RESAMPLES} resamples, {k} metric(s), {label}"),
                heavy,
                || bootstrap_means(&cols[..k], &o),
            );
        }
    }

    // Comparing runs: what a compare request computes once the examples are read.
    for (label, o) in [("1 thread", one), ("auto threads", auto)] {
        b.case(format!("compare 2 runs × 10k examples, 1 metric, {label}"), heavy, || {
            compare(&base1, std::slice::from_ref(&cand1), &o).unwrap()
        });
        b.case(format!("compare 2 runs × 10k examples, 4 metrics, {label}"), heavy, || {
            compare(&base4, &cands4[..1], &o).unwrap()
        });
    }
    b.case("compare 8 runs × 10k examples, 4 metrics, auto threads".into(), 3.min(heavy), || {
        compare(&base4, &cands4, &auto).unwrap()
    });

    // What comes before and after: flattening the examples' scores, and the per-example view.
    b.case("flatten the scores of 2 runs × 10k examples into metrics".into(), light, || {
        let a = base_ex.iter().map(ExampleMetrics::of).collect::<Vec<_>>();
        let b = cand_ex[0].iter().map(ExampleMetrics::of).collect::<Vec<_>>();
        (a, b)
    });
    b.case("align 2 runs × 10k examples on one metric, sorted by delta".into(), light, || {
        let mut al = align(&base4, &cands4[..1], "f1").unwrap();
        al.sort(0, Sort::RegressedFirst);
        al
    });

    // The leaderboard and run-list columns: 1,000 runs' summaries flattened into metrics, and
    // the mean of each metric over each run's examples (the leaderboard's figures when no
    // summary was logged).
    let summaries: Vec<Value> = (0..1_000)
        .map(|i| {
            let f = i as f64 / 1_000.0;
            json!({
                "exact_match": {"true_count": i, "true_fraction": f},
                "f1": {"mean": f},
                "judge": {"relevance": {"mean": 3.0 + f}, "ok": {"true_count": i, "true_fraction": f}},
                "model_latency": {"mean": 0.2 + f},
                "usage": {"gpt-4o-mini": {"prompt_tokens": 12_000 + i, "completion_tokens": 900, "requests": 100}},
                "weave": {"status": "success", "latency_ms": 1234},
            })
        })
        .collect();
    b.case("leaderboard: flatten 1,000 run summaries into metrics".into(), light, || {
        summaries.iter().map(summary_metrics).collect::<Vec<Vec<Metric>>>()
    });
    b.case("leaderboard: per-metric means of 8 runs × 10k examples".into(), light, || {
        std::iter::once(&base4)
            .chain(&cands4)
            .map(|r| {
                let mut sums: Vec<(&str, f64, usize)> = Vec::new();
                for e in &r.examples {
                    for (j, m) in e.metrics.iter().enumerate() {
                        if sums.len() <= j {
                            sums.push((m.name.as_str(), 0.0, 0));
                        }
                        sums[j].1 += m.value;
                        sums[j].2 += usize::from(m.kind == MetricKind::Boolean || m.value.is_finite());
                    }
                }
                sums.into_iter().map(|(n, s, k)| (n, s / k as f64)).collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    });

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!("\nRelease build, {cores} cores visible, load average {load} at the end.");
    println!("Wall: median and least of the repetitions; CPU: process CPU time per call, all threads.\n");
    println!("| case | wall, median | wall, least | CPU per call |");
    println!("|---|---:|---:|---:|");
    for r in &b.rows {
        println!("| {} | {} | {} | {} |", r.name, ms(r.median), ms(r.min), ms(r.cpu));
    }
}
