//! Reads of ClickHouse, as the domain's [`Store`]: the newest version of each row (`FINAL`),
//! live rows only. One file per resource: `runs` (run lists, projects), `calls`, `threads`,
//! `objects` (versions, their tags and aliases, tables, files), `feedback` (feedback and
//! prices); keys and sessions are read in `super::keys`.

mod calls;
mod feedback;
mod objects;
mod runs;
mod threads;

pub(super) use objects::table_digests;

use super::ClickHouseStore;
use super::client::{Client, Query};
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
use crate::domain::store::{ProjectSummary, Store, WriteJob};
use crate::domain::threads::{Turn, TurnQuery};
use crate::domain::view::Kind;

/// `LIMIT .. OFFSET ..` of a page, as parameters.
fn limit_offset(q: &mut Query, page: Page) -> String {
    let (l, o) = (q.uint(page.limit.unwrap_or(u64::MAX)), q.uint(page.offset));
    format!(" LIMIT {l} OFFSET {o}")
}

/// The names in the first column of a query's rows.
fn names(client: &Client, q: &Query) -> Result<Vec<String>> {
    Ok(client.query_all::<(String,)>(q)?.into_iter().map(|(n,)| n).collect())
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
        runs::eval_runs(&self.client, project, query, sink)
    }

    fn run_values(&self, project: &str, dimension: RunDimension, max: usize) -> Result<Vec<String>> {
        runs::run_values(&self.client, project, dimension, max)
    }

    fn latest_runs(
        &self,
        project: &str,
        max_pairs: usize,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        runs::latest_runs(&self.client, project, max_pairs, sink)
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
        calls::view_calls(&self.client, project, kind, run_id, after, page, sink)
    }

    fn calls(&self, project: &str, cq: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        calls::calls(&self.client, project, cq, sink)
    }

    fn call(&self, project: &str, id: &str) -> Result<Option<Call>> {
        calls::call(&self.client, project, id)
    }

    fn children_of(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        calls::children_of(&self.client, project, parent_ids, sink)
    }

    fn children_text(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(&CallText<'_>) -> bool,
    ) -> Result<()> {
        calls::children_text(&self.client, project, parent_ids, sink)
    }

    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>> {
        objects::object(&self.client, project, object_id, version)
    }

    fn objects(
        &self,
        project: &str,
        oq: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
    ) -> Result<()> {
        objects::objects(&self.client, project, oq, sink)
    }

    fn labels(&self, project: &str, object_id: &str, digest: &str) -> Result<Labels> {
        objects::labels(&self.client, project, object_id, digest)
    }

    fn project_tags(&self, project: &str) -> Result<Vec<String>> {
        objects::project_labels(&self.client, project, "object_tags", "tag")
    }

    fn project_aliases(&self, project: &str) -> Result<Vec<String>> {
        objects::project_labels(&self.client, project, "object_aliases", "alias")
    }

    fn table_digests(&self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        objects::table_digests(&self.client, project, digest)
    }

    fn table_row_texts(
        &self,
        project: &str,
        digests: &[&str],
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<()> {
        objects::table_row_texts(&self.client, project, digests, sink)
    }

    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        objects::file(&self.client, project, digest)
    }

    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()> {
        feedback::feedback(&self.client, project, sink)
    }

    fn costs(&self, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()> {
        feedback::costs(&self.client, project, sink)
    }

    fn turns(&self, project: &str, tq: &TurnQuery, sink: &mut dyn FnMut(Turn) -> bool) -> Result<()> {
        threads::turns(&self.client, project, tq, sink)
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
        runs::projects(&self.client, sink)
    }
}
