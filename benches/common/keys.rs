//! An admin key for a benchmark's server, made with the real weft binary.

use std::path::Path;
use std::process::{Command, Stdio};

/// The secret of a new admin key of the store `store_args` names (`--data-dir DIR`, or the
/// ClickHouse options), made by `bin keys create --admin`.
pub fn admin_key(bin: &Path, store_args: &[String]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(store_args)
        .args(["keys", "create", "--admin"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("weft keys create: {e}"))?;
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || key.is_empty() {
        return Err("weft keys create failed".into());
    }
    Ok(key)
}
