//! Maintenance of the SQLite store while it is in use: online backups and the planner's
//! statistics.

use std::path::Path;

use rusqlite::Connection;

use super::{SqliteStore, storage};
use crate::domain::error::{Error, Result};

impl SqliteStore {
    /// Writes a consistent copy of the database to `target` while the store stays in use
    /// (SQLite's online backup, all pages in one step from one read snapshot).
    pub fn backup(&self, target: &Path) -> Result<()> {
        if target.exists() {
            return Err(Error::BadRequest(format!("{} exists already", target.display())));
        }
        let result = self.backup_to(target);
        if result.is_err() {
            // Leave no partial copy behind.
            let _ = std::fs::remove_file(target);
        }
        result
    }

    fn backup_to(&self, target: &Path) -> Result<()> {
        let src = self.reader()?;
        let mut dst = Connection::open(target).map_err(storage)?;
        {
            use rusqlite::backup::{Backup, StepResult};
            let backup = Backup::new(&src, &mut dst).map_err(storage)?;
            // -1: every page in one step, so the copy is one snapshot; retry while busy.
            let mut done = false;
            for _ in 0..1000 {
                if matches!(backup.step(-1).map_err(storage)?, StepResult::Done) {
                    done = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if !done {
                return Err(Error::Storage("the database stayed busy: backup not taken".into()));
            }
        }
        dst.execute_batch("PRAGMA journal_mode = DELETE;").map_err(storage)?;
        let ok: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(storage)?;
        if ok != "ok" {
            return Err(Error::Storage(format!("backup failed its integrity check: {ok}")));
        }
        Ok(())
    }

    /// Refreshes the query planner's statistics (cheap when nothing changed much).
    pub fn optimize(&self) -> Result<()> {
        let conn = Connection::open(&self.path).map_err(storage)?;
        conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA analysis_limit = 1000; PRAGMA optimize;")
            .map_err(storage)
    }
}
