//! Reads of the SQLite store, as the domain's [`Store`], on the pool's read connections.

use rusqlite::{OptionalExtension, params, params_from_iter};

use super::rows::*;
use super::runs::{eval_runs_on, latest_runs_on, run_values_on};
use super::{SqliteStore, storage};
use crate::domain::call::{Call, CallText};
use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::{Labels, ObjectQuery, ObjectSortField, ObjectVersion, Version};
use crate::domain::page::Page;
use crate::domain::run_rows::{RunDimension, RunQuery, RunRow};
use crate::domain::sessions::Session;
use crate::domain::store::{ProjectSummary, Store, WriteJob};
use crate::domain::threads::{Turn, TurnQuery};
use crate::domain::trace::{CallQuery, Sort, SortField, ref_needle};
use crate::domain::view::Kind;

/// A JSON path of keys as SQLite's JSON functions take it: `$."a"."b"`.
fn json_path(path: &[String]) -> String {
    let mut p = String::from("$");
    for key in path {
        p.push_str(&format!(".\"{}\"", key.replace('"', "\\\"")));
    }
    p.replace('\'', "''")
}

/// The `ORDER BY` of an objects query: its keys then the version, or object id then version.
fn object_order(q: &ObjectQuery) -> String {
    if q.sort.is_empty() {
        return "object_id, version_index".into();
    }
    let mut parts: Vec<String> = q
        .sort
        .iter()
        .map(|s| {
            let column = match s.field {
                ObjectSortField::ObjectId => "object_id",
                ObjectSortField::CreatedAt => "created_at",
            };
            format!("{column} {}", if s.descending { "DESC" } else { "ASC" })
        })
        .collect();
    parts.push("version_index ASC".into());
    parts.join(", ")
}

/// The first column of `sql`'s rows (one parameter: the project), as strings.
fn distinct_names(conn: &rusqlite::Connection, sql: &str, project: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
    let rows = stmt.query_map([project], |r| r.get(0)).map_err(storage)?;
    rows.collect::<rusqlite::Result<Vec<String>>>().map_err(storage)
}

/// The `ORDER BY` of a calls query: its keys, then the call id.
fn order_by(sort: &[Sort]) -> String {
    if sort.is_empty() {
        return "started_at, id".into();
    }
    let mut parts = Vec::new();
    for s in sort {
        let dir = if s.descending { "DESC" } else { "ASC" };
        match &s.field {
            SortField::Column(c) => parts.push(format!("{c} {dir}")),
            SortField::LatencyMs => {
                parts.push(format!("CASE WHEN ended_at IS NULL THEN 0 ELSE ended_at - started_at END {dir}"))
            }
            SortField::Status => parts.push(format!(
                "CASE WHEN exception IS NOT NULL THEN 'error' WHEN ended_at IS NULL THEN 'running' \
                 WHEN coalesce(json_extract(summary, '$.status_counts.error'), 0) > 0 \
                 THEN 'descendant_error' ELSE 'success' END {dir}"
            )),
            SortField::Json(column, path) => {
                // Null or missing first, then numbers and booleans, then text (and other
                // values, as their JSON text): what the ClickHouse store orders by too.
                let p = json_path(path);
                parts.push(format!(
                    "CASE coalesce(json_type({column}, '{p}'), 'null') WHEN 'integer' THEN 1 \
                     WHEN 'real' THEN 1 WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'null' THEN 0 \
                     ELSE 2 END {dir}, json_extract({column}, '{p}') {dir}"
                ));
            }
        }
    }
    parts.push("id".into());
    parts.join(", ")
}

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

    fn run_values(&self, project: &str, dimension: RunDimension, max: usize) -> Result<Vec<String>> {
        let column = match dimension {
            RunDimension::Evaluation => "evaluation",
            RunDimension::Model => "model",
        };
        run_values_on(&*self.reader()?, project, column, max)
    }

    fn latest_runs(
        &self,
        project: &str,
        max_pairs: usize,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        latest_runs_on(&*self.reader()?, project, max_pairs, sink)
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
            ("thread_id", &q.thread_ids),
            ("turn_id", &q.turn_ids),
            ("wb_run_id", &q.wb_run_ids),
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
        // A superset: the domain keeps the calls that hold one of the refs (`holds_ref`).
        for (column, refs) in [("inputs", &q.input_refs), ("output", &q.output_refs)] {
            if !refs.is_empty() {
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM rarray(?) n WHERE instr({column}, n.value) > 0)"
                ));
                let needles: Vec<String> = refs.iter().map(|r| ref_needle(r)).collect();
                args.push(Arg::list(needles.iter().map(String::as_str)));
            }
        }
        let (limit, offset) = limit_offset(q.page);
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit} OFFSET {offset}", order_by(&q.sort)));
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
            Version::Alias(a) => (
                "AND digest IN (SELECT digest FROM object_aliases WHERE project_id = ?1 \
                 AND object_id = ?2 AND alias = ?3 UNION ALL SELECT ?3) \
                 ORDER BY digest = ?3 LIMIT 1",
                Some(a.clone()),
            ),
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
        sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
    ) -> Result<()> {
        let labels = if q.with_labels { format!(", {LABEL_COLUMNS}") } else { String::new() };
        let mut sql = format!(
            "SELECT {}, {IS_LATEST}{labels} FROM objects o WHERE project_id = ? AND deleted_at IS NULL",
            object_columns(q.metadata_only)
        );
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(project)];
        for (column, values) in [
            ("object_id", &q.object_ids),
            ("base_object_class", &q.base_object_classes),
            ("leaf_object_class", &q.leaf_object_classes),
        ] {
            if !values.is_empty() {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::list(values.iter().map(String::as_str)));
            }
        }
        if !q.exclude_base_object_classes.is_empty() {
            sql.push_str(" AND base_object_class NOT IN rarray(?)");
            args.push(Arg::list(q.exclude_base_object_classes.iter().map(String::as_str)));
        }
        if !q.tags.is_empty() {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM object_tags t WHERE t.project_id = o.project_id \
                 AND t.object_id = o.object_id AND t.digest = o.digest AND t.tag IN rarray(?))",
            );
            args.push(Arg::list(q.tags.iter().map(String::as_str)));
        }
        if !q.aliases.is_empty() {
            let named: Vec<&str> = q.aliases.iter().map(String::as_str).filter(|a| *a != "latest").collect();
            let by_name = "EXISTS (SELECT 1 FROM object_aliases a WHERE a.project_id = o.project_id \
                 AND a.object_id = o.object_id AND a.digest = o.digest AND a.alias IN rarray(?))";
            let latest = named.len() < q.aliases.len();
            sql.push_str(&match (latest, named.is_empty()) {
                (true, true) => format!(" AND {IS_LATEST}"),
                (true, false) => format!(" AND ({IS_LATEST} OR {by_name})"),
                (false, _) => format!(" AND {by_name}"),
            });
            if !named.is_empty() {
                args.push(Arg::list(named));
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
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit} OFFSET {offset}", object_order(q)));
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            let (o, latest) = object_with_latest(r).map_err(storage)?;
            let labels = if q.with_labels {
                Some(Labels {
                    tags: string_list(r, 11).map_err(storage)?,
                    aliases: string_list(r, 12).map_err(storage)?,
                })
            } else {
                None
            };
            if !sink(o, latest, labels) {
                break;
            }
        }
        Ok(())
    }

    fn labels(&self, project: &str, object_id: &str, digest: &str) -> Result<Labels> {
        let conn = self.reader()?;
        let read = |sql: &str| -> Result<Vec<String>> {
            let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
            let rows = stmt.query_map(params![project, object_id, digest], |r| r.get(0)).map_err(storage)?;
            rows.collect::<rusqlite::Result<Vec<String>>>().map_err(storage)
        };
        Ok(Labels {
            tags: read(
                "SELECT tag FROM object_tags WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 ORDER BY tag",
            )?,
            aliases: read(
                "SELECT alias FROM object_aliases WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 \
                 ORDER BY alias",
            )?,
        })
    }

    fn project_tags(&self, project: &str) -> Result<Vec<String>> {
        distinct_names(
            &*self.reader()?,
            "SELECT DISTINCT tag FROM object_tags WHERE project_id = ?1 ORDER BY tag",
            project,
        )
    }

    fn project_aliases(&self, project: &str) -> Result<Vec<String>> {
        distinct_names(
            &*self.reader()?,
            "SELECT DISTINCT alias FROM object_aliases WHERE project_id = ?1 ORDER BY alias",
            project,
        )
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
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached("SELECT val FROM table_rows WHERE project_id = ?1 AND digest = ?2")
            .map_err(storage)?;
        for (k, d) in digests.iter().enumerate() {
            let mut rows = stmt.query(params![project, d]).map_err(storage)?;
            if let Some(r) = rows.next().map_err(storage)?
                && !sink(k, r.get_ref(0).and_then(|v| v.as_str().map_err(Into::into)).map_err(storage)?)
            {
                break;
            }
        }
        Ok(())
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

    fn costs(&self, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {PRICE_COLUMNS} FROM llm_token_prices WHERE project_id = ?1 ORDER BY created_at, id"
            ))
            .map_err(storage)?;
        let mut rows = stmt.query([project]).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            if !sink(price_from_row(r).map_err(storage)?) {
                break;
            }
        }
        Ok(())
    }

    fn turns(&self, project: &str, q: &TurnQuery, sink: &mut dyn FnMut(Turn) -> bool) -> Result<()> {
        let conn = self.reader()?;
        let mut sql = String::from(
            "SELECT thread_id, id, started_at, ended_at FROM calls INDEXED BY calls_threads \
             WHERE project_id = ?1 AND thread_id IS NOT NULL AND thread_id != '' AND id = turn_id \
             AND deleted_at IS NULL AND started_at > ?2 AND started_at < ?3",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![
            project.to_string().into(),
            q.after.unwrap_or(i64::MIN).into(),
            q.before.unwrap_or(i64::MAX).into(),
        ];
        if !q.thread_ids.is_empty() {
            sql.push_str(" AND thread_id IN (");
            for (i, t) in q.thread_ids.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(t.clone().into());
            }
            sql.push(')');
        }
        let mut stmt = conn.prepare(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(storage)?;
        while let Some(r) = rows.next().map_err(storage)? {
            let turn = Turn {
                thread_id: r.get(0).map_err(storage)?,
                id: r.get(1).map_err(storage)?,
                started_at: r.get(2).map_err(storage)?,
                ended_at: r.get(3).map_err(storage)?,
            };
            if !sink(turn) {
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
