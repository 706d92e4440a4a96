//! The SQLite store's schema (`schema.sql`) and its migrations from older versions.

use rusqlite::Connection;

use crate::domain::error::{Error, Result};

/// The schema of a new store, and what [`upgrade`] recreates.
pub(super) const SCHEMA: &str = include_str!("schema.sql");

/// The version of [`SCHEMA`], kept in the file's `user_version`.
pub(super) const SCHEMA_VERSION: i64 = 2;

/// What opening a store of an older schema version drops before [`SCHEMA`] recreates it,
/// by the version that changed it: 2 narrowed `calls_views` to predictions and scores (runs
/// are looked up by id in the new `calls_runs_ids`).
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(2, "DROP INDEX IF EXISTS calls_views;")];

/// Brings the schema of the store open on `writer` to [`SCHEMA_VERSION`]: refuses a newer
/// one, applies the [`MIGRATIONS`] past an older one's version, then creates what [`SCHEMA`]
/// holds and the store lacks. `at` names the file in errors.
pub(super) fn upgrade(writer: &Connection, at: impl Fn(rusqlite::Error) -> Error) -> Result<()> {
    let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(&at)?;
    if version > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "database schema version {version} is newer than this weft ({SCHEMA_VERSION})"
        )));
    }
    // One transaction: a store is left at its old version or fully at the new one.
    let mut upgrade = String::from("BEGIN IMMEDIATE;");
    for (_, sql) in MIGRATIONS.iter().filter(|(to, _)| version < *to) {
        upgrade.push_str(sql);
    }
    upgrade.push_str(SCHEMA);
    upgrade.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"));
    writer.execute_batch(&upgrade).map_err(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::Call;
    use crate::domain::run_rows::RunQuery;
    use crate::domain::store::Store;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn a_version_1_store_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 5);
        run.attributes = serde_json::json!({"weave": {"evaluation_run": "true"}});
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let r = run.clone();
            crate::domain::store::write(&store, move |w| w.insert_call(&r)).unwrap();
        }
        {
            // The version 1 schema: `calls_views` over every kind, no `calls_runs_ids`.
            let c = Connection::open(dir.path().join("weft.db")).unwrap();
            c.execute_batch(
                "DROP INDEX calls_views; DROP INDEX calls_runs_ids; \
                 CREATE INDEX calls_views ON calls (project_id, kind, run_id, started_at, id) \
                 WHERE kind IS NOT NULL AND deleted_at IS NULL; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let views: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'calls_views'", [], |r| r.get(0))
            .unwrap();
        assert!(views.contains("kind = 'prediction' OR kind = 'score'"), "{views}");
        let entries: i64 =
            conn.query_row("SELECT count(*) FROM calls INDEXED BY calls_runs_ids WHERE id = ?1 AND kind = 'run' AND deleted_at IS NULL", [&run.id], |r| r.get(0)).unwrap();
        assert_eq!(entries, 1);
        let mut found = Vec::new();
        let q = RunQuery { ids: vec![run.id.clone()], ..Default::default() };
        store
            .eval_runs("e/p", &q, &mut |row| {
                found.push(row.id.to_string());
                true
            })
            .unwrap();
        assert_eq!(found, [run.id.clone()]);
    }
}
