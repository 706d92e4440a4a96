//! The report: the table of every workload's figures, the samples and the checks, written
//! as Markdown.

use std::fmt::Write as _;
use std::path::Path;

use crate::analysis::analysis;
use crate::format::{CH_LABEL, Unit, fmt, thousands};
use crate::workloads::{COMPLETE_CALLS, Round, UPSERT_CALLS};

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
    spec("3. deep page by cursor", "latency p50", "cursor.p50", Unit::Ms, false, "< 1 ms"),
    spec("3. deep page by cursor", "latency p99", "cursor.p99", Unit::Ms, false, ""),
    spec("3. deep page by cursor", "requests/s", "cursor.rate", Unit::Rate, true, ""),
    spec("3. deep filtered page by cursor", "latency p50", "cursorf.p50", Unit::Ms, false, "< 1 ms"),
    spec("3. deep filtered page by cursor", "latency p99", "cursorf.p99", Unit::Ms, false, ""),
    spec("4. lookup, 100 ids", "latency p50", "lookup.p50", Unit::Ms, false, ""),
    spec("4. lookup, 100 ids", "latency p99", "lookup.p99", Unit::Ms, false, ""),
    spec("4. lookup, 100 ids", "requests/s", "lookup.rate", Unit::Rate, true, ""),
    spec("5. create + finish, c=16", "runs/s", "create.rate", Unit::Rate, true, "≥ 5,000"),
    spec("5. create + finish, c=16", "pair latency p50", "create.p50", Unit::Ms, false, ""),
    spec("5. create + finish, c=16", "pair latency p99", "create.p99", Unit::Ms, false, ""),
    spec("5. upsert_batch, c=4", "calls/s", "upsert.rate", Unit::Rate, true, "≥ 50,000"),
    spec("5. upsert_batch, c=4", "batch latency p50", "upsert.p50", Unit::Ms, false, ""),
    spec("5. calls/complete (SDK 0.54), c=1", "calls/s", "complete1.rate", Unit::Rate, true, "≥ 100,000"),
    spec("5. calls/complete (SDK 0.54), c=1", "batch latency p50", "complete1.p50", Unit::Ms, false, ""),
    spec("5. calls/complete (SDK 0.54), c=8", "calls/s", "complete8.rate", Unit::Rate, true, "≥ 100,000"),
    spec("5. calls/complete (SDK 0.54), c=8", "batch latency p50", "complete8.p50", Unit::Ms, false, ""),
    spec("5. call/start + call/end, c=4", "calls/s", "single.rate", Unit::Rate, true, ""),
    spec("5. call/start + call/end, c=4", "call latency p50", "single.p50", Unit::Ms, false, ""),
    spec("6. cold start", "first start after load", "cold.first", Unit::Ms, false, ""),
    spec("6. cold start", "restart, p50", "cold.restart", Unit::Ms, false, ""),
    spec("6. cold start", "idle RSS after start", "idle_rss", Unit::MB, false, ""),
    spec("store", "size on disk", "db.mb", Unit::MB, false, ""),
];

/// Workloads the reference cannot run: `after=` (it has no such parameter) and `calls/complete`
/// (its route generator has no such route). Its cells say "n/a".
const WEFT_ONLY: &[&str] = &["cursor", "complete"];

fn ratio(weft: f64, reference: f64, higher_is_better: bool) -> String {
    let r = if higher_is_better { weft / reference } else { reference / weft };
    if !r.is_finite() {
        return "—".into();
    }
    if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.1}×") }
}

pub(crate) struct Context {
    pub(crate) command: String,
    /// `/proc/loadavg`'s 1, 5 and 15-minute averages when the bench started.
    pub(crate) load: String,
    pub(crate) ref_status: Result<String, String>,
    pub(crate) weft_bin_mb: f64,
    pub(crate) ref_venv_mb: Option<f64>,
    pub(crate) smoke: bool,
    /// With `--clickhouse`: ClickHouse's version, or why it did not run.
    pub(crate) clickhouse: Option<Result<String, String>>,
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

/// How the report names weft on ClickHouse.
/// Its column in the table.
const CH_COLUMN: &str = "weft on ClickHouse";

pub(crate) fn render(ctx: &Context, rounds: &[Round], notes_block: Option<&str>) -> String {
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
                "- {CH_LABEL}: the same weft binary with `--store clickhouse`, on ClickHouse {v}'s own \
                 HTTP server (the clickhouse-local of `chdb-core` with its listeners started, \
                 `scripts/clickhouse`), on the same machine, with `system.query_log` on. In this \
                 column, server CPU is weft's and ClickHouse's processes together; server RSS is \
                 weft's process alone; cold start is weft's start against the running server; \
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
             ClickHouse."
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
                None if ran && !WEFT_ONLY.iter().any(|k| sp.key.starts_with(k)) => "failed".into(),
                None if ran => "n/a".into(),
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
             deep page by cursor {}, filtered {}; lookup {}; create+finish {} pairs; \
             upsert_batch {} batches of {UPSERT_CALLS} calls; calls/complete c=1 {}, c=8 {} \
             batches of {COMPLETE_CALLS} calls; call/start + call/end {} calls.",
            thousands(r.n as f64),
            n("list.reps"),
            n("filt1.n"),
            n("filt16.n"),
            n("deep.n"),
            n("cursor.n"),
            n("cursorf.n"),
            n("lookup.n"),
            n("create.n"),
            n("upsert.n"),
            n("complete1.n"),
            n("complete8.n"),
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
    for r in rounds.iter().filter(|r| !r.ch_own.is_empty()) {
        let _ = writeln!(
            s,
            "ClickHouse's own time per query during weft's workloads on ClickHouse, N={} \
             (`system.query_log`, finished queries of the bench's database, by normalised query; \
             the shapes that took the most time in all first):\n",
            thousands(r.n as f64)
        );
        let _ = writeln!(
            s,
            "| queries | total s | p50 ms | p99 ms | rows read (p50) | query (normalised, from its FROM, cut) |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---|");
        for line in &r.ch_own {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s);
    }
    if let Some(block) = notes_block {
        let _ = writeln!(s, "{block}");
    }
    s
}

const NOTES_BEGIN: &str = "<!-- notes:begin (kept when the bench rewrites this file) -->";

/// What an existing report holds past the table this bench writes, kept across runs: its
/// hand-written notes block, and the sections after it (which other benches and notes add),
/// to the end of the file.
pub(crate) fn notes_block(path: &Path) -> Option<String> {
    let old = std::fs::read_to_string(path).ok()?;
    let start = old.find(NOTES_BEGIN)?;
    Some(old[start..].trim_end().to_string())
}
