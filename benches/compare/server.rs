//! The servers' processes: starting one on a store, and reading its RSS and CPU time from
//! `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::data::MAIN;
use crate::http::Http;
use crate::reference::tail;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Impl {
    Weft,
    Ref,
    /// weft with `--store clickhouse` on the chdb test front.
    WeftClickHouse,
}

impl Impl {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Impl::Weft => "weft",
            Impl::Ref => "reference",
            Impl::WeftClickHouse => "weft on ClickHouse",
        }
    }
}

/// How to start one server on one store.
pub(crate) struct Launch {
    pub(crate) which: Impl,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) auth: String,
    pub(crate) log: PathBuf,
    /// Another running process whose CPU time counts as the server's (the ClickHouse front).
    pub(crate) backend_pid: Option<u32>,
}

pub(crate) struct Server {
    child: Child,
    pub(crate) pid: u32,
    /// Processes whose CPU time is the server's: `pid`, and the backend's if any.
    pub(crate) cpu_pids: Vec<u32>,
    pub(crate) http: Http,
    /// Process start to first answered list request.
    pub(crate) ready_after: Duration,
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

pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

impl Launch {
    /// Starts the server and waits for its first answered list request.
    pub(crate) async fn start(&self) -> Result<Server, String> {
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
pub(crate) fn proc_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// User + system CPU seconds of a process (`"self"` for this one).
pub(crate) fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of several processes together.
pub(crate) fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().map(|pid| cpu_secs(&pid.to_string())).sum()
}

pub(crate) fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_dir() {
        std::fs::read_dir(path).map(|rd| rd.flatten().map(|e| dir_bytes(&e.path())).sum()).unwrap_or(0)
    } else {
        meta.len()
    }
}
