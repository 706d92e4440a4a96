//! Writes to ClickHouse: the writer thread's batch (rows held in memory, over ClickHouse's,
//! until one insert per table commits them) and the writes of a job, as the domain's
//! [`Writer`].

use std::collections::{HashMap, HashSet};

use super::IN_CHUNK;
use super::client::{Client, Query};
use super::overlay::{Appends, Overlay};
use super::rows::*;
use crate::domain::call::{Call, Micros, now};
use crate::domain::costs::LlmPrice;
use crate::domain::error::{Error, Result};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::ObjectVersion;
use crate::domain::sessions::Session;
use crate::domain::store::{CallEndFields, Writer};
use crate::store::writer::{Backend, Batch};

/// A row version newer than every one this process wrote before: the time in µs, or one more
/// than the last when the clock has not moved on.
fn next_version(last: &mut u64) -> u64 {
    let t = u64::try_from(now()).unwrap_or(0);
    *last = t.max(*last + 1);
    *last
}

/// The writer thread's client, and the row version it wrote last.
pub(super) struct WriteClient {
    pub(super) client: Client,
    pub(super) version: u64,
}

impl Backend for WriteClient {
    type Batch<'a> = InMemory<'a>;

    fn begin(&mut self) -> Result<InMemory<'_>> {
        Ok(InMemory { tx: Tx::new(&self.client), version: &mut self.version })
    }
}

/// A batch of jobs over one in-memory batch of rows, inserted when it commits (one insert per
/// table).
pub(super) struct InMemory<'a> {
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

/// (project, object id, digest, tag).
type TagKey = (String, String, String, String);

/// A batch of writes in progress, as the domain's [`Writer`].
pub(super) struct Tx<'a> {
    pub(super) client: &'a Client,
    calls: Overlay<CallKey, StoredCall>,
    objects: Overlay<ObjectKey, StoredObject>,
    /// Feedback rows, each with its deletion time (a purged row is a new version of it).
    feedback: Overlay<CallKey, (Feedback, Option<Micros>)>,
    /// LLM token prices, each with its deletion time.
    prices: Overlay<CallKey, (LlmPrice, Option<Micros>)>,
    tags: Overlay<TagKey, TagRow>,
    /// By (project, object id, alias).
    aliases: Overlay<ObjectKey, AliasRow>,
    pub(super) keys: Overlay<String, ApiKey>,
    pub(super) sessions: Overlay<String, Session>,
    /// Calls the running job inserted without knowing whether they existed: checked at once
    /// when the job ends.
    unchecked: Vec<CallKey>,
    table_rows: Appends,
    tables: Appends,
    files: Appends,
    /// Table rows known to exist (written by the batch or read), by (project, digest).
    known_rows: Overlay<CallKey, ()>,
    /// Tables' row digests the batch wrote or read, by (project, digest).
    table_lists: Overlay<CallKey, Vec<String>>,
}

impl<'a> Tx<'a> {
    fn new(client: &'a Client) -> Self {
        Tx {
            client,
            calls: Overlay::default(),
            objects: Overlay::default(),
            tags: Overlay::default(),
            aliases: Overlay::default(),
            feedback: Overlay::default(),
            prices: Overlay::default(),
            keys: Overlay::default(),
            sessions: Overlay::default(),
            unchecked: Vec::new(),
            table_rows: Appends::default(),
            tables: Appends::default(),
            files: Appends::default(),
            known_rows: Overlay::default(),
            table_lists: Overlay::default(),
        }
    }

    fn end_job(&mut self, keep: bool) {
        self.unchecked.clear();
        self.calls.end_job(keep);
        self.objects.end_job(keep);
        self.tags.end_job(keep);
        self.aliases.end_job(keep);
        self.feedback.end_job(keep);
        self.prices.end_job(keep);
        self.keys.end_job(keep);
        self.sessions.end_job(keep);
        self.table_rows.end_job(keep);
        self.tables.end_job(keep);
        self.files.end_job(keep);
        self.known_rows.end_job(keep);
        self.table_lists.end_job(keep);
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
        let feedback = encode(
            self.feedback.take_written().iter().map(|(f, d)| feedback_line(f, *d, version)).collect(),
        )?;
        let prices =
            encode(self.prices.take_written().iter().map(|(p, d)| price_line(p, *d, version)).collect())?;
        let tags = encode(self.tags.take_written().iter().map(|t| tag_line(t, version)).collect())?;
        let aliases = encode(self.aliases.take_written().iter().map(|a| alias_line(a, version)).collect())?;
        let keys = encode(self.keys.take_written().iter().map(|k| key_line(k, version)).collect())?;
        let sessions =
            encode(self.sessions.take_written().iter().map(|s| session_line(s, version)).collect())?;
        // What the batch knows of tables is inserted through `table_rows` and `tables`.
        self.known_rows.take_written();
        self.table_lists.take_written();
        // Contents first, then what refers to them.
        insert(self.client, "files", self.files.take())?;
        insert(self.client, "table_rows", self.table_rows.take())?;
        insert(self.client, "tables", self.tables.take())?;
        insert(self.client, "objects", objects)?;
        insert(self.client, "object_tags", tags)?;
        insert(self.client, "object_aliases", aliases)?;
        insert(self.client, "calls", calls)?;
        insert(self.client, "feedback", feedback)?;
        insert(self.client, "llm_token_prices", prices)?;
        insert(self.client, "api_keys", keys)?;
        insert(self.client, "ui_sessions", sessions)
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
                    return Err(Error::Conflict(format!("Call {id} already exists")));
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

impl Tx<'_> {
    /// The live feedback rows of `project` among `ids`, as the batch sees them (those it does
    /// not know yet are read in a few queries and remembered).
    fn live_feedback(&mut self, ids: &[String], project: &str) -> Result<Vec<Feedback>> {
        let mut unknown: Vec<&String> =
            ids.iter().filter(|id| !self.feedback.knows(&(project.to_string(), (*id).clone()))).collect();
        unknown.sort();
        unknown.dedup();
        for chunk in unknown.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, i) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT {FEEDBACK_COLUMNS} FROM feedback FINAL WHERE project_id = {p} AND id IN {i} \
                 AND deleted_at IS NULL FORMAT JSONCompactEachRow"
            ));
            let found: HashMap<String, Feedback> = self
                .client
                .query_all::<FeedbackTuple>(&q)?
                .into_iter()
                .map(feedback_from_tuple)
                .map(|f| (f.id.clone(), f))
                .collect();
            for id in chunk {
                let key = (project.to_string(), (*id).clone());
                self.feedback.remember(key, found.get(*id).map(|f| (f.clone(), None)));
            }
        }
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| match self.feedback.get(&(project.to_string(), id.clone())) {
                Some(Some((f, None))) => Some(f.clone()),
                _ => None,
            })
            .collect())
    }

    /// Drops the tags of the versions `digests` of an object, and the aliases naming them.
    fn drop_labels(&mut self, project: &str, object_id: &str, digests: &HashSet<String>) -> Result<()> {
        if digests.is_empty() {
            return Ok(());
        }
        let mut q = Query::default();
        let (p, o) = (q.string(project), q.string(object_id));
        q.push(&format!(
            "SELECT digest, tag FROM object_tags FINAL WHERE project_id = {p} AND object_id = {o} \
             AND NOT removed FORMAT JSONCompactEachRow"
        ));
        for (digest, tag) in self.client.query_all::<(String, String)>(&q)? {
            let key = (project.to_string(), object_id.to_string(), digest.clone(), tag.clone());
            let row =
                TagRow { project_id: key.0.clone(), object_id: key.1.clone(), digest, tag, removed: false };
            self.tags.remember(key, Some(row));
        }
        let doomed: Vec<(TagKey, TagRow)> = self
            .tags
            .rows()
            .filter(|((p, o, d, _), t)| p == project && o == object_id && digests.contains(d) && !t.removed)
            .map(|(k, t)| (k.clone(), TagRow { removed: true, ..t.clone() }))
            .collect();
        for (k, t) in doomed {
            self.tags.put(k, t);
        }
        let mut q = Query::default();
        let (p, o) = (q.string(project), q.string(object_id));
        q.push(&format!(
            "SELECT alias, digest FROM object_aliases FINAL WHERE project_id = {p} AND object_id = {o} \
             AND NOT removed FORMAT JSONCompactEachRow"
        ));
        for (alias, digest) in self.client.query_all::<(String, String)>(&q)? {
            let key = (project.to_string(), object_id.to_string(), alias.clone());
            let row = AliasRow {
                project_id: key.0.clone(),
                object_id: key.1.clone(),
                alias,
                digest,
                removed: false,
            };
            self.aliases.remember(key, Some(row));
        }
        let doomed: Vec<(ObjectKey, AliasRow)> = self
            .aliases
            .rows()
            .filter(|((p, o, _), a)| {
                p == project && o == object_id && digests.contains(&a.digest) && !a.removed
            })
            .map(|(k, a)| (k.clone(), AliasRow { removed: true, ..a.clone() }))
            .collect();
        for (k, a) in doomed {
            self.aliases.put(k, a);
        }
        Ok(())
    }

    fn put_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String], removed: bool) {
        for tag in tags {
            let key = (project.to_string(), object_id.to_string(), digest.to_string(), tag.clone());
            let row = TagRow {
                project_id: key.0.clone(),
                object_id: key.1.clone(),
                digest: key.2.clone(),
                tag: tag.clone(),
                removed,
            };
            self.tags.put(key, row);
        }
    }
}

impl Writer for Tx<'_> {
    fn insert_call(&mut self, c: &Call) -> Result<()> {
        check_call_times(c)?;
        let key = (c.project_id.clone(), c.id.clone());
        match self.calls.get(&key) {
            Some(Some(_)) => return Err(Error::Conflict(format!("Call {} already exists", c.id))),
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
        s.call.wb_run_step_end = end.wb_run_step_end;
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

    fn object_live(&mut self, project: &str, object_id: &str, digest: &str) -> Result<bool> {
        Ok(self
            .object_versions(project, object_id)?
            .iter()
            .any(|s| s.object.digest == digest && s.deleted_at.is_none()))
    }

    fn add_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        self.put_tags(project, object_id, digest, tags, false);
        Ok(())
    }

    fn remove_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        self.put_tags(project, object_id, digest, tags, true);
        Ok(())
    }

    fn set_aliases(
        &mut self,
        project: &str,
        object_id: &str,
        digest: &str,
        aliases: &[String],
    ) -> Result<()> {
        for alias in aliases {
            let key = (project.to_string(), object_id.to_string(), alias.clone());
            let row = AliasRow {
                project_id: key.0.clone(),
                object_id: key.1.clone(),
                alias: alias.clone(),
                digest: digest.to_string(),
                removed: false,
            };
            self.aliases.put(key, row);
        }
        Ok(())
    }

    fn remove_aliases(&mut self, project: &str, object_id: &str, aliases: &[String]) -> Result<()> {
        for alias in aliases {
            let key = (project.to_string(), object_id.to_string(), alias.clone());
            let row = AliasRow {
                project_id: key.0.clone(),
                object_id: key.1.clone(),
                alias: alias.clone(),
                digest: String::new(),
                removed: true,
            };
            self.aliases.put(key, row);
        }
        Ok(())
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
        let mut deleted = HashSet::new();
        for s in self.object_versions(project, object_id)? {
            if s.deleted_at.is_some()
                || digests.as_ref().is_some_and(|d| !d.contains(s.object.digest.as_str()))
            {
                continue;
            }
            deleted.insert(s.object.digest.clone());
            let key = (project.to_string(), object_id.to_string(), s.object.digest.clone());
            self.objects.put(key, StoredObject { object: s.object, deleted_at: Some(at) });
            n += 1;
        }
        self.drop_labels(project, object_id, &deleted)?;
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
            self.known_rows.put((project.to_string(), d.clone()), ());
        }
        self.tables.push(table_line(project, digest, row_digests));
        self.table_lists.put((project.to_string(), digest.to_string()), row_digests.to_vec());
        Ok(())
    }

    fn table_digests(&mut self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        let key = (project.to_string(), digest.to_string());
        if let Some(known) = self.table_lists.get(&key) {
            return Ok(known.cloned());
        }
        let mut q = Query::default();
        let (p, d) = (q.string(project), q.string(digest));
        q.push(&format!(
            "SELECT row_digests FROM tables WHERE project_id = {p} AND digest = {d} LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        let found = self.client.query_all::<(Vec<String>,)>(&q)?.pop().map(|(l,)| l);
        self.table_lists.remember(key, found.clone());
        Ok(found)
    }

    fn missing_table_rows(&mut self, project: &str, digests: &[&str]) -> Result<Vec<String>> {
        let key = |d: &str| (project.to_string(), d.to_string());
        let unknown: Vec<&str> = digests
            .iter()
            .copied()
            .filter(|d| !matches!(self.known_rows.get(&key(d)), Some(Some(()))))
            .collect();
        for chunk in unknown.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, ds) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT DISTINCT digest FROM table_rows WHERE project_id = {p} AND digest IN {ds} \
                 FORMAT JSONCompactEachRow"
            ));
            for (d,) in self.client.query_all::<(String,)>(&q)? {
                self.known_rows.remember(key(&d), Some(()));
            }
        }
        Ok(unknown
            .into_iter()
            .filter(|d| !matches!(self.known_rows.get(&key(d)), Some(Some(()))))
            .map(String::from)
            .collect())
    }

    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()> {
        self.files.push(file_line(project, digest, content));
        Ok(())
    }

    fn insert_feedback(&mut self, f: &Feedback) -> Result<()> {
        let key = (f.project_id.clone(), f.id.clone());
        let live = self.live_feedback(std::slice::from_ref(&f.id), &f.project_id)?;
        if live.is_empty() {
            self.feedback.put(key, (f.clone(), None));
        }
        Ok(())
    }

    fn delete_feedback(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        let at = now();
        let live = self.live_feedback(ids, project)?;
        let n = live.len() as u64;
        for f in live {
            self.feedback.put((project.to_string(), f.id.clone()), (f, Some(at)));
        }
        Ok(n)
    }

    fn insert_cost(&mut self, p: &LlmPrice) -> Result<()> {
        check_time(p.effective_date)?;
        self.prices.put((p.project_id.clone(), p.id.clone()), (p.clone(), None));
        Ok(())
    }

    fn delete_costs(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        let at = now();
        let mut unknown: Vec<&String> = Vec::new();
        for id in ids {
            if !self.prices.knows(&(project.to_string(), id.clone())) {
                unknown.push(id);
            }
        }
        unknown.sort();
        unknown.dedup();
        for chunk in unknown.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, i) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT {PRICE_COLUMNS} FROM llm_token_prices FINAL WHERE project_id = {p} AND id IN {i} \
                 AND deleted_at IS NULL FORMAT JSONCompactEachRow"
            ));
            let found: HashMap<String, LlmPrice> = self
                .client
                .query_all::<PriceTuple>(&q)?
                .into_iter()
                .map(price_from_tuple)
                .map(|p| (p.id.clone(), p))
                .collect();
            for id in chunk {
                let key = (project.to_string(), (*id).clone());
                self.prices.remember(key, found.get(*id).map(|p| (p.clone(), None)));
            }
        }
        let mut n = 0;
        for id in ids {
            let key = (project.to_string(), id.clone());
            if let Some(Some((p, None))) = self.prices.get(&key) {
                let p = p.clone();
                self.prices.put(key, (p, Some(at)));
                n += 1;
            }
        }
        Ok(n)
    }

    fn put_key(&mut self, k: &ApiKey) -> Result<()> {
        self.keys.put(k.id.clone(), k.clone());
        Ok(())
    }

    fn revoke_key(&mut self, id: &str, at: Micros) -> Result<bool> {
        self.revoke(id, at)
    }

    fn put_session(&mut self, session: &Session, _now: Micros) -> Result<()> {
        // Expired sessions are left to be filtered out on lookup (ClickHouse deletes are
        // mutations, not worth one per sign-in).
        self.sessions.put(session.hash.clone(), session.clone());
        Ok(())
    }

    fn end_session(&mut self, hash: &str, at: Micros) -> Result<bool> {
        self.end(hash, at)
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
