//! Reads of the SQLite store, as the domain's [`Store`], on the pool's read connections.

use rusqlite::{OptionalExtension, params, params_from_iter};

use super::rows::*;
use super::runs::eval_runs_on;
use super::{SqliteStore, storage};
use crate::domain::call::{Call, CallText};
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::{ObjectQuery, ObjectVersion, TableRow, Version};
use crate::domain::page::Page;
use crate::domain::run_rows::{RunQuery, RunRow};
use crate::domain::sessions::Session;
use crate::domain::store::{ProjectSummary, Store, WriteJob};
use crate::domain::trace::CallQuery;
use crate::domain::view::Kind;
use crate::store::{json_from_text, wanted_rows};

impl Store for SqliteStore {
    fn submit(&self, job: WriteJob) {
        self.writer.submit(job);
    }

    fn eval_runs(
        &self,
        project: &str,
        q: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        eval_runs_on(&*self.reader()?, project, q, sink)
    }

    fn eval_runs_now(
        &self,
        project: &str,
        q: &RunQuery,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Option<Result<()>> {
        Some(self.reader_now()?.and_then(|conn| eval_runs_on(&conn, project, q, sink)))
    }

    fn view_calls(
        &self,
        project: &str,
        kind: Kind,
        run_id: Option<&str>,
        page: Page,
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        let (limit, offset) = limit_offset(page);
        let run_filter = if run_id.is_some() { "AND run_id = ?2" } else { "AND ?2 IS NULL" };
        // The kind is a literal (one of a few static tags): plans are made once, before any
        // value is bound, and only a literal lets the planner pick the partial `calls_views`.
        let Some(kind) = kind.tag() else {
            return Ok(());
        };
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1 AND kind = '{kind}' \
                 AND deleted_at IS NULL {run_filter} ORDER BY started_at, id LIMIT ?3 OFFSET ?4"
            ))
            .map_err(storage)?;
        let mut rows = stmt.query(params![project, run_id, limit, offset]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(call_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn calls(&self, project: &str, q: &CallQuery, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ? AND deleted_at IS NULL");
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(project)];
        // Each list is bound as one value (`rarray`): the statement's text does not grow with
        // the list, so no list is too long for SQLite's limits on a statement.
        for (column, values) in [
            ("id", &q.call_ids),
            ("trace_id", &q.trace_ids),
            ("parent_id", &q.parent_ids),
            ("wb_user_id", &q.wb_user_ids),
        ] {
            if !values.is_empty() {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::list(values.iter().map(String::as_str)));
            }
        }
        if !q.op_names.is_empty() {
            let (mut exact, mut prefixes) = (Vec::new(), Vec::new());
            for op in &q.op_names {
                match op.strip_suffix(":*") {
                    Some(prefix) => prefixes.push(format!("{prefix}:")),
                    None => exact.push(op.as_str()),
                }
            }
            sql.push_str(
                " AND (op_name IN rarray(?) OR EXISTS (SELECT 1 FROM rarray(?) p \
                 WHERE substr(op_name, 1, length(p.value)) = p.value))",
            );
            args.push(Arg::list(exact));
            args.push(Arg::list(prefixes.iter().map(String::as_str)));
        }
        if q.trace_roots_only {
            sql.push_str(" AND parent_id IS NULL");
        }
        let (limit, offset) = limit_offset(q.page);
        let dir = if q.descending { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY started_at {dir}, id {dir} LIMIT {limit} OFFSET {offset}"));
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(call_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn call(&self, project: &str, id: &str) -> Result<Option<Call>> {
        read_call(&*self.reader()?, project, id)
    }

    fn children_of(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        if parent_ids.is_empty() {
            return Ok(());
        }
        // One query: the ids are bound as one value, each looked up in `calls_children`.
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = ?1 AND parent_id IN rarray(?2) \
                 AND deleted_at IS NULL ORDER BY parent_id, started_at, id"
            ))
            .map_err(storage)?;
        let ids = Arg::list(parent_ids.iter().map(String::as_str));
        let mut rows = stmt.query(params![project, ids]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(call_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn children_text(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(&CallText<'_>) -> bool,
    ) -> Result<()> {
        if parent_ids.is_empty() {
            return Ok(());
        }
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CALL_TEXT_COLUMNS} FROM calls WHERE project_id = ?1 AND parent_id IN rarray(?2) \
                 AND deleted_at IS NULL ORDER BY parent_id, started_at, id"
            ))
            .map_err(storage)?;
        let ids = Arg::list(parent_ids.iter().map(String::as_str));
        let mut rows = stmt.query(params![project, ids]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !with_call_text(r, &mut *sink).map_err(storage)? {
                break;
            }
        }
        Ok(())
    }

    fn object(
        &self,
        project: &str,
        object_id: &str,
        version: &Version,
    ) -> Result<Option<(ObjectVersion, bool)>> {
        let (clause, arg) = match version {
            Version::Latest => ("ORDER BY version_index DESC LIMIT 1", None),
            Version::Index(i) => ("AND version_index = ?3", Some(i.to_string())),
            Version::Digest(d) => ("AND digest = ?3", Some(d.clone())),
        };
        let sql = format!(
            "SELECT {OBJECT_COLUMNS}, {IS_LATEST} FROM objects o WHERE project_id = ?1 AND object_id = ?2 \
             AND deleted_at IS NULL {}",
            if arg.is_some() { clause.to_string() } else { format!("AND ?3 IS NULL {clause}") }
        );
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        stmt.query_row(params![project, object_id, arg], object_with_latest).optional().map_err(storage)
    }

    fn objects(
        &self,
        project: &str,
        q: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool) -> bool,
    ) -> Result<()> {
        let mut sql = format!(
            "SELECT {OBJECT_COLUMNS}, {IS_LATEST} FROM objects o WHERE project_id = ? AND deleted_at IS NULL"
        );
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(project)];
        for (column, values) in [("object_id", &q.object_ids), ("base_object_class", &q.base_object_classes)]
        {
            if !values.is_empty() {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::list(values.iter().map(String::as_str)));
            }
        }
        match q.is_op {
            Some(true) => sql.push_str(" AND kind = 'op'"),
            Some(false) => sql.push_str(" AND kind != 'op'"),
            None => {}
        }
        if q.latest_only {
            sql.push_str(&format!(" AND {IS_LATEST}"));
        }
        let (limit, offset) = limit_offset(q.page);
        sql.push_str(&format!(" ORDER BY object_id, version_index LIMIT {limit} OFFSET {offset}"));
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            let (o, latest) = object_with_latest(r).map_err(storage)?;
            if !sink(o, latest) {
                break;
            }
        }
        Ok(())
    }

    fn table_rows(
        &self,
        project: &str,
        digest: &str,
        only: Option<&[String]>,
        page: Page,
    ) -> Result<Option<Vec<TableRow>>> {
        let conn = self.reader()?;
        let Some(list) = table_digests(&conn, project, digest)? else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached("SELECT val FROM table_rows WHERE project_id = ?1 AND digest = ?2")
            .map_err(storage)?;
        let mut rows = Vec::new();
        let wanted = wanted_rows(&list, only, page);
        for (i, d) in wanted {
            let val: Option<String> =
                stmt.query_row(params![project, d], |r| r.get(0)).optional().map_err(storage)?;
            if let Some(val) = val {
                rows.push(TableRow {
                    digest: d.clone(),
                    val: json_from_text(&val),
                    original_index: i as i64,
                });
            }
        }
        Ok(Some(rows))
    }

    fn table_len(&self, project: &str, digest: &str) -> Result<Option<u64>> {
        Ok(table_digests(&*self.reader()?, project, digest)?.map(|l| l.len() as u64))
    }

    fn file(&self, project: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        self.reader()?
            .prepare_cached("SELECT content FROM files WHERE project_id = ?1 AND digest = ?2")
            .map_err(storage)?
            .query_row(params![project, digest], |r| r.get(0))
            .optional()
            .map_err(storage)
    }

    fn feedback(&self, project: &str, sink: &mut dyn FnMut(Feedback) -> bool) -> Result<()> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE project_id = ?1 ORDER BY created_at, id"
            ))
            .map_err(storage)?;
        let mut rows = stmt.query([project]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(feedback_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
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
        let conn = self.reader()?;
        // The distinct projects by skipping through the `calls_id` index (one seek per
        // project, not a scan of every call), then each one's runs over the partial index of
        // runs. Last activity is the latest run's start, or the latest call's without runs.
        let mut stmt = conn
            .prepare_cached(
                "WITH RECURSIVE p(id) AS ( \
                   SELECT min(project_id) FROM calls \
                   UNION ALL SELECT (SELECT min(project_id) FROM calls WHERE project_id > p.id) \
                   FROM p WHERE p.id IS NOT NULL) \
                 SELECT p.id, \
                   (SELECT count(*) FROM calls r WHERE r.project_id = p.id AND r.kind = 'run' \
                      AND r.deleted_at IS NULL), \
                   coalesce((SELECT max(started_at) FROM calls r WHERE r.project_id = p.id \
                      AND r.kind = 'run' AND r.deleted_at IS NULL), \
                     (SELECT max(started_at) FROM calls a WHERE a.project_id = p.id)) \
                 FROM p WHERE p.id IS NOT NULL",
            )
            .map_err(storage)?;
        let mut rows = stmt.query([]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            let summary = ProjectSummary {
                project_id: r.get(0).map_err(storage)?,
                runs: r.get::<_, i64>(1).map_err(storage)?.max(0) as u64,
                last_activity: r.get::<_, Option<i64>>(2).map_err(storage)?.unwrap_or(0),
            };
            if !sink(summary) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_and_score_lists_read_the_views_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        for kind in ["prediction", "score"] {
            for run_filter in ["AND run_id = ?2", "AND ?2 IS NULL"] {
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT id FROM calls WHERE project_id = ?1 AND kind = '{kind}' \
                     AND deleted_at IS NULL {run_filter} ORDER BY started_at, id LIMIT ?3 OFFSET ?4"
                );
                let plan: String = conn.query_row(&sql, params!["e/p", "r", 10, 0], |r| r.get(3)).unwrap();
                assert!(plan.contains("USING INDEX calls_views"), "{kind} {run_filter}: {plan}");
            }
        }
    }
}
