//! The storage interface: calls and API keys. One module per backend; no backend type leaks out.

pub mod sqlite;

use serde_json::Value;

use crate::domain::call::{Call, Micros};
use crate::domain::error::{Error, Result};
use crate::domain::eval_run::{RunQuery, RunRow};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::{ObjectQuery, ObjectVersion, TableRow, Version};
use crate::domain::trace::CallQuery;
use crate::domain::view::Kind;

/// A window over an ordered result: skip `offset` rows, then return at most `limit` (all if `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Most rows to return; `None` for all.
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: u64,
}

/// A storage backend. Methods block; callers run them off the async threads.
pub trait Store: Send + Sync + 'static {
    /// Runs `f` in one write transaction: all of its writes land, or none do.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()>;

    /// Streams the evaluation runs of `project` matching `query`, in list order
    /// (`started_at`, `id`), to `sink` until it returns `false`.
    fn eval_runs(
        &self,
        project: &str,
        query: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()>;

    /// Streams the live calls of `kind` (belonging to run `run_id`, when given) in start order.
    fn view_calls(
        &self,
        project: &str,
        kind: Kind,
        run_id: Option<&str>,
        page: Page,
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()>;

    /// Streams the live calls matching `query` in start order to `sink` until it returns `false`.
    fn calls(&self, project: &str, query: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()>;

    /// Reads a live (not deleted) call.
    fn call(&self, project: &str, id: &str) -> Result<Option<Call>>;

    /// Reads a live object version; the flag tells whether it is the latest.
    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>>;
    /// Live object versions matching `query`, by object id then version; flags mark the latest.
    fn objects(&self, project: &str, query: &ObjectQuery) -> Result<Vec<(ObjectVersion, bool)>>;
    /// Rows of a table in order (only those named, if `only` is given); `None` if no such table.
    fn table_rows(
        &self,
        project: &str,
        digest: &str,
        only: Option<&[String]>,
        page: Page,
    ) -> Result<Option<Vec<TableRow>>>;
    /// Number of rows of a table; `None` if no such table.
    fn table_len(&self, project: &str, digest: &str) -> Result<Option<u64>>;
    /// A file's bytes.
    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>>;

    /// The live feedback rows of a project, oldest first.
    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()>;

    /// Stores a new API key.
    fn insert_key(&self, key: &ApiKey) -> Result<()>;
    /// Finds an unrevoked key by the hash of its secret.
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// All keys, revoked ones included, oldest first.
    fn keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key by id; `false` if no such unrevoked key exists.
    fn revoke_key(&self, id: &str, at: Micros) -> Result<bool>;
}

/// Operations inside one write transaction.
pub trait Writer {
    /// Inserts a new call; its view columns are derived from it.
    fn insert_call(&mut self, call: &Call) -> Result<()>;
    /// Rewrites a live call's mutable fields (end, output, summary, exception, attributes...).
    fn update_call(&mut self, call: &Call) -> Result<()>;
    /// Reads a live call.
    fn call(&mut self, project: &str, id: &str) -> Result<Option<Call>>;
    /// The live children of a call, in start order.
    fn children(&mut self, project: &str, parent_id: &str) -> Result<Vec<Call>>;
    /// Stores an object version, or finds the identical one; returns it with its version index.
    fn put_object(&mut self, object: &ObjectVersion) -> Result<ObjectVersion>;
    /// Soft-deletes object versions (all of `object_id`, or those with the given digests).
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
    /// Stores a file's bytes under their digest.
    fn put_file(&mut self, project: &str, digest: &str, content: &[u8]) -> Result<()>;
    /// Stores a feedback row; a row with the same id is kept as it is.
    fn insert_feedback(&mut self, feedback: &Feedback) -> Result<()>;
    /// Soft-deletes a live call and all its live descendants; returns how many were deleted.
    fn delete_subtree(&mut self, project: &str, id: &str, at: Micros) -> Result<u64>;
}

/// Runs `f` in one write transaction and returns its value.
pub fn write<T>(store: &dyn Store, mut f: impl FnMut(&mut dyn Writer) -> Result<T>) -> Result<T> {
    let mut out = None;
    store.write(&mut |w| {
        out = Some(f(w)?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Storage("write transaction ended without a result".into()))
}

/// Parses stored JSON text, treating text that is not JSON as a string value.
pub fn json_from_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}
