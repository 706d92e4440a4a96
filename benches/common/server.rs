//! What the benchmarks that run the real weft binary share: their options, starting it on a
//! store with an admin key, stopping it, reading its memory from `/proc`, and what one
//! measured request gives.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running weft server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub auth: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`), 0 if unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Starts `bin serve` on `dir` with a new admin key, once it listens.
pub fn start(bin: &Path, dir: &Path) -> Result<Server, String> {
    let secret = super::keys::admin_key(bin, &["--data-dir".into(), dir.display().to_string()])?;
    use base64::Engine;
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("api:{secret}")));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let server = Server { child, port, auth };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("weft not listening after 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}

/// A bench's options: `--smoke` (CI: 2,000 items, one repetition), `<count_flag> N` (100,000
/// by default) and `--reps R` (3 by default).
pub struct Options {
    pub n: u64,
    pub reps: usize,
}

/// Reads [`Options`] from the command line; `count_flag` names the count (`--calls`...).
pub fn options(count_flag: &str) -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let n = match value(count_flag) {
        Some(v) => v.parse().map_err(|_| format!("{count_flag} N"))?,
        None if smoke => 2_000,
        None => 100_000,
    };
    let reps = match value("--reps") {
        Some(v) => v.parse().map_err(|_| "--reps R")?,
        None if smoke => 1,
        None => 3,
    };
    Ok(Options { n, reps })
}

/// The server binary: `WEFT_BIN`, else this package's own.
pub fn weft_bin() -> PathBuf {
    std::env::var_os("WEFT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weft")))
}

/// One measured request, read to its end.
pub struct Measure {
    /// Time to the response's first byte.
    pub ttfb: Duration,
    pub total: Duration,
    pub rows: usize,
    pub bytes: usize,
    /// How far the server's peak resident set grew past its resident set before the request.
    pub rss_growth_kib: u64,
}

impl Measure {
    /// Keeps in `best` the fastest of its runs, with the largest growth seen.
    pub fn keep_best(self, best: &mut Option<Measure>) {
        let growth = best.as_ref().map_or(0, |b| b.rss_growth_kib).max(self.rss_growth_kib);
        if best.as_ref().is_none_or(|b| self.total < b.total) {
            *best = Some(self);
        }
        if let Some(b) = best.as_mut() {
            b.rss_growth_kib = growth;
        }
    }
}

/// Milliseconds, rounded.
pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
