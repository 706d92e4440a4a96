//! Writes to the SQLite store: the writer thread's transaction (a batch of jobs, each in a
//! savepoint of its own) and the writes of a job, as the domain's [`Writer`].

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::keys;
use super::rows::*;
use super::storage;
use crate::domain::call::{Call, Micros};
use crate::domain::costs::LlmPrice;
use crate::domain::error::{Error, Result};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::ObjectVersion;
use crate::domain::run_rows::RunHead;
use crate::domain::sessions::Session;
use crate::domain::store::{CallEndFields, Writer};
use crate::domain::view::ViewColumns;
use crate::store::writer::{Backend, Batch};

/// The write connection, owned by the writer thread.
pub(super) struct WriteConnection(pub(super) Connection);

impl Backend for WriteConnection {
    type Batch<'a> = Transaction<'a>;

    fn begin(&mut self) -> Result<Transaction<'_>> {
        exec(&self.0, "BEGIN IMMEDIATE")?;
        Ok(Transaction { tx: Tx(&self.0), last_error: None })
    }
}

/// A batch of jobs in one transaction, each job in its own savepoint so that one job's error
/// undoes only its own writes.
pub(super) struct Transaction<'a> {
    tx: Tx<'a>,
    /// The error of the batch's last failed job.
    last_error: Option<Error>,
}

impl Batch for Transaction<'_> {
    fn begin_job(&mut self) -> Result<()> {
        let begun = exec(&self.tx, "SAVEPOINT job");
        if let Err(e) = &begun {
            self.last_error = Some(e.clone());
        }
        begun
    }

    fn writer(&mut self) -> &mut dyn Writer {
        &mut self.tx
    }

    fn end_job(&mut self, outcome: Result<()>) -> Result<()> {
        let conn = self.tx.0;
        let ended = if outcome.is_ok() {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        // The job's own error says more than a failure to undo it.
        let outcome = outcome.and(ended);
        if let Err(e) = &outcome {
            self.last_error = Some(e.clone());
        }
        outcome
    }

    fn commit(self) -> Result<()> {
        let conn = self.tx.0;
        // Some errors (a full disk, say) make SQLite roll the whole transaction back: then
        // every job of the batch is lost, and each is told so.
        let committed = if conn.is_autocommit() {
            Err(self.last_error.unwrap_or_else(|| Error::Storage("the transaction was rolled back".into())))
        } else {
            exec(conn, "COMMIT")
        };
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        committed
    }
}

/// Runs a statement of the writer's transaction control, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut s| s.raw_execute()).map(drop).map_err(storage)
}

/// The write connection inside a transaction, as the domain's [`Writer`].
struct Tx<'a>(&'a Connection);

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0
    }
}

/// Inserts a call's row, `conflict` saying what a taken id does; returns the rows inserted.
fn insert_call_row(conn: &Connection, c: &Call, conflict: &str) -> rusqlite::Result<usize> {
    let v = ViewColumns::of(c);
    conn.prepare_cached(&format!(
        "INSERT INTO calls (project_id, id, trace_id, parent_id, op_name, display_name, \
         started_at, ended_at, exception, attributes, inputs, output, summary, wb_user_id, \
         kind, evaluation, model, run_id, logged_run, thread_id, turn_id, wb_run_id, wb_run_step, \
         wb_run_step_end) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
         ?20, ?21, ?22, ?23, ?24) {conflict}"
    ))?
    .execute(params![
        c.project_id,
        c.id,
        c.trace_id,
        c.parent_id,
        c.op_name,
        c.display_name,
        c.started_at,
        c.ended_at,
        c.exception,
        json_text(&c.attributes),
        json_text(&c.inputs),
        c.output.as_ref().map(json_text),
        c.summary.as_ref().map(json_text),
        c.wb_user_id,
        v.kind.tag(),
        v.evaluation,
        v.model,
        v.run_id,
        v.logged_run,
        c.thread_id,
        c.turn_id,
        c.wb_run_id,
        c.wb_run_step,
        c.wb_run_step_end,
    ])
}

impl Writer for Tx<'_> {
    fn insert_call(&mut self, c: &Call) -> Result<()> {
        match insert_call_row(self, c, "") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::Conflict(format!("Call {} already exists", c.id)))
            }
            other => other.map(drop).map_err(storage),
        }
    }

    fn insert_new_call(&mut self, c: &Call) -> Result<bool> {
        // One probe of the id index, the insert's own, instead of a lookup before it.
        insert_call_row(self, c, "ON CONFLICT (project_id, id) DO NOTHING").map(|n| n > 0).map_err(storage)
    }

    fn update_call(&mut self, c: &Call) -> Result<()> {
        let v = ViewColumns::of(c);
        self.prepare_cached(
            "UPDATE calls SET op_name = ?3, display_name = ?4, started_at = ?5, ended_at = ?6, \
             exception = ?7, attributes = ?8, inputs = ?9, output = ?10, summary = ?11, \
             kind = ?12, evaluation = ?13, model = ?14, run_id = ?15, trace_id = ?16, \
             parent_id = ?17, wb_user_id = ?18, logged_run = ?19, thread_id = ?20, turn_id = ?21, \
             wb_run_id = ?22, wb_run_step = ?23, wb_run_step_end = ?24 \
             WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        )
        .map_err(storage)?
        .execute(params![
            c.project_id,
            c.id,
            c.op_name,
            c.display_name,
            c.started_at,
            c.ended_at,
            c.exception,
            json_text(&c.attributes),
            json_text(&c.inputs),
            c.output.as_ref().map(json_text),
            c.summary.as_ref().map(json_text),
            v.kind.tag(),
            v.evaluation,
            v.model,
            v.run_id,
            c.trace_id,
            c.parent_id,
            c.wb_user_id,
            v.logged_run,
            c.thread_id,
            c.turn_id,
            c.wb_run_id,
            c.wb_run_step,
            c.wb_run_step_end,
        ])
        .map(drop)
        .map_err(storage)
    }

    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>> {
        read_call(self, project, id)
    }

    fn run_head(&mut self, project: &str, id: &str) -> Result<Option<RunHead>> {
        // The view columns are derived on every write, so `kind` tells a run as
        // `RunHead::of` would, without reading the JSON fields.
        self.prepare_cached(
            "SELECT trace_id, started_at, wb_user_id, evaluation FROM calls \
             WHERE project_id = ?1 AND id = ?2 AND kind = 'run' AND deleted_at IS NULL",
        )
        .map_err(storage)?
        .query_row(params![project, id], |r| {
            Ok(RunHead {
                id: id.to_string(),
                trace_id: r.get(0)?,
                started_at: r.get(1)?,
                wb_user_id: r.get(2)?,
                evaluation: r.get(3)?,
            })
        })
        .optional()
        .map_err(storage)
    }

    fn call_exists(&mut self, project: &str, id: &str) -> Result<bool> {
        self.prepare_cached("SELECT 1 FROM calls WHERE project_id = ?1 AND id = ?2")
            .map_err(storage)?
            .exists(params![project, id])
            .map_err(storage)
    }

    fn end_call(&mut self, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
        self.prepare_cached(
            "UPDATE calls SET ended_at = ?3, exception = ?4, output = ?5, summary = ?6, \
             wb_run_step_end = ?7 WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        )
        .map_err(storage)?
        .execute(params![
            project,
            id,
            end.ended_at,
            end.exception,
            json_text(end.output),
            json_text(end.summary),
            end.wb_run_step_end,
        ])
        .map(|n| n > 0)
        .map_err(storage)
    }

    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>> {
        let mut stmt = self
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1 AND parent_id = ?2 \
                 AND deleted_at IS NULL ORDER BY started_at, id"
            ))
            .map_err(storage)?;
        let rows = stmt.query_map(params![project, parent_id], call_from_row).map_err(storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
    }

    fn put_object(&mut self, o: &ObjectVersion) -> Result<ObjectVersion> {
        let existing = self
            .prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3"
            ))
            .map_err(storage)?
            .query_row(params![o.project_id, o.object_id, o.digest], object_from_row)
            .optional()
            .map_err(storage)?;
        if let Some(found) = existing {
            self.execute(
                "UPDATE objects SET deleted_at = NULL WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3",
                params![o.project_id, o.object_id, o.digest],
            )
            .map_err(storage)?;
            return Ok(found);
        }
        let next: i64 = self
            .prepare_cached(
                "SELECT COALESCE(MAX(version_index) + 1, 0) FROM objects WHERE project_id = ?1 AND object_id = ?2",
            )
            .map_err(storage)?
            .query_row(params![o.project_id, o.object_id], |r| r.get(0))
            .map_err(storage)?;
        self.prepare_cached(&format!(
            "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))
        .map_err(storage)?
        .execute(params![
            o.project_id,
            o.object_id,
            o.digest,
            next,
            o.kind,
            o.base_object_class,
            o.leaf_object_class,
            json_text(&o.val),
            o.created_at,
            o.wb_user_id,
        ])
        .map_err(storage)?;
        Ok(ObjectVersion { version_index: next, ..o.clone() })
    }

    fn object_live(&mut self, project: &str, object_id: &str, digest: &str) -> Result<bool> {
        self.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM objects WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 \
             AND deleted_at IS NULL)",
        )
        .and_then(|mut s| s.query_row(params![project, object_id, digest], |r| r.get(0)))
        .map_err(storage)
    }

    fn add_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        let mut stmt = self
            .prepare_cached(
                "INSERT OR IGNORE INTO object_tags (project_id, object_id, digest, tag) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(storage)?;
        for tag in tags {
            stmt.execute(params![project, object_id, digest, tag]).map_err(storage)?;
        }
        Ok(())
    }

    fn remove_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        self.prepare_cached(
            "DELETE FROM object_tags WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 \
             AND tag IN rarray(?4)",
        )
        .and_then(|mut s| {
            s.execute(params![project, object_id, digest, Arg::list(tags.iter().map(String::as_str))])
        })
        .map_err(storage)?;
        Ok(())
    }

    fn set_aliases(
        &mut self,
        project: &str,
        object_id: &str,
        digest: &str,
        aliases: &[String],
    ) -> Result<()> {
        let mut stmt = self
            .prepare_cached(
                "INSERT OR REPLACE INTO object_aliases (project_id, object_id, alias, digest) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(storage)?;
        for alias in aliases {
            stmt.execute(params![project, object_id, alias, digest]).map_err(storage)?;
        }
        Ok(())
    }

    fn remove_aliases(&mut self, project: &str, object_id: &str, aliases: &[String]) -> Result<()> {
        self.prepare_cached(
            "DELETE FROM object_aliases WHERE project_id = ?1 AND object_id = ?2 AND alias IN rarray(?3)",
        )
        .and_then(|mut s| {
            s.execute(params![project, object_id, Arg::list(aliases.iter().map(String::as_str))])
        })
        .map_err(storage)?;
        Ok(())
    }

    fn delete_objects(
        &mut self,
        project: &str,
        object_id: &str,
        digests: Option<&[String]>,
        at: Micros,
    ) -> Result<u64> {
        let only = if digests.is_some() { " AND digest IN rarray(?)" } else { "" };
        let list = || digests.map(|d| Arg::list(d.iter().map(String::as_str)));
        // The tags of the versions deleted, and the aliases naming them, go with them.
        for table in ["object_tags", "object_aliases"] {
            let mut args: Vec<Arg<'_>> = vec![Arg::Text(project), Arg::Text(object_id)];
            args.extend(list());
            self.prepare_cached(&format!("DELETE FROM {table} WHERE project_id = ? AND object_id = ?{only}"))
                .and_then(|mut s| s.execute(params_from_iter(args)))
                .map_err(storage)?;
        }
        let sql = format!(
            "UPDATE objects SET deleted_at = ? WHERE project_id = ? AND object_id = ? AND deleted_at IS NULL{only}"
        );
        let at = at.to_string();
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(&at), Arg::Text(project), Arg::Text(object_id)];
        args.extend(list());
        let n =
            self.prepare_cached(&sql).and_then(|mut s| s.execute(params_from_iter(args))).map_err(storage)?;
        Ok(n as u64)
    }

    fn put_table(
        &mut self,
        project: &str,
        digest: &str,
        rows: &[(String, String)],
        row_digests: &[String],
    ) -> Result<()> {
        let mut insert_row = self
            .prepare_cached("INSERT OR IGNORE INTO table_rows (project_id, digest, val) VALUES (?1, ?2, ?3)")
            .map_err(storage)?;
        for (d, val) in rows {
            insert_row.execute(params![project, d, val]).map_err(storage)?;
        }
        let digests = serde_json::to_string(row_digests).map_err(|e| Error::Storage(e.to_string()))?;
        self.prepare_cached(
            "INSERT OR IGNORE INTO tables (project_id, digest, row_digests) VALUES (?1, ?2, ?3)",
        )
        .map_err(storage)?
        .execute(params![project, digest, digests])
        .map(drop)
        .map_err(storage)
    }

    fn table_digests(&mut self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        table_digests(self.0, project, digest)
    }

    fn missing_table_rows(&mut self, project: &str, digests: &[&str]) -> Result<Vec<String>> {
        let mut stmt = self
            .prepare_cached("SELECT 1 FROM table_rows WHERE project_id = ?1 AND digest = ?2")
            .map_err(storage)?;
        let mut missing = Vec::new();
        for d in digests {
            if !stmt.exists(params![project, d]).map_err(storage)? {
                missing.push((*d).to_string());
            }
        }
        Ok(missing)
    }

    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()> {
        self.prepare_cached("INSERT OR IGNORE INTO files (project_id, digest, content) VALUES (?1, ?2, ?3)")
            .map_err(storage)?
            .execute(params![project, digest, content])
            .map(drop)
            .map_err(storage)
    }

    fn insert_feedback(&mut self, f: &Feedback) -> Result<()> {
        self.prepare_cached(&format!("INSERT OR IGNORE INTO feedback ({FEEDBACK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"))
            .map_err(storage)?
            .execute(params![
                f.project_id,
                f.id,
                f.weave_ref,
                f.feedback_type,
                json_text(&f.payload),
                f.creator,
                f.created_at,
                f.wb_user_id,
                f.annotation_ref,
                f.runnable_ref,
                f.call_ref,
                f.trigger_ref,
            ])
            .map(drop)
            .map_err(storage)
    }

    fn delete_feedback(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        let mut stmt =
            self.prepare_cached("DELETE FROM feedback WHERE project_id = ?1 AND id = ?2").map_err(storage)?;
        let mut n = 0;
        for id in ids {
            n += stmt.execute(params![project, id]).map_err(storage)? as u64;
        }
        Ok(n)
    }

    fn insert_cost(&mut self, p: &LlmPrice) -> Result<()> {
        self.prepare_cached(&format!(
            "INSERT INTO llm_token_prices ({PRICE_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))
        .map_err(storage)?
        .execute(params![
            p.project_id,
            p.id,
            p.llm_id,
            p.provider_id,
            p.effective_date,
            p.prompt_token_cost,
            p.completion_token_cost,
            p.cache_read_input_token_cost,
            p.cache_creation_input_token_cost,
            p.prompt_token_cost_unit,
            p.completion_token_cost_unit,
            p.created_by,
            p.created_at,
        ])
        .map(drop)
        .map_err(storage)
    }

    fn delete_costs(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        let mut stmt = self
            .prepare_cached("DELETE FROM llm_token_prices WHERE project_id = ?1 AND id = ?2")
            .map_err(storage)?;
        let mut n = 0;
        for id in ids {
            n += stmt.execute(params![project, id]).map_err(storage)? as u64;
        }
        Ok(n)
    }

    fn put_key(&mut self, k: &ApiKey) -> Result<()> {
        keys::insert_key(self, k)
    }

    fn revoke_key(&mut self, id: &str, at: Micros) -> Result<bool> {
        keys::revoke_key(self, id, at)
    }

    fn put_session(&mut self, session: &Session, now: Micros) -> Result<()> {
        keys::insert_session(self, session, now)
    }

    fn end_session(&mut self, hash: &str, at: Micros) -> Result<bool> {
        keys::end_session(self, hash, at)
    }

    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64> {
        // `UNION`, not `UNION ALL`: a call reached twice is walked once, so parent links that
        // form a cycle (which a client can write) end the walk instead of looping forever.
        let n = self
            .prepare_cached(
                "WITH RECURSIVE sub(id) AS ( \
                   SELECT id FROM calls WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL \
                   UNION \
                   SELECT c.id FROM calls c JOIN sub ON c.project_id = ?1 AND c.parent_id = sub.id \
                   WHERE c.deleted_at IS NULL) \
                 UPDATE calls SET deleted_at = ?3 WHERE project_id = ?1 AND id IN (SELECT id FROM sub)",
            )
            .map_err(storage)?
            .execute(params![project, id, at])
            .map_err(storage)?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn a_run_head_is_read_as_it_is_derived_from_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut run = Call::new("e/p", "Evaluation.evaluate", 5);
        run.attributes =
            serde_json::json!({"weave": {"evaluation_run": "true", "evaluation": "weave:///e/p/object/E:1"}});
        run.wb_user_id = Some("u".into());
        let other = Call::new("e/p", "Model.predict", 6);
        let gone = Call::new("e/p", "Evaluation.evaluate", 7);
        let (r, o, g) = (run.clone(), other.clone(), gone.clone());
        let heads = crate::domain::store::write(&store, move |w| {
            for c in [&r, &o, &g] {
                w.insert_call(c)?;
            }
            w.delete_subtree("e/p", &g.id, 8)?;
            Ok([&r.id, &o.id, &g.id].map(|id| w.run_head("e/p", id)))
        })
        .unwrap();
        let expected = RunHead::of(&run);
        assert!(
            expected.as_ref().is_some_and(|h| h.evaluation.as_deref() == Some("weave:///e/p/object/E:1"))
        );
        assert_eq!(heads[0].as_ref().unwrap(), &expected);
        assert_eq!(heads[1].as_ref().unwrap(), &None);
        assert_eq!(heads[2].as_ref().unwrap(), &None);
        let in_other_project =
            crate::domain::store::write(&store, move |w| w.run_head("e/q", &run.id)).unwrap();
        assert_eq!(in_other_project, None);
        assert_eq!(RunHead::of(&other), None);
        assert!(RunHead::of(&gone).is_some());
    }
}
