//! Writes to the SQLite store: the writer thread's transaction (a batch of jobs, each in a
//! savepoint of its own) and the writes of a job, as the domain's [`Writer`]. One file per
//! resource, each writing through the connection it is given: `calls`, `objects` (versions,
//! their tags and aliases, tables, files), `feedback` (feedback and prices); keys and
//! sessions are written in `super::keys`.

mod calls;
mod feedback;
mod objects;

use std::sync::Arc;

use rusqlite::Connection;

use super::interned::{Interner, Project};
use super::key_cache::KeyCache;
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

/// The write connection, owned by the writer thread, the dictionaries it packs with, the
/// keys of project names and run refs it writes, and the cache of keys it drops entries of
/// when it revokes one.
pub(super) struct WriteConnection(
    pub(super) Connection,
    pub(super) Packer,
    pub(super) Interner,
    pub(super) Arc<KeyCache>,
);

impl Backend for WriteConnection {
    type Batch<'a> = Transaction<'a>;

    fn begin(&mut self) -> Result<Transaction<'_>> {
        exec(&self.0, "BEGIN IMMEDIATE")?;
        Ok(Transaction {
            tx: Tx(&self.0, &mut self.1, &mut self.2, &self.3),
            last_error: None,
            open: true,
            holds: false,
            saved: false,
            stuck: false,
        })
    }
}

/// A batch of jobs in one transaction, each job but the first in its own savepoint so that one
/// job's error undoes only its own writes.
///
/// A job that runs while the transaction holds no other job's writes needs no savepoint (a
/// savepoint copies every page its job first changes into a journal of its own, which costs
/// about as much as the job's inserts): when it fails, the whole transaction is rolled back,
/// which undoes its writes only, and the next job begins another.
pub(super) struct Transaction<'a> {
    tx: Tx<'a>,
    /// The error of the batch's last failed job.
    last_error: Option<Error>,
    /// Whether the transaction is open (not rolled back since it began).
    open: bool,
    /// Whether the open transaction holds the writes of a job that was kept.
    holds: bool,
    /// Whether the running job has a savepoint.
    saved: bool,
    /// Whether the transaction holds the writes of a failed job that could not be undone.
    stuck: bool,
}

impl Batch for Transaction<'_> {
    fn begin_job(&mut self) -> Result<()> {
        let conn = self.tx.0;
        let begun = if !self.open {
            exec(conn, "BEGIN IMMEDIATE").map(|()| self.open = true)
        } else if self.holds {
            exec(conn, "SAVEPOINT job")
        } else {
            Ok(())
        };
        self.saved = self.holds;
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
        let ended = match (outcome.is_ok(), self.saved) {
            (true, true) => exec(conn, "RELEASE job"),
            (false, true) => exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job")),
            (true, false) => Ok(()),
            // The transaction holds this job's writes only: all of it is undone (a rollback
            // that fails leaves it open, holding them, and then the batch must not commit).
            (false, false) => {
                let rolled_back = exec(conn, "ROLLBACK");
                self.open = !conn.is_autocommit();
                if self.open {
                    (self.stuck, self.holds) = (true, true);
                }
                rolled_back
            }
        };
        // The job's own error says more than a failure to undo it.
        let outcome = outcome.and(ended);
        self.tx.1.end_job(outcome.is_ok());
        self.tx.2.end_job(outcome.is_ok());
        if outcome.is_ok() {
            self.holds = true;
        }
        if let Err(e) = &outcome {
            self.last_error = Some(e.clone());
        }
        outcome
    }

    fn commit(self) -> Result<()> {
        let conn = self.tx.0;
        if !self.open {
            // Every job of the batch failed, each undone with the transaction: nothing to commit.
            self.tx.1.end_batch(false);
            self.tx.2.end_batch(false);
            self.tx.3.settle();
            return Ok(());
        }
        // Some errors (a full disk, say) make SQLite roll the whole transaction back: then
        // every job of the batch is lost, and each is told so.
        let committed = if conn.is_autocommit() {
            Err(self.last_error.unwrap_or_else(|| Error::Storage("the transaction was rolled back".into())))
        } else if self.stuck {
            Err(Error::Storage("a failed write job could not be undone".into()))
        } else {
            exec(conn, "COMMIT")
        };
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.tx.1.end_batch(committed.is_ok());
        self.tx.2.end_batch(committed.is_ok());
        self.tx.3.settle();
        committed
    }
}

/// Runs a statement of the writer's transaction control, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut s| s.raw_execute()).map(drop).map_err(storage)
}

/// The write connection inside a transaction, as the domain's [`Writer`].
struct Tx<'a>(&'a Connection, &'a mut Packer, &'a mut Interner, &'a KeyCache);

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
        self.3.revoking();
        keys::revoke_key(self.0, id, at)
    }

    fn put_session(&mut self, session: &Session, now: Micros) -> Result<()> {
        keys::insert_session(self.0, session, now)
    }

    fn end_session(&mut self, hash: &str, at: Micros) -> Result<bool> {
        keys::end_session(self.0, hash, at)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use crate::domain::call::Call;
    use crate::domain::error::{Error, Result};
    use crate::domain::store::{Store, WriteJob};
    use crate::store::sqlite::SqliteStore;

    /// A job inserting `call`, then failing (`Some(false)`), panicking (`Some(true)`) or not,
    /// after `wait` (if any) says go; its outcome goes to `outcomes` under `name`.
    fn job(
        call: &Call,
        fails: Option<bool>,
        wait: Option<mpsc::Receiver<()>>,
        name: &'static str,
        outcomes: &mpsc::Sender<(&'static str, Result<()>)>,
    ) -> WriteJob {
        let (call, outcomes) = (call.clone(), outcomes.clone());
        WriteJob {
            hint: Default::default(),
            run: Box::new(move |w| {
                w.insert_call(&call)?;
                if let Some(wait) = wait {
                    wait.recv().unwrap();
                }
                match fails {
                    Some(true) => panic!("a job panics"),
                    Some(false) => Err(Error::BadRequest("a job fails".into())),
                    None => Ok(()),
                }
            }),
            done: Box::new(move |outcome| {
                let _ = outcomes.send((name, outcome));
            }),
        }
    }

    #[test]
    fn a_fed_batch_is_undone_when_its_feed_stalls_or_is_dropped() {
        use crate::domain::writes::calls::{FEED_WAIT, feed_complete, prepare_complete};
        use std::time::Duration;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let made = |i: usize| {
            let c = serde_json::json!({"project_id": "e/p", "id": format!("c{i}"), "op_name": "op",
                "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z", "output": i});
            prepare_complete(&store, serde_json::from_value(c).unwrap(), Some("u")).unwrap()
        };
        let stored = |i: usize| store.call("e/p", &format!("c{i}")).unwrap().is_some();
        // A feed that stalls past the wait: the job fails, takes no more, and what it wrote is
        // undone.
        let (mut feed, outcome) = feed_complete(&store, vec![], "u".into(), Duration::from_millis(200));
        assert!(feed.send(vec![made(0), made(1)]));
        std::thread::sleep(Duration::from_millis(600));
        let failed = rt.block_on(outcome);
        assert!(matches!(&failed, Err(Error::Storage(m)) if m.contains("in time")), "{failed:?}");
        assert!(!feed.send(vec![made(2)]), "a failed job takes no more");
        // A feed dropped unfinished (its request failed or went away): undone too.
        let (mut feed, outcome) = feed_complete(&store, vec![], "u".into(), FEED_WAIT);
        assert!(feed.send(vec![made(3)]));
        drop(feed);
        let failed = rt.block_on(outcome);
        assert!(matches!(&failed, Err(Error::Storage(m)) if m.contains("stopped")), "{failed:?}");
        assert!((0..4).all(|i| !stored(i)));
        // Finished, it is written whole.
        let (mut feed, outcome) =
            feed_complete(&store, vec![("e/p".into(), "c5".into())], "u".into(), FEED_WAIT);
        assert!(feed.send(vec![made(5)]) && feed.send(vec![made(6), made(7)]));
        feed.finish();
        rt.block_on(outcome).unwrap();
        assert!((5..8).all(stored));
    }

    #[test]
    fn a_failing_job_undoes_its_own_writes_first_in_a_batch_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let calls: Vec<Call> = (0..7).map(|i| Call::new("e/p", "op", 1_000 + i)).collect();
        let (tx, rx) = mpsc::channel();
        let (go, wait) = mpsc::channel();
        // The first job holds the writer until the others are queued: they make one batch,
        // whose first job fails (undone with the transaction it began), a later one panics
        // (undone to its savepoint), another fails last.
        store.submit(job(&calls[0], None, Some(wait), "a", &tx));
        store.submit(job(&calls[1], Some(false), None, "b", &tx));
        store.submit(job(&calls[2], None, None, "c", &tx));
        store.submit(job(&calls[3], Some(true), None, "d", &tx));
        store.submit(job(&calls[4], None, None, "e", &tx));
        store.submit(job(&calls[5], Some(false), None, "f", &tx));
        go.send(()).unwrap();
        let outcomes: Vec<_> = (0..6).map(|_| rx.recv().unwrap()).collect();
        let names: Vec<&str> = outcomes.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        let ok: Vec<bool> = outcomes.iter().map(|(_, o)| o.is_ok()).collect();
        assert_eq!(ok, [true, false, true, false, true, false]);
        assert!(matches!(&outcomes[1].1, Err(Error::BadRequest(_))));
        assert!(matches!(&outcomes[3].1, Err(Error::Storage(m)) if m == "a write job panicked"));
        let stored: Vec<bool> =
            calls[..6].iter().map(|c| store.call("e/p", &c.id).unwrap().is_some()).collect();
        assert_eq!(stored, [true, false, true, false, true, false]);
        // A batch whose only job fails commits nothing, and the next one writes.
        store.submit(job(&calls[6], Some(false), None, "g", &tx));
        assert!(matches!(rx.recv().unwrap(), ("g", Err(Error::BadRequest(_)))));
        assert!(store.call("e/p", &calls[6].id).unwrap().is_none());
        store.submit(job(&calls[6], None, None, "h", &tx));
        assert!(matches!(rx.recv().unwrap(), ("h", Ok(()))));
        assert!(store.call("e/p", &calls[6].id).unwrap().is_some());
    }
}
