//! What the benchmarks that run the real weft binary share: starting it on a store with an
//! admin key, stopping it, and reading its memory from `/proc`.

use std::net::TcpStream;
use std::path::Path;
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
    let key = Command::new(bin)
        .args(["keys", "create", "--admin", "--data-dir"])
        .arg(dir)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("weft keys create: {e}"))?;
    let secret = String::from_utf8_lossy(&key.stdout).trim().to_string();
    if !key.status.success() || secret.is_empty() {
        return Err("weft keys create failed".into());
    }
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
