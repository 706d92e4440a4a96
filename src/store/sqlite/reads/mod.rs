//! Reads of the SQLite store, as the domain's [`Store`], on the pool's read connections. One
//! file per resource, each reading through a connection it is given: `runs` (run lists,
//! projects), `calls`, `threads`, `objects` (versions, their tags and aliases, tables, files),
//! `feedback` (feedback and prices); keys and sessions are read in `super::keys`.

mod calls;
mod feedback;
mod objects;
mod runs;
mod threads;

use super::SqliteStore;
use super::interned::Project;
use super::rows::{read_call, table_digests};
use crate::domain::call::{Call, CallText};
use crate::domain::call_query::CallQuery;
use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::{Labels, ObjectQuery, ObjectVersion, Version};
use crate::domain::page::Page;
use crate::domain::run_rows::{RunCursor, RunDimension, RunQuery, RunRow};
use crate::domain::sessions::Session;
use crate::domain::store::{Encoded, ProjectSummary, Store, WriteJob};
use crate::domain::threads::{Turn, TurnQuery};
use crate::domain::view::Kind;

impl SqliteStore {
    /// `read` on a read connection with project `name` named by its key; nothing read (the
    /// default answer) when the project has no key, and so no calls.
    fn with_project<T: Default>(
        &self,
        name: &str,
        read: impl FnOnce(&rusqlite::Connection, Project<'static>) -> Result<T>,
    ) -> Result<T> {
        let conn = self.reader()?;
        match self.read_keys.project(&conn, name).map_err(super::storage)? {
            Some(key) => read(&conn, Project::Key(key)),
            None => Ok(T::default()),
        }
    }
}

impl Store for SqliteStore {
    fn submit(&self, job: WriteJob) {
        self.writer.submit(job);
    }

    fn encode_call(&self, call: &Call) -> Encoded {
        Encoded::new(super::packed::encode(&self.dicts, call))
    }

    fn eval_runs(
        &self,
        project: &str,
        q: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        runs::eval_runs_on(&*self.reader()?, &self.read_keys, project, q, sink)
    }

    fn eval_runs_now(
        &self,
        project: &str,
        q: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Option<Result<()>> {
        Some(self.reader_now()?.and_then(|conn| runs::eval_runs_on(&conn, &self.read_keys, project, q, sink)))
    }

    fn run_values(&self, project: &str, dimension: RunDimension, max: usize) -> Result<Vec<String>> {
        runs::run_values_on(&*self.reader()?, project, crate::store::run_column(dimension), max)
    }

    fn latest_runs(
        &self,
        project: &str,
        max_pairs: usize,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        runs::latest_runs_on(&*self.reader()?, &self.read_keys, project, max_pairs, sink)
    }

    fn view_calls(
        &self,
        project: &str,
        kind: Kind,
        run_id: Option<&str>,
        after: Option<&RunCursor>,
        page: Page,
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        self.with_project(project, |conn, project| {
            calls::view_calls(conn, project, kind, run_id, after, page, sink)
        })
    }

    fn calls(&self, project: &str, q: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        self.with_project(project, |conn, project| calls::calls(conn, project, q, sink))
    }

    fn call(&self, project: &str, id: &str) -> Result<Option<Call>> {
        self.with_project(project, |conn, project| read_call(conn, project, id))
    }

    fn children_of(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        self.with_project(project, |conn, project| calls::children_of(conn, project, parent_ids, sink))
    }

    fn children_text(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(&CallText<'_>) -> bool,
    ) -> Result<()> {
        self.with_project(project, |conn, project| calls::children_text(conn, project, parent_ids, sink))
    }

    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>> {
        objects::object(&*self.reader()?, project, object_id, version)
    }

    fn objects(
        &self,
        project: &str,
        q: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
    ) -> Result<()> {
        objects::objects(&*self.reader()?, project, q, sink)
    }

    fn labels(&self, project: &str, object_id: &str, digest: &str) -> Result<Labels> {
        objects::labels(&*self.reader()?, project, object_id, digest)
    }

    fn project_tags(&self, project: &str) -> Result<Vec<String>> {
        objects::project_labels(&*self.reader()?, project, "object_tags", "tag")
    }

    fn project_aliases(&self, project: &str) -> Result<Vec<String>> {
        objects::project_labels(&*self.reader()?, project, "object_aliases", "alias")
    }

    fn table_digests(&self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        table_digests(&*self.reader()?, project, digest)
    }

    fn table_row_texts(
        &self,
        project: &str,
        digests: &[&str],
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<()> {
        objects::table_row_texts(&*self.reader()?, project, digests, sink)
    }

    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        objects::file(&*self.reader()?, project, digest)
    }

    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()> {
        feedback::feedback(&*self.reader()?, project, sink)
    }

    fn costs(&self, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()> {
        feedback::costs(&*self.reader()?, project, sink)
    }

    fn turns(&self, project: &str, q: &TurnQuery, sink: &mut dyn FnMut(Turn) -> bool) -> Result<()> {
        self.with_project(project, |conn, project| threads::turns(conn, project, q, sink))
    }

    fn keys_read_at_once(&self) -> bool {
        true
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.find_key(hash)
    }

    fn keys(&self) -> Result<Vec<ApiKey>> {
        self.list_keys()
    }

    fn session(&self, hash: &str) -> Result<Option<Session>> {
        self.find_session(hash)
    }

    fn projects(&self, sink: &mut dyn FnMut(ProjectSummary) -> bool) -> Result<()> {
        runs::projects_on(&*self.reader()?, sink)
    }
}
