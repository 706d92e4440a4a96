//! Writes to the SQLite store: the writer thread's transaction (a batch of jobs, each in a
//! savepoint of its own) and the writes of a job, as the domain's [`Writer`]. One file per
//! resource, each writing through the connection it is given: `calls`, `objects` (versions,
//! their tags and aliases, tables, files), `feedback` (feedback and prices); keys and
//! sessions are written in `super::keys`.

mod calls;
mod feedback;
mod objects;

use rusqlite::Connection;

use super::interned::{Interner, Project};
use super::packed::{EncodedCall, Packer};
use super::rows::{read_call, table_digests};
use super::{keys, storage};
use crate::domain::call::{Call, Micros};
use crate::domain::costs::LlmPrice;
use crate::domain::error::{Error, Result};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::ObjectVersion;
use crate::domain::run_rows::RunHead;
use crate::domain::sessions::Session;
use crate::domain::store::{CallEndFields, Encoded, Insert, Writer};
use crate::store::writer::{Backend, Batch};

/// The write connection, owned by the writer thread, the dictionaries it packs with and the
/// keys of project names and run refs it writes.
pub(super) struct WriteConnection(pub(super) Connection, pub(super) Packer, pub(super) Interner);

impl Backend for WriteConnection {
    type Batch<'a> = Transaction<'a>;

    fn begin(&mut self) -> Result<Transaction<'_>> {
        exec(&self.0, "BEGIN IMMEDIATE")?;
        Ok(Transaction { tx: Tx(&self.0, &mut self.1, &mut self.2), last_error: None })
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
        let begun = exec(self.tx.0, "SAVEPOINT job");
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
        self.tx.1.end_job(outcome.is_ok());
        self.tx.2.end_job(outcome.is_ok());
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
        self.tx.1.end_batch(committed.is_ok());
        self.tx.2.end_batch(committed.is_ok());
        committed
    }
}

/// Runs a statement of the writer's transaction control, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut s| s.raw_execute()).map(drop).map_err(storage)
}

/// The write connection inside a transaction, as the domain's [`Writer`].
struct Tx<'a>(&'a Connection, &'a mut Packer, &'a mut Interner);

impl Writer for Tx<'_> {
    fn insert_call(&mut self, c: &Call) -> Result<()> {
        calls::insert(self.0, self.1, self.2, c, None)
    }

    fn insert_new_call(&mut self, c: &Call) -> Result<bool> {
        calls::insert_new(self.0, self.1, self.2, c, None)
    }

    fn insert_encoded(&mut self, c: &Call, encoded: &Encoded, how: Insert) -> Result<bool> {
        let encoded = encoded.get::<EncodedCall>().filter(|e| e.is_of(c));
        match how {
            Insert::Checked | Insert::Fresh => {
                calls::insert(self.0, self.1, self.2, c, encoded).map(|()| true)
            }
            Insert::New => calls::insert_new(self.0, self.1, self.2, c, encoded),
        }
    }

    fn update_call(&mut self, c: &Call) -> Result<()> {
        calls::update(self.0, self.1, self.2, c)
    }

    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>> {
        read_call(self.0, Project::Name(project), id)
    }

    fn run_head(&mut self, project: &str, id: &str) -> Result<Option<RunHead>> {
        calls::run_head(self.0, project, id)
    }

    fn call_exists(&mut self, project: &str, id: &str) -> Result<bool> {
        calls::exists(self.0, project, id)
    }

    fn end_call(&mut self, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
        calls::end(self.0, project, id, end)
    }

    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>> {
        calls::children(self.0, project, parent_id)
    }

    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64> {
        calls::delete_subtree(self.0, project, id, at)
    }

    fn put_object(&mut self, o: &ObjectVersion) -> Result<ObjectVersion> {
        objects::put(self.0, o)
    }

    fn object_live(&mut self, project: &str, object_id: &str, digest: &str) -> Result<bool> {
        objects::live(self.0, project, object_id, digest)
    }

    fn add_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        objects::add_tags(self.0, project, object_id, digest, tags)
    }

    fn remove_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        objects::remove_tags(self.0, project, object_id, digest, tags)
    }

    fn set_aliases(
        &mut self,
        project: &str,
        object_id: &str,
        digest: &str,
        aliases: &[String],
    ) -> Result<()> {
        objects::set_aliases(self.0, project, object_id, digest, aliases)
    }

    fn remove_aliases(&mut self, project: &str, object_id: &str, aliases: &[String]) -> Result<()> {
        objects::remove_aliases(self.0, project, object_id, aliases)
    }

    fn delete_objects(
        &mut self,
        project: &str,
        object_id: &str,
        digests: Option<&[String]>,
        at: Micros,
    ) -> Result<u64> {
        objects::delete(self.0, project, object_id, digests, at)
    }

    fn put_table(
        &mut self,
        project: &str,
        digest: &str,
        rows: &[(String, String)],
        row_digests: &[String],
    ) -> Result<()> {
        objects::put_table(self.0, project, digest, rows, row_digests)
    }

    fn table_digests(&mut self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        table_digests(self.0, project, digest)
    }

    fn missing_table_rows(&mut self, project: &str, digests: &[&str]) -> Result<Vec<String>> {
        objects::missing_table_rows(self.0, project, digests)
    }

    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()> {
        objects::put_file(self.0, project, digest, content)
    }

    fn insert_feedback(&mut self, f: &Feedback) -> Result<()> {
        feedback::insert_feedback(self.0, f)
    }

    fn delete_feedback(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        feedback::delete_by_id(self.0, "feedback", project, ids)
    }

    fn insert_cost(&mut self, p: &LlmPrice) -> Result<()> {
        feedback::insert_cost(self.0, p)
    }

    fn delete_costs(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        feedback::delete_by_id(self.0, "llm_token_prices", project, ids)
    }

    fn put_key(&mut self, k: &ApiKey) -> Result<()> {
        keys::insert_key(self.0, k)
    }

    fn revoke_key(&mut self, id: &str, at: Micros) -> Result<bool> {
        keys::revoke_key(self.0, id, at)
    }

    fn put_session(&mut self, session: &Session, now: Micros) -> Result<()> {
        keys::insert_session(self.0, session, now)
    }

    fn end_session(&mut self, hash: &str, at: Micros) -> Result<bool> {
        keys::end_session(self.0, hash, at)
    }
}
