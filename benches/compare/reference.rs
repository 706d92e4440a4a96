//! The reference server (Weave's own SQLite trace server): its virtualenv, and its stores,
//! seeded by `seed_reference.py` and cached.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::data::{GEN_VERSION, Progress, call_json, generate, total_runs};
use crate::format::thousands;
use crate::options::Args;

pub(crate) struct RefEnv {
    pub(crate) dir: PathBuf,
    pub(crate) python: PathBuf,
    pub(crate) venv: PathBuf,
    pub(crate) version: String,
}

/// Finds (and if needed sets up) the reference server; `Err` says why it cannot run.
pub(crate) fn reference_env(args: &Args) -> Result<RefEnv, String> {
    if args.no_ref {
        return Err("not run (--no-ref)".into());
    }
    let dir =
        args.refserver.clone().ok_or("not configured (set REFSERVER_DIR or --refserver to its directory)")?;
    if !dir.join("refserver.py").is_file() {
        return Err(format!("no refserver.py in the reference directory ({})", dir.display()));
    }
    let venv = PathBuf::from(
        std::env::var("REFSERVER_VENV")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/refserver-venv").into()),
    );
    let python = venv.join("bin/python");
    if !python.exists() {
        if args.smoke {
            return Err("its virtualenv is missing (smoke mode does not set it up)".into());
        }
        eprintln!("reference: setting up its virtualenv (scripts/refserver --setup)...");
        let ok = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/refserver"))
            .arg("--setup")
            .env("REFSERVER_VENV", &venv)
            .status()
            .map_err(|e| format!("scripts/refserver: {e}"))?
            .success();
        if !ok || !python.exists() {
            return Err("scripts/refserver --setup failed".into());
        }
    }
    let out = Command::new(&python)
        .args(["-c", "import importlib.metadata as m; print(m.version('weave'))"])
        .output()
        .map_err(|e| format!("python: {e}"))?;
    if !out.status.success() {
        return Err("weave is not installed in its virtualenv".into());
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(RefEnv { dir, python, venv, version })
}

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-cache")
}

/// Puts the reference store for `n` runs at `db`: from the cache, or generated (and cached).
/// Returns the seconds spent generating (`None` when cached).
pub(crate) fn fill_ref(env: &RefEnv, db: &Path, n: usize, work: &Path) -> Result<Option<f64>, String> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let cached = cache.join(format!("reference-v{GEN_VERSION}-{n}.db"));
    let mut secs = None;
    if !cached.exists() {
        let script = work.join("seed_reference.py");
        std::fs::write(&script, include_str!("../seed_reference.py")).map_err(|e| e.to_string())?;
        let partial = cache.join(format!("reference-v{GEN_VERSION}-{n}.db.partial"));
        let _ = std::fs::remove_file(&partial);
        let log = work.join("seed_reference.log");
        let mut child = Command::new(&env.python)
            .arg(&script)
            .arg("--db")
            .arg(&partial)
            .arg("--refserver-dir")
            .arg(&env.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("seed_reference.py: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut w = BufWriter::with_capacity(1 << 20, stdin);
        let mut broken = false;
        let mut progress =
            Progress::new(&format!("reference store, N={}", thousands(n as f64)), total_runs(n));
        let data = generate(n, &mut progress, &mut |c| {
            if !broken {
                broken =
                    serde_json::to_writer(&mut w, &call_json(&c)).is_err() || w.write_all(b"\n").is_err();
            }
        });
        broken |= w.flush().is_err();
        drop(w);
        let status = child.wait().map_err(|e| e.to_string())?;
        let s = progress.finish(data.calls);
        if broken || !status.success() {
            return Err(format!("seeding failed: {}", tail(&log, 5)));
        }
        std::fs::rename(&partial, &cached).map_err(|e| e.to_string())?;
        secs = Some(s);
    } else {
        eprintln!("  reference store, N={}: cached ({})", thousands(n as f64), cached.display());
    }
    std::fs::copy(&cached, db).map_err(|e| format!("copy cached store: {e}"))?;
    Ok(secs)
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}
