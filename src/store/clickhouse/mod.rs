//! The scale-out store: ClickHouse over its HTTP interface.
//!
//! Tables are `ReplacingMergeTree(version)`: every change (an end, a soft delete, a revocation)
//! is a new version of the whole row, and reads take the newest version of each row with
//! `FINAL`. One writer thread runs queued write jobs in batches: each job's rows are held in
//! memory (reads inside the writer see them over ClickHouse's rows; a failed job's rows are
//! dropped), then each table's rows of the batch go in as one insert before the jobs are told
//! they are done, so readers never see part of a batch's rows of a table.

pub mod client;
mod overlay;
mod rows;
pub mod schema;

use std::collections::{HashMap, HashSet};

use self::client::{Client, Config, Query};
use self::overlay::{Appends, Overlay};
use self::rows::*;
use self::schema::{Layout, MIGRATIONS, MIGRATIONS_TABLE};
use super::writer::{Backend, Batch, WriterThread};
use crate::domain::call::{Call, Micros, now};
use crate::domain::error::{Error, Result};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::{ObjectQuery, ObjectVersion, TableRow, Version};
use crate::domain::page::Page;
use crate::domain::run_rows::{RunQuery, RunRow};
use crate::domain::store::{CallEndFields, Store, WriteJob, Writer};
use crate::domain::trace::CallQuery;
use crate::domain::view::Kind;

/// Most ids sent in one `IN` list (parameters travel in the URL).
const IN_CHUNK: usize = 1000;

/// ClickHouse-backed [`Store`].
pub struct ClickHouseStore {
    /// The writer thread; first, so that dropping the store stops it before anything else.
    writer: WriterThread,
    client: Client,
}

/// Applies the migrations `client`'s database lacks (creating the database first); returns
/// those applied now.
pub fn migrate(client: &Client) -> Result<Vec<(u32, &'static str)>> {
    let db = client.database();
    schema::identifier(db, "database name")?;
    client.execute_in(&Query::new(schema::create_database(db, &Layout::Single)), None)?;
    for ddl in schema::create_table(&MIGRATIONS_TABLE, db, &Layout::Single) {
        client.execute(&Query::new(ddl))?;
    }
    let applied: Vec<(u32,)> =
        client.query_all(&Query::new("SELECT version FROM weft_migrations FORMAT JSONCompactEachRow"))?;
    let applied: HashSet<u32> = applied.into_iter().map(|(v,)| v).collect();
    let latest = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newer) = applied.iter().copied().find(|v| *v > latest) {
        return Err(Error::Storage(format!(
            "database schema version {newer} is newer than this weft ({latest})"
        )));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for step in m.steps {
            for ddl in schema::step_ddl(step, db, &Layout::Single) {
                client.execute(&Query::new(ddl))?;
            }
        }
        let line = serde_json::json!({"version": m.version, "name": m.name, "applied_at": time(now())?});
        client.insert("weft_migrations", format!("{line}\n").as_bytes())?;
        done.push((m.version, m.name));
    }
    Ok(done)
}

impl ClickHouseStore {
    /// Connects, applies pending migrations and starts the writer.
    pub fn open(config: Config) -> Result<Self> {
        let client = Client::new(config);
        let applied = migrate(&client)?;
        for (version, name) in applied {
            tracing::info!(version, name, "applied ClickHouse migration");
        }
        let writer = WriterThread::start(WriteClient { client: client.clone(), version: 0 })?;
        Ok(ClickHouseStore { writer, client })
    }
}

/// A row version newer than every one this process wrote before: the time in µs, or one more
/// than the last when the clock has not moved on.
fn next_version(last: &mut u64) -> u64 {
    let t = u64::try_from(now()).unwrap_or(0);
    *last = t.max(*last + 1);
    *last
}

/// The writer thread's client, and the row version it wrote last.
struct WriteClient {
    client: Client,
    version: u64,
}

impl Backend for WriteClient {
    type Batch<'a> = InMemory<'a>;

    fn begin(&mut self) -> Result<InMemory<'_>> {
        Ok(InMemory { tx: Tx::new(&self.client), version: &mut self.version })
    }
}

/// A batch of jobs over one in-memory batch of rows, inserted when it commits (one insert per
/// table).
struct InMemory<'a> {
    tx: Tx<'a>,
    version: &'a mut u64,
}

impl Batch for InMemory<'_> {
    fn writer(&mut self) -> &mut dyn Writer {
        &mut self.tx
    }

    fn end_job(&mut self, outcome: Result<()>) -> Result<()> {
        let outcome = outcome.and_then(|()| self.tx.check_inserts());
        self.tx.end_job(outcome.is_ok());
        outcome
    }

    fn commit(mut self) -> Result<()> {
        let flushed = self.tx.flush(next_version(self.version));
        if let Err(e) = &flushed {
            let error = crate::domain::error::bounded(&e.to_string()).into_owned();
            tracing::error!(%error, "ClickHouse insert of a write batch failed");
        }
        flushed
    }
}

type CallKey = (String, String);
type ObjectKey = (String, String, String);

/// A batch of writes in progress, as the domain's [`Writer`].
struct Tx<'a> {
    client: &'a Client,
    calls: Overlay<CallKey, StoredCall>,
    objects: Overlay<ObjectKey, StoredObject>,
    feedback: Overlay<CallKey, Feedback>,
    keys: Overlay<String, ApiKey>,
    /// Calls the running job inserted without knowing whether they existed: checked at once
    /// when the job ends.
    unchecked: Vec<CallKey>,
    table_rows: Appends,
    tables: Appends,
    files: Appends,
}

impl<'a> Tx<'a> {
    fn new(client: &'a Client) -> Self {
        Tx {
            client,
            calls: Overlay::default(),
            objects: Overlay::default(),
            feedback: Overlay::default(),
            keys: Overlay::default(),
            unchecked: Vec::new(),
            table_rows: Appends::default(),
            tables: Appends::default(),
            files: Appends::default(),
        }
    }

    fn end_job(&mut self, keep: bool) {
        self.unchecked.clear();
        self.calls.end_job(keep);
        self.objects.end_job(keep);
        self.feedback.end_job(keep);
        self.keys.end_job(keep);
        self.table_rows.end_job(keep);
        self.tables.end_job(keep);
        self.files.end_job(keep);
    }

    /// Inserts every row the batch wrote, one insert per table, with `version`.
    fn flush(&mut self, version: u64) -> Result<()> {
        fn insert(client: &Client, table: &str, lines: Vec<String>) -> Result<()> {
            if lines.is_empty() {
                return Ok(());
            }
            let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
            for l in lines {
                body.push_str(&l);
                body.push('\n');
            }
            client.insert(table, body.as_bytes())
        }
        let encode = |lines: Vec<Result<String>>| lines.into_iter().collect::<Result<Vec<_>>>();
        let calls = encode(self.calls.take_written().iter().map(|c| call_line(c, version)).collect())?;
        let objects = encode(self.objects.take_written().iter().map(|o| object_line(o, version)).collect())?;
        let feedback =
            encode(self.feedback.take_written().iter().map(|f| feedback_line(f, version)).collect())?;
        let keys = encode(self.keys.take_written().iter().map(|k| key_line(k, version)).collect())?;
        // Contents first, then what refers to them.
        insert(self.client, "files", self.files.take())?;
        insert(self.client, "table_rows", self.table_rows.take())?;
        insert(self.client, "tables", self.tables.take())?;
        insert(self.client, "objects", objects)?;
        insert(self.client, "calls", calls)?;
        insert(self.client, "feedback", feedback)?;
        insert(self.client, "api_keys", keys)
    }

    /// Fails the running job if a call it inserted existed already in ClickHouse (one query
    /// per project and [`IN_CHUNK`] ids, instead of one per insert).
    fn check_inserts(&mut self) -> Result<()> {
        let mut keys = std::mem::take(&mut self.unchecked);
        keys.sort();
        keys.dedup();
        for group in keys.chunk_by(|a, b| a.0 == b.0) {
            for chunk in group.chunks(IN_CHUNK) {
                let Some((project, _)) = chunk.first() else {
                    continue;
                };
                let ids: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
                let mut q = Query::default();
                let (p, list) = (q.string(project), q.strings(&ids));
                q.push(&format!(
                    "SELECT id FROM calls WHERE project_id = {p} AND id IN {list} LIMIT 1 \
                     FORMAT JSONCompactEachRow"
                ));
                if let Some((id,)) = self.client.query_all::<(String,)>(&q)?.pop() {
                    return Err(Error::BadRequest(format!("Call {id} already exists")));
                }
            }
        }
        Ok(())
    }

    /// A call as the batch sees it, deleted or not.
    fn stored_call(&mut self, project: &str, id: &str) -> Result<Option<StoredCall>> {
        let key = (project.to_string(), id.to_string());
        if let Some(known) = self.calls.get(&key) {
            return Ok(known.cloned());
        }
        let mut q = Query::default();
        let (p, i) = (q.string(project), q.string(id));
        q.push(&format!(
            "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND id = {i} LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        let found = self.client.query_all::<CallTuple>(&q)?.pop().map(call_from_tuple);
        self.calls.remember(key, found.clone());
        Ok(found)
    }

    /// The live children of any of `parents`, as the batch sees them (unordered).
    fn children_of(&mut self, project: &str, parents: &[String]) -> Result<Vec<StoredCall>> {
        let mut out = Vec::new();
        for chunk in parents.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, ids) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND parent_id IN {ids} \
                 AND deleted_at IS NULL FORMAT JSONCompactEachRow"
            ));
            for t in self.client.query_all::<CallTuple>(&q)? {
                let s = call_from_tuple(t);
                let key = (project.to_string(), s.call.id.clone());
                if !self.calls.knows(&key) {
                    self.calls.remember(key, Some(s));
                }
            }
        }
        let wanted: HashSet<&str> = parents.iter().map(String::as_str).collect();
        for ((p, _), s) in self.calls.rows() {
            if p == project
                && s.deleted_at.is_none()
                && s.call.parent_id.as_deref().is_some_and(|parent| wanted.contains(parent))
            {
                out.push(s.clone());
            }
        }
        Ok(out)
    }

    /// Every version (deleted or not) of an object as the batch sees them.
    fn object_versions(&mut self, project: &str, object_id: &str) -> Result<Vec<StoredObject>> {
        let mut q = Query::default();
        let (p, o) = (q.string(project), q.string(object_id));
        q.push(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects FINAL WHERE project_id = {p} AND object_id = {o} \
             FORMAT JSONCompactEachRow"
        ));
        for t in self.client.query_all::<ObjectTuple>(&q)? {
            let s = object_from_tuple(t);
            let key = (project.to_string(), object_id.to_string(), s.object.digest.clone());
            self.objects.remember(key, Some(s));
        }
        Ok(self
            .objects
            .rows()
            .filter(|((p, o, _), _)| p == project && o == object_id)
            .map(|(_, s)| s.clone())
            .collect())
    }
}

impl Writer for Tx<'_> {
    fn insert_call(&mut self, c: &Call) -> Result<()> {
        check_call_times(c)?;
        let key = (c.project_id.clone(), c.id.clone());
        match self.calls.get(&key) {
            Some(Some(_)) => return Err(Error::BadRequest(format!("Call {} already exists", c.id))),
            Some(None) => {}
            // Whether ClickHouse holds it is checked for all such inserts when the job ends;
            // the job fails then as it would now.
            None => self.unchecked.push(key.clone()),
        }
        self.calls.put(key, StoredCall { call: c.clone(), deleted_at: None });
        Ok(())
    }

    fn update_call(&mut self, c: &Call) -> Result<()> {
        check_call_times(c)?;
        if self.stored_call(&c.project_id, &c.id)?.is_some_and(|s| s.deleted_at.is_none()) {
            self.calls
                .put((c.project_id.clone(), c.id.clone()), StoredCall { call: c.clone(), deleted_at: None });
        }
        Ok(())
    }

    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>> {
        Ok(self.stored_call(project, id)?.filter(|s| s.deleted_at.is_none()).map(|s| s.call))
    }

    fn prefetch_calls(&mut self, project: &str, ids: &[String]) -> Result<()> {
        let unknown: Vec<&String> = {
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| seen.insert(*id) && !self.calls.knows(&(project.to_string(), (*id).clone())))
                .collect()
        };
        for chunk in unknown.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, list) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND id IN {list} \
                 FORMAT JSONCompactEachRow"
            ));
            let mut found: HashMap<String, StoredCall> = HashMap::new();
            for t in self.client.query_all::<CallTuple>(&q)? {
                let s = call_from_tuple(t);
                found.insert(s.call.id.clone(), s);
            }
            for id in chunk {
                self.calls.remember((project.to_string(), (*id).clone()), found.remove(*id));
            }
        }
        Ok(())
    }

    fn call_exists(&mut self, project: &str, id: &str) -> Result<bool> {
        Ok(self.stored_call(project, id)?.is_some())
    }

    fn end_call(&mut self, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
        check_time(end.ended_at)?;
        let Some(mut s) = self.stored_call(project, id)?.filter(|s| s.deleted_at.is_none()) else {
            return Ok(false);
        };
        s.call.ended_at = Some(end.ended_at);
        s.call.exception = end.exception.map(String::from);
        s.call.output = Some(end.output.clone());
        s.call.summary = Some(end.summary.clone());
        self.calls.put((project.to_string(), id.to_string()), s);
        Ok(true)
    }

    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>> {
        let mut kids: Vec<Call> =
            self.children_of(project, &[parent_id.to_string()])?.into_iter().map(|s| s.call).collect();
        kids.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(kids)
    }

    fn put_object(&mut self, o: &ObjectVersion) -> Result<ObjectVersion> {
        let versions = self.object_versions(&o.project_id, &o.object_id)?;
        let key = (o.project_id.clone(), o.object_id.clone(), o.digest.clone());
        if let Some(found) = versions.iter().find(|s| s.object.digest == o.digest) {
            if found.deleted_at.is_some() {
                self.objects.put(key, StoredObject { object: found.object.clone(), deleted_at: None });
            }
            return Ok(found.object.clone());
        }
        let next = versions.iter().map(|s| s.object.version_index + 1).max().unwrap_or(0);
        let stored = ObjectVersion { version_index: next, ..o.clone() };
        self.objects.put(key, StoredObject { object: stored.clone(), deleted_at: None });
        Ok(stored)
    }

    fn delete_objects(
        &mut self,
        project: &str,
        object_id: &str,
        digests: Option<&[String]>,
        at: Micros,
    ) -> Result<u64> {
        let mut n = 0;
        let digests: Option<HashSet<&str>> = digests.map(|d| d.iter().map(String::as_str).collect());
        for s in self.object_versions(project, object_id)? {
            if s.deleted_at.is_some()
                || digests.as_ref().is_some_and(|d| !d.contains(s.object.digest.as_str()))
            {
                continue;
            }
            let key = (project.to_string(), object_id.to_string(), s.object.digest.clone());
            self.objects.put(key, StoredObject { object: s.object, deleted_at: Some(at) });
            n += 1;
        }
        Ok(n)
    }

    fn put_table(
        &mut self,
        project: &str,
        digest: &str,
        rows: &[(String, String)],
        row_digests: &[String],
    ) -> Result<()> {
        for (d, val) in rows {
            self.table_rows.push(table_row_line(project, d, val));
        }
        self.tables.push(table_line(project, digest, row_digests));
        Ok(())
    }

    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()> {
        self.files.push(file_line(project, digest, content));
        Ok(())
    }

    fn insert_feedback(&mut self, f: &Feedback) -> Result<()> {
        let key = (f.project_id.clone(), f.id.clone());
        let exists = match self.feedback.get(&key) {
            Some(known) => known.is_some(),
            None => {
                let mut q = Query::default();
                let (p, i) = (q.string(&f.project_id), q.string(&f.id));
                q.push(&format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM feedback FINAL WHERE project_id = {p} AND id = {i} \
                     LIMIT 1 FORMAT JSONCompactEachRow"
                ));
                let found = self.client.query_all::<FeedbackTuple>(&q)?.pop().map(feedback_from_tuple);
                let exists = found.is_some();
                self.feedback.remember(key.clone(), found);
                exists
            }
        };
        if !exists {
            self.feedback.put(key, f.clone());
        }
        Ok(())
    }

    fn put_key(&mut self, k: &ApiKey) -> Result<()> {
        self.keys.put(k.id.clone(), k.clone());
        Ok(())
    }

    fn revoke_key(&mut self, id: &str, at: Micros) -> Result<bool> {
        let key = id.to_string();
        let found = match self.keys.get(&key) {
            Some(known) => known.cloned(),
            None => {
                let mut q = Query::default();
                let i = q.string(id);
                q.push(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys FINAL WHERE id = {i} LIMIT 1 FORMAT JSONCompactEachRow"
                ));
                let found = self.client.query_all::<KeyTuple>(&q)?.pop().map(key_from_tuple);
                self.keys.remember(key.clone(), found.clone());
                found
            }
        };
        match found {
            Some(k) if k.revoked_at.is_none() => {
                self.keys.put(key, ApiKey { revoked_at: Some(at), ..k });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64> {
        let Some(root) = self.stored_call(project, id)?.filter(|s| s.deleted_at.is_none()) else {
            return Ok(0);
        };
        let mut seen: HashSet<String> = HashSet::from([root.call.id.clone()]);
        let mut subtree = vec![root];
        let mut frontier = vec![id.to_string()];
        while !frontier.is_empty() {
            let kids = self.children_of(project, &frontier)?;
            frontier.clear();
            for k in kids {
                if seen.insert(k.call.id.clone()) {
                    frontier.push(k.call.id.clone());
                    subtree.push(k);
                }
            }
        }
        let n = subtree.len() as u64;
        for mut s in subtree {
            s.deleted_at = Some(at);
            self.calls.put((project.to_string(), s.call.id.clone()), s);
        }
        Ok(n)
    }
}

/// `LIMIT .. OFFSET ..` of a page, as parameters.
fn limit_offset(q: &mut Query, page: Page) -> String {
    let (l, o) = (q.uint(page.limit.unwrap_or(u64::MAX)), q.uint(page.offset));
    format!(" LIMIT {l} OFFSET {o}")
}

/// A row of a run list.
type RunTuple = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<Micros>,
    bool,
    bool,
    Option<String>,
    Option<String>,
);

/// An object version with whether it is its object's latest live version.
type LatestObjectTuple = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<String>,
    Option<Micros>,
    bool,
);

fn latest_object(t: LatestObjectTuple) -> (ObjectVersion, bool) {
    let s = object_from_tuple((t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10));
    (s.object, t.11)
}

/// The live versions of a project's objects (of `object_ids`, if any) with an `is_latest`
/// column: whether each is the newest live version of its object.
fn live_objects_with_latest(q: &mut Query, project: &str, object_ids: &[String]) -> String {
    let p = q.string(project);
    let only = if object_ids.is_empty() {
        String::new()
    } else {
        format!(" AND object_id IN {}", q.strings(object_ids))
    };
    format!(
        "(SELECT project_id, object_id, digest, version_index, kind, base_object_class, leaf_object_class, \
         val, created_at, wb_user_id, deleted_at, \
         toBool(version_index = max(version_index) OVER (PARTITION BY object_id)) AS is_latest \
         FROM objects FINAL \
         WHERE project_id = {p} AND deleted_at IS NULL{only})"
    )
}

impl ClickHouseStore {
    fn table_digests(&self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        let mut q = Query::default();
        let (p, d) = (q.string(project), q.string(digest));
        q.push(&format!(
            "SELECT row_digests FROM tables WHERE project_id = {p} AND digest = {d} LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<(Vec<String>,)>(&q)?.pop().map(|(l,)| l))
    }

    /// Streams the calls of a query built by `build` to `sink`.
    fn stream_calls(&self, q: &Query, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        self.client.query_rows::<CallTuple>(q, &mut |t| Ok(sink(call_from_tuple(t).call)))
    }
}

impl Store for ClickHouseStore {
    fn submit(&self, job: WriteJob) {
        self.writer.submit(job);
    }

    fn eval_runs(
        &self,
        project: &str,
        query: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        let mut q = Query::default();
        let p = q.string(project);
        let mut filters = String::new();
        for (column, values) in
            [("evaluation", &query.evaluations), ("model", &query.models), ("id", &query.ids)]
        {
            if !values.is_empty() {
                filters.push_str(&format!(" AND {column} IN {}", q.strings(values)));
            }
        }
        let window = limit_offset(&mut q, query.page);
        q.push(&format!(
            "SELECT r.id, r.evaluation, r.model, r.run_id, r.display_name, r.op_name, \
               toUnixTimestamp64Micro(r.started_at), toUnixTimestamp64Micro(r.ended_at), \
               toBool(r.exception IS NOT NULL), toBool(f.n > toUInt64(r.exception IS NOT NULL)), \
               r.summary, if(r.logged_run, r.output, NULL) \
             FROM (SELECT id, trace_id, evaluation, model, run_id, display_name, op_name, started_at, \
                     ended_at, exception, summary, output, logged_run \
                   FROM calls FINAL WHERE project_id = {p} AND kind = 'run' AND deleted_at IS NULL{filters}) AS r \
             LEFT JOIN (SELECT trace_id, count() AS n FROM calls FINAL \
                   WHERE project_id = {p} AND exception IS NOT NULL AND deleted_at IS NULL \
                   GROUP BY trace_id) AS f ON f.trace_id = r.trace_id \
             ORDER BY r.started_at, r.id{window} FORMAT JSONCompactEachRow"
        ));
        self.client.query_rows::<RunTuple>(&q, &mut |t| {
            let row = RunRow {
                id: &t.0,
                evaluation: t.1.as_deref().unwrap_or(""),
                model: t.2.as_deref().unwrap_or(""),
                source_run_id: t.3.as_deref(),
                display_name: t.4.as_deref(),
                op_name: &t.5,
                started_at: t.6,
                ended_at: t.7,
                failed: t.8,
                descendant_failed: t.9,
                summary: t.10.as_deref(),
                output: t.11.as_deref(),
            };
            Ok(sink(&row))
        })
    }

    fn view_calls(
        &self,
        project: &str,
        kind: Kind,
        run_id: Option<&str>,
        page: Page,
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        let Some(tag) = kind.tag() else {
            return Ok(());
        };
        let mut q = Query::default();
        let (p, k) = (q.string(project), q.string(tag));
        let run = match run_id {
            Some(r) => format!(" AND run_id = {}", q.string(r)),
            None => String::new(),
        };
        let window = limit_offset(&mut q, page);
        q.push(&format!(
            "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND kind = {k} \
             AND deleted_at IS NULL{run} ORDER BY started_at, id{window} FORMAT JSONCompactEachRow"
        ));
        self.stream_calls(&q, sink)
    }

    fn calls(&self, project: &str, cq: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        let mut q = Query::default();
        let p = q.string(project);
        let mut filters = String::new();
        for (column, values) in [
            ("id", &cq.call_ids),
            ("trace_id", &cq.trace_ids),
            ("parent_id", &cq.parent_ids),
            ("wb_user_id", &cq.wb_user_ids),
        ] {
            if !values.is_empty() {
                filters.push_str(&format!(" AND {column} IN {}", q.strings(values)));
            }
        }
        if !cq.op_names.is_empty() {
            let mut exact = Vec::new();
            let mut prefixes = Vec::new();
            for op in &cq.op_names {
                match op.strip_suffix(":*") {
                    Some(prefix) => prefixes.push(format!("{prefix}:")),
                    None => exact.push(op.clone()),
                }
            }
            let (e, pre) = (q.strings(&exact), q.strings(&prefixes));
            filters.push_str(&format!(
                " AND (op_name IN {e} OR arrayExists(x -> startsWith(op_name, x), {pre}))"
            ));
        }
        if cq.trace_roots_only {
            filters.push_str(" AND parent_id IS NULL");
        }
        let dir = if cq.descending { "DESC" } else { "ASC" };
        let window = limit_offset(&mut q, cq.page);
        q.push(&format!(
            "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND deleted_at IS NULL{filters} \
             ORDER BY started_at {dir}, id {dir}{window} FORMAT JSONCompactEachRow"
        ));
        self.stream_calls(&q, sink)
    }

    fn call(&self, project: &str, id: &str) -> Result<Option<Call>> {
        let mut q = Query::default();
        let (p, i) = (q.string(project), q.string(id));
        q.push(&format!(
            "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND id = {i} \
             AND deleted_at IS NULL LIMIT 1 FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<CallTuple>(&q)?.pop().map(|t| call_from_tuple(t).call))
    }

    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>> {
        let mut q = Query::default();
        let source = live_objects_with_latest(&mut q, project, &[object_id.to_string()]);
        let pick = match version {
            Version::Latest => "is_latest".to_string(),
            Version::Index(i) => format!("version_index = {}", q.int(*i)),
            Version::Digest(d) => format!("digest = {}", q.string(d)),
        };
        q.push(&format!(
            "SELECT {OBJECT_COLUMNS}, is_latest FROM {source} WHERE {pick} LIMIT 1 FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<LatestObjectTuple>(&q)?.pop().map(latest_object))
    }

    fn objects(
        &self,
        project: &str,
        oq: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool) -> bool,
    ) -> Result<()> {
        let mut q = Query::default();
        let source = live_objects_with_latest(&mut q, project, &oq.object_ids);
        let mut filters = String::from("1");
        if !oq.base_object_classes.is_empty() {
            filters.push_str(&format!(" AND base_object_class IN {}", q.strings(&oq.base_object_classes)));
        }
        match oq.is_op {
            Some(true) => filters.push_str(" AND kind = 'op'"),
            Some(false) => filters.push_str(" AND kind != 'op'"),
            None => {}
        }
        if oq.latest_only {
            filters.push_str(" AND is_latest");
        }
        let window = limit_offset(&mut q, oq.page);
        q.push(&format!(
            "SELECT {OBJECT_COLUMNS}, is_latest FROM {source} WHERE {filters} \
             ORDER BY object_id, version_index{window} FORMAT JSONCompactEachRow"
        ));
        self.client.query_rows::<LatestObjectTuple>(&q, &mut |row| {
            let (o, latest) = latest_object(row);
            Ok(sink(o, latest))
        })
    }

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
        let wanted = super::wanted_rows(&list, only, page);
        let mut vals: HashMap<String, String> = HashMap::new();
        let distinct: Vec<&String> = {
            let mut seen = HashSet::new();
            wanted.iter().map(|(_, d)| *d).filter(|d| seen.insert(*d)).collect()
        };
        for chunk in distinct.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, ds) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT digest, val FROM table_rows WHERE project_id = {p} AND digest IN {ds} \
                 LIMIT 1 BY digest FORMAT JSONCompactEachRow"
            ));
            self.client.query_rows::<(String, String)>(&q, &mut |(d, v)| {
                vals.insert(d, v);
                Ok(true)
            })?;
        }
        Ok(Some(
            wanted
                .into_iter()
                .filter_map(|(i, d)| {
                    vals.get(d).map(|v| TableRow {
                        digest: d.clone(),
                        val: super::json_from_text(v),
                        original_index: i as i64,
                    })
                })
                .collect(),
        ))
    }

    fn table_len(&self, project: &str, digest: &str) -> Result<Option<u64>> {
        Ok(self.table_digests(project, digest)?.map(|l| l.len() as u64))
    }

    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let mut q = Query::default();
        let (p, d) = (q.string(project), q.string(digest));
        q.push(&format!(
            "SELECT content_base64 FROM files WHERE project_id = {p} AND digest = {d} LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        self.client.query_all::<(String,)>(&q)?.pop().map(|(b,)| file_content(&b)).transpose()
    }

    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()> {
        let mut q = Query::default();
        let p = q.string(project);
        q.push(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback FINAL WHERE project_id = {p} \
             ORDER BY created_at, id FORMAT JSONCompactEachRow"
        ));
        self.client.query_rows::<FeedbackTuple>(&q, &mut |t| Ok(sink(feedback_from_tuple(t))))
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let mut q = Query::default();
        let h = q.string(hash);
        q.push(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys FINAL WHERE hash = {h} AND revoked_at IS NULL LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<KeyTuple>(&q)?.pop().map(key_from_tuple))
    }

    fn keys(&self) -> Result<Vec<ApiKey>> {
        let q = Query::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys FINAL ORDER BY created_at, id FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<KeyTuple>(&q)?.into_iter().map(key_from_tuple).collect())
    }
}
