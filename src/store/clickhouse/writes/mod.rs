//! Writes to ClickHouse: the writer thread's batch (rows held in memory, over ClickHouse's,
//! until one insert per table commits them) and the writes of a job, as the domain's
//! [`Writer`]. One file per resource: `calls`, `objects` (versions, their tags and aliases,
//! tables, files), `feedback` (feedback and prices); keys and sessions are in `super::keys`.

mod calls;
mod feedback;
mod objects;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::IN_CHUNK;
use super::client::{Client, Query};
use super::key_cache::KeyCache;
use super::overlay::{Appends, Overlay};
use super::rows::*;
use crate::domain::call::{Call, Micros, now};
use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::ObjectVersion;
use crate::domain::sessions::Session;
use crate::domain::store::{CallEndFields, ReadHint, Writer};
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
    /// The store's cache of verified keys, whose entries this writer's revocations drop.
    pub(super) keys: Arc<KeyCache>,
}

impl Backend for WriteClient {
    type Batch<'a> = InMemory<'a>;

    fn begin(&mut self) -> Result<InMemory<'_>> {
        Ok(InMemory { tx: Tx::new(&self.client), version: &mut self.version, keys: &self.keys })
    }
}

/// A batch of jobs over one in-memory batch of rows, inserted when it commits (one insert per
/// table).
pub(super) struct InMemory<'a> {
    tx: Tx<'a>,
    version: &'a mut u64,
    keys: &'a KeyCache,
}

impl Batch for InMemory<'_> {
    fn prefetch(&mut self, hints: &[&ReadHint]) -> Result<()> {
        let by_project = |pick: fn(&ReadHint) -> &Vec<(String, String)>| {
            let mut ids: Vec<&(String, String)> = hints.iter().flat_map(|h| pick(h).iter()).collect();
            ids.sort();
            ids.dedup();
            ids
        };
        for group in by_project(|h| &h.calls).chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<String> = group.iter().map(|(_, id)| id.clone()).collect();
            calls::prefetch(&mut self.tx, &group[0].0, &ids)?;
        }
        for group in by_project(|h| &h.children_of).chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<String> = group.iter().map(|(_, id)| id.clone()).collect();
            calls::prefetch_children(&mut self.tx, &group[0].0, &ids)?;
        }
        Ok(())
    }

    fn writer(&mut self) -> &mut dyn Writer {
        &mut self.tx
    }

    fn end_job(&mut self, outcome: Result<()>) -> Result<()> {
        let outcome = outcome.and_then(|()| calls::check_inserts(&mut self.tx));
        self.tx.end_job(outcome.is_ok());
        outcome
    }

    fn commit(mut self) -> Result<()> {
        let flushed = self.tx.flush(next_version(self.version));
        for id in std::mem::take(&mut self.tx.revoked) {
            self.keys.forget_id(&id);
        }
        if let Err(e) = &flushed {
            let error = crate::domain::error::bounded(&e.to_string()).into_owned();
            tracing::error!(%error, "ClickHouse insert of a write batch failed");
        }
        flushed
    }
}

/// (project, id): a call, a feedback row, a price; (project, digest): a table or its rows.
type CallKey = (String, String);

/// (project, object id, digest or alias).
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
    /// The `call_views` keys of the calls the batch rewrote, as their rows in ClickHouse had
    /// them before.
    view_keys: HashMap<CallKey, Vec<ViewKey>>,
    /// Calls whose children in ClickHouse the batch has read (all of them live ones: the
    /// batch sees the rest in `calls`).
    children_read: HashSet<CallKey>,
    /// Ids of the keys the batch revoked, dropped from the cache of verified keys at commit.
    pub(super) revoked: Vec<String>,
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
            revoked: Vec::new(),
            children_read: HashSet::new(),
            view_keys: HashMap::new(),
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
        let written = self.calls.take_written();
        let before = std::mem::take(&mut self.view_keys);
        let mut views = Vec::new();
        for c in &written {
            let key = (c.call.project_id.clone(), c.call.id.clone());
            views.extend(view_lines(c, before.get(&key).map_or(&[][..], Vec::as_slice), version)?);
        }
        let calls = encode(written.iter().map(|c| call_line(c, version)).collect())?;
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
        // A call's view rows before the call: a row listed but not yet in `calls` is checked
        // against `calls` and left out by every read, where a call in `calls` without its view
        // rows would be missing from the lists.
        insert(self.client, "call_views", views)?;
        insert(self.client, "calls", calls)?;
        insert(self.client, "feedback", feedback)?;
        insert(self.client, "llm_token_prices", prices)?;
        insert(self.client, "api_keys", keys)?;
        insert(self.client, "ui_sessions", sessions)
    }
}

/// Reads into `rows` the rows of `project` among `ids` that the batch does not know yet (each
/// known afterwards, `None` if ClickHouse has none), [`IN_CHUNK`] ids a query. `select` is
/// the query before its `FORMAT`, given the project's and the id list's parameters; `decode`
/// makes a result row the row of its id.
fn read_unknown<T: DeserializeOwned, V: Clone>(
    client: &Client,
    rows: &mut Overlay<CallKey, V>,
    project: &str,
    ids: &[String],
    select: impl Fn(&str, &str) -> String,
    decode: impl Fn(T) -> (String, V),
) -> Result<()> {
    let mut unknown: Vec<&String> =
        ids.iter().filter(|id| !rows.knows(&(project.to_string(), (*id).clone()))).collect();
    unknown.sort();
    unknown.dedup();
    for chunk in unknown.chunks(IN_CHUNK) {
        let mut q = Query::default();
        let (p, list) = (q.string(project), q.strings(chunk));
        q.push(&format!("{} FORMAT JSONCompactEachRow", select(&p, &list)));
        let mut found: std::collections::HashMap<String, V> =
            client.query_all::<T>(&q)?.into_iter().map(&decode).collect();
        for id in chunk {
            rows.remember((project.to_string(), (*id).clone()), found.remove(id.as_str()));
        }
    }
    Ok(())
}

impl Writer for Tx<'_> {
    fn insert_call(&mut self, c: &Call) -> Result<()> {
        calls::insert(self, c)
    }

    fn insert_fresh_call(&mut self, c: &Call) -> Result<()> {
        calls::insert_fresh(self, c)
    }

    fn update_call(&mut self, c: &Call) -> Result<()> {
        calls::update(self, c)
    }

    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>> {
        Ok(calls::stored(self, project, id)?.filter(|s| s.deleted_at.is_none()).map(|s| s.call))
    }

    fn prefetch_calls(&mut self, project: &str, ids: &[String]) -> Result<()> {
        calls::prefetch(self, project, ids)
    }

    fn call_exists(&mut self, project: &str, id: &str) -> Result<bool> {
        Ok(calls::stored(self, project, id)?.is_some())
    }

    fn end_call(&mut self, project: &str, id: &str, end: &CallEndFields<'_>) -> Result<bool> {
        calls::end(self, project, id, end)
    }

    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>> {
        calls::children(self, project, parent_id)
    }

    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64> {
        calls::delete_subtree(self, project, id, at)
    }

    fn put_object(&mut self, o: &ObjectVersion) -> Result<ObjectVersion> {
        objects::put(self, o)
    }

    fn object_live(&mut self, project: &str, object_id: &str, digest: &str) -> Result<bool> {
        objects::live(self, project, object_id, digest)
    }

    fn add_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        objects::put_tags(self, project, object_id, digest, tags, false);
        Ok(())
    }

    fn remove_tags(&mut self, project: &str, object_id: &str, digest: &str, tags: &[String]) -> Result<()> {
        objects::put_tags(self, project, object_id, digest, tags, true);
        Ok(())
    }

    fn set_aliases(
        &mut self,
        project: &str,
        object_id: &str,
        digest: &str,
        aliases: &[String],
    ) -> Result<()> {
        objects::put_aliases(self, project, object_id, aliases, Some(digest));
        Ok(())
    }

    fn remove_aliases(&mut self, project: &str, object_id: &str, aliases: &[String]) -> Result<()> {
        objects::put_aliases(self, project, object_id, aliases, None);
        Ok(())
    }

    fn delete_objects(
        &mut self,
        project: &str,
        object_id: &str,
        digests: Option<&[String]>,
        at: Micros,
    ) -> Result<u64> {
        objects::delete(self, project, object_id, digests, at)
    }

    fn put_table(
        &mut self,
        project: &str,
        digest: &str,
        rows: &[(String, String)],
        row_digests: &[String],
    ) -> Result<()> {
        objects::put_table(self, project, digest, rows, row_digests);
        Ok(())
    }

    fn table_digests(&mut self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        objects::table_digests(self, project, digest)
    }

    fn missing_table_rows(&mut self, project: &str, digests: &[&str]) -> Result<Vec<String>> {
        objects::missing_table_rows(self, project, digests)
    }

    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()> {
        self.files.push(file_line(project, digest, content));
        Ok(())
    }

    fn insert_feedback(&mut self, f: &Feedback) -> Result<()> {
        feedback::insert_feedback(self, f)
    }

    fn delete_feedback(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        feedback::delete_feedback(self, project, ids)
    }

    fn insert_cost(&mut self, p: &LlmPrice) -> Result<()> {
        check_time(p.effective_date)?;
        self.prices.put((p.project_id.clone(), p.id.clone()), (p.clone(), None));
        Ok(())
    }

    fn delete_costs(&mut self, project: &str, ids: &[String]) -> Result<u64> {
        feedback::delete_costs(self, project, ids)
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
}
