//! The report's "Where the time goes": measured CPU accounting, in words.

use std::fmt::Write as _;

use crate::format::{CH_LABEL, Unit, fmt, thousands};
use crate::workloads::{Measured, Round, keys};
/// Measured CPU accounting, in words.
pub(crate) fn analysis(rounds: &[Round]) -> String {
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
        if let Some(rf) = r.reference.as_ref().filter(|rf| rf.get(p50).is_some() || !weft_only(k)) {
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
            "\n{CH_LABEL}, N={}: server CPU is weft's process and ClickHouse's together.\n",
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

/// Whether workload `k` is one the reference cannot run (`after=`, `calls/complete`).
fn weft_only(k: &str) -> bool {
    k.starts_with("cursor") || k.starts_with("complete")
}

/// The latency workloads of the analysis, by label and key.
const WORKLOADS: [(&str, &str); 11] = [
    ("Filtered page (c=1)", "filt1"),
    ("Filtered page (c=16)", "filt16"),
    ("Deep page", "deep"),
    ("Deep page by cursor", "cursor"),
    ("Deep filtered page by cursor", "cursorf"),
    ("Lookup", "lookup"),
    ("Create + finish (per pair)", "create"),
    ("upsert_batch (per batch)", "upsert"),
    ("calls/complete, c=1 (per batch of 1,000)", "complete1"),
    ("calls/complete, c=8 (per batch of 1,000)", "complete8"),
    ("call/start + call/end (per call)", "single"),
];
