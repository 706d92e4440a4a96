//! The command line, and the plan it makes: how many requests each workload sends.

use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: cargo bench --bench compare -- [--runs N[,N...]] [--ref-max N] [--smoke] \
     [--out FILE] [--refserver DIR] [--no-ref] [--keep DIR] [--load-only] [--clickhouse] [--clickhouse-max N]";

pub(crate) struct Args {
    pub(crate) runs: Vec<usize>,
    pub(crate) ref_max: usize,
    pub(crate) smoke: bool,
    pub(crate) out: Option<PathBuf>,
    pub(crate) refserver: Option<PathBuf>,
    pub(crate) no_ref: bool,
    pub(crate) keep: Option<PathBuf>,
    /// Only fill weft's SQLite stores (kept with `--keep`) and print their size: no server,
    /// no workloads, no report.
    pub(crate) load_only: bool,
    /// Also run weft on ClickHouse (the chdb test front).
    pub(crate) clickhouse: bool,
    /// Largest N run on ClickHouse.
    pub(crate) clickhouse_max: usize,
    /// The options as given, for the "produced by" line.
    pub(crate) given: Vec<String>,
}

pub(crate) fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runs: Vec::new(),
        ref_max: 100_000,
        smoke: false,
        out: None,
        refserver: Some(std::env::var_os("REFSERVER_DIR").map_or_else(
            || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/refserver")),
            PathBuf::from,
        )),
        no_ref: false,
        keep: None,
        load_only: false,
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
            "--load-only" => {
                a.load_only = true;
                a.given.push(arg);
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
pub(crate) struct Budget {
    pub(crate) time: Duration,
    pub(crate) max: usize,
    pub(crate) min: usize,
}

pub(crate) struct Plan {
    pub(crate) latency: Budget,
    pub(crate) list: Budget,
    pub(crate) writes: Budget,
    pub(crate) cold_weft: usize,
    pub(crate) cold_ref: usize,
}

impl Plan {
    pub(crate) fn new(smoke: bool) -> Plan {
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
