//! The storage interface the domain needs: what a backend must answer ([`Store`]) and the
//! writes it must apply inside one transaction ([`Writer`]), in the domain's own types. The
//! backends (`crate::store::*`) implement it; the domain and the HTTP layer use it and never
//! name a backend.

use serde_json::Value;

use super::call::{Call, CallText, Micros};
use super::call_query::CallQuery;
use super::costs::LlmPrice;
use super::error::{Error, Result};
use super::feedback::Feedback;
use super::keys::ApiKey;
use super::object::{Labels, ObjectQuery, ObjectVersion, TableRow, Version};
use super::page::Page;
use super::run_rows::{RunCursor, RunDimension, RunHead, RunQuery, RunRow};
use super::sessions::Session;
use super::threads::{Turn, TurnQuery};
use super::view::Kind;

/// The writes of a job.
pub type WriteFn = Box<dyn FnOnce(&mut dyn Writer) -> Result<()> + Send>;

/// What a job will read, named when it is queued, so that a backend paying a round trip per
/// read can read it for every job of a batch at once ([`Batch::prefetch`]); the job reads
/// it either way, a hint only spares the round trips.
///
/// [`Batch::prefetch`]: crate::store::writer::Batch::prefetch
#[derive(Debug, Clone, Default)]
pub struct ReadHint {
    /// Calls, by (project, id).
    pub calls: Vec<(String, String)>,
    /// Calls whose children the job reads, by (project, id).
    pub children_of: Vec<(String, String)>,
}

/// A unit of writes, run by the store's writer inside a transaction.
pub struct WriteJob {
    /// The writes. An error undoes this job's writes only.
    pub run: WriteFn,
    /// What the writes will read.
    pub hint: ReadHint,
    /// Told the outcome once the transaction holding the job has committed (or failed):
    /// `Ok` means the writes are durable.
    pub done: Box<dyn FnOnce(Result<()>) + Send>,
}

/// A call's fields as a store encoded them before its write job ran ([`Store::encode_call`]),
/// opaque to the domain: only the store that made it reads it, in [`Writer::insert_encoded`].
/// Empty by default, which the writer reads as "encode it yourself".
#[derive(Default)]
pub struct Encoded(Option<Box<dyn std::any::Any + Send>>);

impl Encoded {
    /// Wraps a store's own encoding.
    pub fn new<T: std::any::Any + Send>(value: T) -> Self {
        Encoded(Some(Box::new(value)))
    }

    /// The store's encoding, if it is one of type `T`.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.as_ref().and_then(|v| v.downcast_ref())
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Encoded(..)" } else { "Encoded(none)" })
    }
}

/// How [`Writer::insert_encoded`] inserts a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// As [`Writer::insert_call`]: a taken id is a conflict.
    Checked,
    /// As [`Writer::insert_new_call`]: nothing if the id is taken.
    New,
    /// As [`Writer::insert_fresh_call`]: an id this server has just made.
    Fresh,
}

/// What ending a call writes.
#[derive(Debug, Clone, Copy)]
pub struct CallEndFields<'a> {
    /// End time.
    pub ended_at: Micros,
    /// Exception text, if the call failed.
    pub exception: Option<&'a str>,
    /// Output.
    pub output: &'a Value,
    /// Summary.
    pub summary: &'a Value,
    /// The W&B run's step at the end.
    pub wb_run_step_end: Option<i64>,
}

/// A storage backend. Reads block; callers run them off the async threads. Writes are
/// submitted as jobs and reported when durable.
pub trait Store: Send + Sync + 'static {
    /// Queues a write job; it never blocks the caller.
    fn submit(&self, job: WriteJob);

    /// Encodes a call's fields as this store will write them, before its job is queued (on the
    /// request's thread, not the one writer thread), for [`Writer::insert_encoded`]. Never
    /// reads or waits. By default nothing: the writer encodes the call itself.
    fn encode_call(&self, _call: &Call) -> Encoded {
        Encoded::default()
    }

    /// Streams the evaluation runs of `project` matching `query`, in list order
    /// (`started_at`, `id`; descending if `query.newest_first`), past `query.after` if
    /// given, to `sink` until it returns `false`.
    fn eval_runs(
        &self,
        project: &str,
        query: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()>;

    /// [`Store::eval_runs`] run at once on the calling thread, for short reads: `None` (and
    /// `sink` never called) unless the store can serve it without waiting for a connection
    /// or the network. The default never can.
    fn eval_runs_now(
        &self,
        _project: &str,
        _query: &RunQuery,
        _sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Option<Result<()>> {
        None
    }

    /// The distinct non-empty values of `dimension` among the live runs of `project`, in
    /// order, at most `max`. Read without scanning the runs (one index seek per value, or an
    /// aggregation in the store).
    fn run_values(&self, project: &str, dimension: RunDimension, max: usize) -> Result<Vec<String>>;

    /// Streams the newest live run (by `started_at`, then `id`) of each distinct pair of
    /// (evaluation, model) among the runs of `project` that name both, by evaluation then
    /// model, at most `max_pairs` pairs, to `sink` until it returns `false`.
    fn latest_runs(
        &self,
        project: &str,
        max_pairs: usize,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()>;

    /// Streams the live calls of `kind` (belonging to run `run_id`, when given) in start order
    /// (`started_at`, `id`), only those strictly past `after` when given (keyset paging: read
    /// as one range of the store's order, however deep), windowed by `page` after that.
    fn view_calls(
        &self,
        project: &str,
        kind: Kind,
        run_id: Option<&str>,
        after: Option<&RunCursor>,
        page: Page,
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()>;

    /// Streams the live calls matching `query` in start order to `sink` until it returns `false`.
    fn calls(&self, project: &str, query: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()>;

    /// Reads a live (not deleted) call.
    fn call(&self, project: &str, id: &str) -> Result<Option<Call>>;

    /// Streams the live children of the calls `parent_ids` to `sink` until it returns `false`:
    /// each call's children in start order (`started_at`, `id`), those of different calls in
    /// any order. However many ids there are, a backend reads them in a few queries, never one
    /// per id: this is how a run's examples are read (its children, then their children).
    fn children_of(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()>;

    /// [`Store::children_of`] narrowed to [`CallText`]: the same calls in the same order, without
    /// their trace, display name, user and summary, their JSON fields unparsed. What a run's
    /// examples are read with, where parsing every field of every call would be most of the work.
    fn children_text(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(&CallText<'_>) -> bool,
    ) -> Result<()>;

    /// Reads a live object version; the flag tells whether it is the latest. An alias names
    /// the version it is set on (or, when no such alias is set, the digest of that name).
    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>>;
    /// Streams the live object versions matching `query`, in its order, to `sink` until it
    /// returns `false`; flags mark the latest, and each comes with its [`Labels`] when
    /// `query.with_labels`.
    fn objects(
        &self,
        project: &str,
        query: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
    ) -> Result<()>;
    /// The tags and aliases of an object version.
    fn labels(&self, project: &str, object_id: &str, digest: &str) -> Result<Labels>;
    /// The distinct tags of a project's object versions, sorted.
    fn project_tags(&self, project: &str) -> Result<Vec<String>>;
    /// The distinct aliases of a project's objects, sorted.
    fn project_aliases(&self, project: &str) -> Result<Vec<String>>;
    /// A table's row digests, in order; `None` if no such table.
    fn table_digests(&self, project: &str, digest: &str) -> Result<Option<Vec<String>>>;
    /// Streams the stored JSON text of the rows `digests` names, in that order (a digest may
    /// come more than once), each with its position in `digests`, to `sink` until it returns
    /// `false`; rows not stored are left out. A backend holds a bounded number of rows at once.
    fn table_row_texts(
        &self,
        project: &str,
        digests: &[&str],
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<()>;
    /// Rows of a table in order (only those named, if `only` is given); `None` if no such table.
    fn table_rows(
        &self,
        project: &str,
        digest: &str,
        only: Option<&[String]>,
        page: Page,
    ) -> Result<Option<Vec<TableRow>>> {
        let Some(list) = self.table_digests(project, digest)? else {
            return Ok(None);
        };
        let wanted = super::object::wanted_rows(&list, only, page);
        let digests: Vec<&str> = wanted.iter().map(|(_, d)| d.as_str()).collect();
        let mut rows = Vec::with_capacity(wanted.len());
        self.table_row_texts(project, &digests, &mut |k, text| {
            let (i, d) = wanted[k];
            rows.push(TableRow {
                digest: d.clone(),
                val: super::object::row_value(text),
                original_index: i as i64,
            });
            true
        })?;
        Ok(Some(rows))
    }
    /// Number of rows of a table; `None` if no such table.
    fn table_len(&self, project: &str, digest: &str) -> Result<Option<u64>> {
        Ok(self.table_digests(project, digest)?.map(|l| l.len() as u64))
    }
    /// A file's bytes.
    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>>;

    /// The live feedback rows of a project, oldest first.
    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()>;

    /// The LLM token prices of a project, oldest first (by `created_at`, then id).
    fn costs(&self, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()>;

    /// Streams the live turn calls of `project` (a call whose id is its `turn_id`, with a
    /// non-empty `thread_id`) that `query` selects, in any order, to `sink` until it returns
    /// `false`.
    fn turns(&self, project: &str, query: &TurnQuery, sink: &mut dyn FnMut(Turn) -> bool) -> Result<()>;

    /// Finds an unrevoked key by the hash of its secret.
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Whether [`Store::key_by_hash`] answers at once, never waiting behind other reads or
    /// the network, so that it may run on the request's own thread. The default is `false`.
    fn keys_read_at_once(&self) -> bool {
        false
    }
    /// All keys, revoked ones included, oldest first.
    fn keys(&self) -> Result<Vec<ApiKey>>;
    /// A web UI session by the hash of its token (expired and ended ones included). Like
    /// [`Store::key_by_hash`], it never waits behind data reads when the store can help it.
    fn session(&self, hash: &str) -> Result<Option<Session>>;

    /// Every project that has calls, with its run count and latest activity, by project id.
    fn projects(&self, sink: &mut dyn FnMut(ProjectSummary) -> bool) -> Result<()>;
}

/// A project as the web UI's project list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSummary {
    /// `entity/project`.
    pub project_id: String,
    /// Live evaluation runs.
    pub runs: u64,
    /// Start of its latest live call.
    pub last_activity: Micros,
}

/// Operations inside one write transaction.
pub trait Writer {
    /// Inserts a new call; its view columns are derived from it.
    fn insert_call(&mut self, call: &Call) -> Result<()>;
    /// Inserts a call whose id this server has just made ([`crate::domain::call::new_id`], a
    /// UUIDv7): no call can have it yet, so a backend that pays a round trip to check an id may
    /// skip that check. By default, [`Writer::insert_call`].
    fn insert_fresh_call(&mut self, call: &Call) -> Result<()> {
        self.insert_call(call)
    }
    /// Inserts `call` as `how` says, with its fields as [`Store::encode_call`] encoded them
    /// (`encoded` was made from this very call); returns whether it was inserted. By default
    /// the encoding is ignored.
    fn insert_encoded(&mut self, call: &Call, _encoded: &Encoded, how: Insert) -> Result<bool> {
        match how {
            Insert::Checked => self.insert_call(call).map(|()| true),
            Insert::New => self.insert_new_call(call),
            Insert::Fresh => self.insert_fresh_call(call).map(|()| true),
        }
    }
    /// Rewrites a live call's mutable fields (end, output, summary, exception, attributes...).
    fn update_call(&mut self, call: &Call) -> Result<()>;
    /// Reads a live call.
    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>>;
    /// The head of a live evaluation run; `None` if there is no such run.
    fn run_head(&mut self, project: &str, id: &str) -> Result<Option<RunHead>> {
        Ok(self.call(project, id)?.as_ref().and_then(RunHead::of))
    }
    /// Hints that the job is about to look up these calls, so a backend that pays a round trip
    /// per lookup can read them all at once. Does nothing by default.
    fn prefetch_calls(&mut self, _project: &str, _ids: &[String]) -> Result<()> {
        Ok(())
    }
    /// Whether a call with this id exists (deleted or not), without reading it.
    fn call_exists(&mut self, project: &str, id: &str) -> Result<bool>;
    /// Inserts `call` unless a call with its id exists (deleted or not): `false` then.
    fn insert_new_call(&mut self, call: &Call) -> Result<bool> {
        if self.call_exists(&call.project_id, &call.id)? {
            return Ok(false);
        }
        self.insert_call(call).map(|()| true)
    }
    /// Writes a live call's end (leaving its start as it is); `false` if there is no such call.
    fn end_call(&mut self, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool>;
    /// The live children of a call, in start order.
    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>>;
    /// Stores an object version, or finds the identical one; returns it with its version index.
    fn put_object(&mut self, object: &ObjectVersion) -> Result<ObjectVersion>;
    /// Whether a live version of `object_id` has this digest.
    fn object_live(&mut self, project: &str, object_id: &str, digest: &str) -> Result<bool>;
    /// Adds tags to an object version (those it has already stay as they are).
    fn add_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()>;
    /// Removes tags from an object version (those it lacks are ignored).
    fn remove_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()>;
    /// Points aliases of `object_id` at the version `digest`, moving them from any other version.
    fn set_aliases(&mut self, project: &str, object_id: &str, digest: &str, aliases: &[String])
    -> Result<()>;
    /// Removes aliases of `object_id` (those not set are ignored).
    fn remove_aliases(&mut self, project: &str, object_id: &str, aliases: &[String]) -> Result<()>;
    /// Soft-deletes object versions (all of `object_id`, or those with the given digests),
    /// dropping their tags and the aliases naming them.
    fn delete_objects(
        &mut self,
        project: &str,
        object_id: &str,
        digests: Option<&[String]>,
        at: Micros,
    ) -> Result<u64>;
    /// Stores a table: its rows as (digest, JSON text) and its ordered row digests.
    fn put_table(
        &mut self,
        project: &str,
        digest: &str,
        rows: &[(String, String)],
        row_digests: &[String],
    ) -> Result<()>;
    /// A table's row digests, in order, as this transaction sees them; `None` if no such table.
    fn table_digests(&mut self, project: &str, digest: &str) -> Result<Option<Vec<String>>>;
    /// Those of the row digests `digests` (each named once) that no stored table row of
    /// `project` has, as this transaction sees them, in the order given.
    fn missing_table_rows(&mut self, project: &str, digests: &[&str]) -> Result<Vec<String>>;
    /// Stores a file's bytes under their digest.
    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()>;
    /// Stores a feedback row; a row with the same id is kept as it is.
    fn insert_feedback(&mut self, feedback: &Feedback) -> Result<()>;
    /// Deletes the feedback rows of `project` with these ids; returns how many there were.
    /// A row with one of these ids may be stored again afterwards.
    fn delete_feedback(&mut self, project: &str, ids: &[String]) -> Result<u64>;
    /// Stores an LLM token price.
    fn insert_cost(&mut self, price: &LlmPrice) -> Result<()>;
    /// Deletes the prices of `project` with these ids; returns how many there were.
    fn delete_costs(&mut self, project: &str, ids: &[String]) -> Result<u64>;
    /// Stores a new API key.
    fn put_key(&mut self, key: &ApiKey) -> Result<()>;
    /// Revokes a key by id; `false` if no such unrevoked key exists.
    fn revoke_key(&mut self, id: &str, at: Micros) -> Result<bool>;
    /// Stores a new web UI session; sessions that expired before `now` may be dropped.
    fn put_session(&mut self, session: &Session, now: Micros) -> Result<()>;
    /// Ends a session by the hash of its token; `false` if there is no such live session.
    fn end_session(&mut self, hash: &str, at: Micros) -> Result<bool>;
    /// Soft-deletes a live call and all its live descendants; returns how many were deleted.
    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64>;
}

/// A job running `f`, whose value (or error) goes to `done` once the job is durable.
fn job<T, F, D>(hint: ReadHint, f: F, done: D) -> WriteJob
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Writer) -> Result<T> + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
{
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let filled = slot.clone();
    WriteJob {
        hint,
        run: Box::new(move |w| {
            let value = f(w)?;
            *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
            Ok(())
        }),
        done: Box::new(move |outcome| {
            let value = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            done(outcome.and_then(|()| {
                value.ok_or_else(|| Error::Storage("write job committed without a value".into()))
            }))
        }),
    }
}

/// Runs `f` as one write job and waits, blocking the thread, until it is durable.
pub fn write<T, F>(store: &dyn Store, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Writer) -> Result<T> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    store.submit(job(ReadHint::default(), f, move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().unwrap_or_else(|_| Err(Error::Storage("the writer stopped".into())))
}

/// Runs `f` as one write job and waits, without blocking the thread, until it is durable.
pub async fn write_async<T, F>(store: &dyn Store, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Writer) -> Result<T> + Send + 'static,
{
    write_hinted(store, ReadHint::default(), f).await
}

/// [`write_async`], saying what `f` will read (see [`ReadHint`]).
pub async fn write_hinted<T, F>(store: &dyn Store, hint: ReadHint, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Writer) -> Result<T> + Send + 'static,
{
    // Queued when first polled, as an async function's body runs.
    submit_hinted(store, hint, f).await
}

/// [`write_hinted`], the job queued at once (not when the answer is first awaited), so that
/// the caller can go on working, feeding the job, while the writer runs it.
pub fn submit_hinted<T, F>(
    store: &dyn Store,
    hint: ReadHint,
    f: F,
) -> impl std::future::Future<Output = Result<T>> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Writer) -> Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.submit(job(hint, f, move |r| {
        let _ = tx.send(r);
    }));
    async move { rx.await.unwrap_or_else(|_| Err(Error::Storage("the writer stopped".into()))) }
}

/// Stores a new API key.
pub fn insert_key(store: &dyn Store, key: ApiKey) -> Result<()> {
    write(store, move |w| w.put_key(&key))
}

/// Revokes a key by id; `false` if no such unrevoked key exists.
pub fn revoke_key(store: &dyn Store, id: &str, at: Micros) -> Result<bool> {
    let id = id.to_string();
    write(store, move |w| w.revoke_key(&id, at))
}
