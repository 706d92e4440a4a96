//! Reads of ClickHouse, as the domain's [`Store`]: the newest version of each row (`FINAL`),
//! live rows only.

use std::collections::{HashMap, HashSet};

use super::client::Query;
use super::rows::*;
use super::{ClickHouseStore, IN_CHUNK};
use crate::domain::call::{Call, CallText, Micros};
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

/// A [`LatestObjectTuple`] with the version's tags and aliases.
type LabeledObjectTuple = (
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
    Vec<String>,
    Vec<String>,
);

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

/// The (object id, digest) pairs of a project's live rows of `table` whose `column` is one of
/// `names`, as a subquery.
fn labeled(q: &mut Query, project: &str, table: &str, column: &str, names: &[&str]) -> String {
    let (p, list) = (q.string(project), q.strings(names));
    format!(
        "(SELECT object_id, digest FROM {table} FINAL WHERE project_id = {p} AND {column} IN {list} AND NOT removed)"
    )
}

/// The names in the first column of a query's rows.
fn names(client: &super::client::Client, q: &Query) -> Result<Vec<String>> {
    Ok(client.query_all::<(String,)>(q)?.into_iter().map(|(n,)| n).collect())
}

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
    /// Streams the runs of `project` passing `filters` (SQL over the calls table, after its
    /// own conditions), the inner select ending with `inner`, in the outer `order`.
    fn stream_runs(
        &self,
        q: &mut Query,
        project: &str,
        filters: &str,
        inner: &str,
        order: &str,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        let p = q.string(project);
        q.push(&format!(
            "SELECT r.id, r.evaluation, r.model, r.run_id, r.display_name, r.op_name, \
               toUnixTimestamp64Micro(r.started_at), toUnixTimestamp64Micro(r.ended_at), \
               toBool(r.exception IS NOT NULL), toBool(f.n > toUInt64(r.exception IS NOT NULL)), \
               r.summary, if(r.logged_run, r.output, NULL) \
             FROM (SELECT id, trace_id, evaluation, model, run_id, display_name, op_name, started_at, \
                     ended_at, exception, summary, output, logged_run \
                   FROM calls FINAL WHERE project_id = {p} AND kind = 'run' AND deleted_at IS NULL{filters}{inner}) AS r \
             LEFT JOIN (SELECT trace_id, count() AS n FROM calls FINAL \
                   WHERE project_id = {p} AND exception IS NOT NULL AND deleted_at IS NULL \
                   GROUP BY trace_id) AS f ON f.trace_id = r.trace_id \
             {order} FORMAT JSONCompactEachRow"
        ));
        self.client.query_rows::<RunTuple>(q, &mut |t| {
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

    /// Streams the calls of a query built by `build` to `sink`.
    fn stream_calls(&self, q: &Query, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
        self.client.query_rows::<CallTuple>(q, &mut |t| Ok(sink(call_from_tuple(t).call)))
    }
}

/// Table rows read in one query: few enough that their texts fit in memory however large rows are.
const ROW_CHUNK: usize = 256;

/// A call's `summary.weave.trace_name` as [`crate::domain::call::op_short_name`] derives it
/// from its op (the name between the first `/op/` after a ref's scheme and the next `:`),
/// or its display name when it has a non-empty one.
fn trace_name() -> String {
    let rest = "multiIf(startsWith(op_name, 'weave:///'), substring(op_name, 10), \
                startsWith(op_name, 'weave-trace-internal:///'), substring(op_name, 25), '')";
    let tail = format!("substring({rest}, position({rest}, '/op/') + 4)");
    format!(
        "multiIf(ifNull(display_name, '') != '', assumeNotNull(display_name), \
         position({rest}, '/op/') > 0, if(position({tail}, ':') > 0, \
         substring({tail}, 1, position({tail}, ':') - 1), {tail}), op_name)"
    )
}

/// The `ORDER BY` of a calls query: its keys, then the call id. JSON values order as the
/// SQLite store orders them: null or missing first, then numbers and booleans, then text.
fn order_by(q: &mut Query, sort: &[Sort]) -> String {
    if sort.is_empty() {
        return "started_at, id".into();
    }
    let mut parts = Vec::new();
    for s in sort {
        let dir = if s.descending { "DESC" } else { "ASC" };
        match &s.field {
            SortField::Column(c) => parts.push(format!("{c} {dir}")),
            SortField::LatencyMs => parts.push(format!(
                "if(ended_at IS NULL, 0, toUnixTimestamp64Micro(assumeNotNull(ended_at)) - toUnixTimestamp64Micro(started_at)) {dir}"
            )),
            SortField::Status => parts.push(format!(
                "multiIf(exception IS NOT NULL, 'error', ended_at IS NULL, 'running', \
                 JSONExtractFloat(ifNull(summary, '{{}}'), 'status_counts', 'error') > 0, 'descendant_error', 'success') {dir}"
            )),
            SortField::TraceName => parts.push(format!("{} {dir}", trace_name())),
            SortField::Json(column, path) => {
                let keys: Vec<String> = path.iter().map(|k| q.string(k)).collect();
                let args = if keys.is_empty() { String::new() } else { format!(", {}", keys.join(", ")) };
                let doc = format!("ifNull({column}, 'null')");
                let t = format!("JSONType({doc}{args})");
                parts.push(format!(
                    "multiIf({t} IN ('Int64', 'UInt64', 'Double', 'Bool'), 1, {t} = 'Null', 0, 2) {dir}, \
                     if({t} = 'Bool', toFloat64(JSONExtractBool({doc}{args})), JSONExtractFloat({doc}{args})) {dir}, \
                     multiIf({t} = 'String', JSONExtractString({doc}{args}), {t} = 'Null', '', JSONExtractRaw({doc}{args})) {dir}"
                ));
            }
        }
    }
    parts.push("id".into());
    parts.join(", ")
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
        let mut filters = String::new();
        for (column, values) in
            [("evaluation", &query.evaluations), ("model", &query.models), ("id", &query.ids)]
        {
            if !values.is_empty() {
                filters.push_str(&format!(" AND {column} IN {}", q.strings(values)));
            }
        }
        let dir = if query.newest_first { "DESC" } else { "ASC" };
        if let Some(c) = &query.after {
            let cmp = if query.newest_first { "<" } else { ">" };
            let (t, id) = (q.int(c.started_at), q.string(&c.id));
            filters.push_str(&format!(" AND (toUnixTimestamp64Micro(started_at), id) {cmp} ({t}, {id})"));
        }
        let window = limit_offset(&mut q, query.page);
        let order = format!("ORDER BY r.started_at {dir}, r.id {dir}{window}");
        self.stream_runs(&mut q, project, &filters, "", &order, sink)
    }

    fn run_values(&self, project: &str, dimension: RunDimension, max: usize) -> Result<Vec<String>> {
        let column = match dimension {
            RunDimension::Evaluation => "evaluation",
            RunDimension::Model => "model",
        };
        let mut q = Query::default();
        let (p, n) = (q.string(project), q.uint(max as u64));
        q.push(&format!(
            "SELECT {column} FROM calls FINAL WHERE project_id = {p} AND kind = 'run' \
             AND deleted_at IS NULL AND {column} IS NOT NULL AND {column} != '' \
             GROUP BY {column} ORDER BY {column} LIMIT {n} FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<(String,)>(&q)?.into_iter().map(|(v,)| v).collect())
    }

    fn latest_runs(
        &self,
        project: &str,
        max_pairs: usize,
        sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
    ) -> Result<()> {
        let mut q = Query::default();
        let n = q.uint(max_pairs as u64);
        let filters =
            " AND evaluation IS NOT NULL AND evaluation != '' AND model IS NOT NULL AND model != ''";
        // The newest run of each pair: sorted newest first within the pair, one row by pair.
        let inner = " ORDER BY evaluation, model, started_at DESC, id DESC LIMIT 1 BY evaluation, model";
        let order = format!("ORDER BY r.evaluation, r.model LIMIT {n}");
        self.stream_runs(&mut q, project, filters, inner, &order, sink)
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
            ("thread_id", &cq.thread_ids),
            ("turn_id", &cq.turn_ids),
            ("wb_run_id", &cq.wb_run_ids),
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
        // A superset: the domain keeps the calls that hold one of the refs (`holds_ref`).
        for (column, refs) in [("inputs", &cq.input_refs), ("output", &cq.output_refs)] {
            if !refs.is_empty() {
                let needles: Vec<String> = refs.iter().map(|r| ref_needle(r)).collect();
                let n = q.strings(&needles);
                filters
                    .push_str(&format!(" AND arrayExists(x -> position(ifNull({column}, ''), x) > 0, {n})"));
            }
        }
        let order = order_by(&mut q, &cq.sort);
        let window = limit_offset(&mut q, cq.page);
        q.push(&format!(
            "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND deleted_at IS NULL{filters} \
             ORDER BY {order}{window} FORMAT JSONCompactEachRow"
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

    fn children_of(
        &self,
        project: &str,
        parent_ids: &[String],
        sink: &mut dyn FnMut(Call) -> bool,
    ) -> Result<()> {
        // A query per [`IN_CHUNK`] ids keeps each query's parameters short.
        for chunk in parent_ids.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, ids) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND parent_id IN {ids} \
                 AND deleted_at IS NULL ORDER BY parent_id, started_at, id FORMAT JSONCompactEachRow"
            ));
            let mut open = true;
            self.stream_calls(&q, &mut |c| {
                open = sink(c);
                open
            })?;
            if !open {
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
        for chunk in parent_ids.chunks(IN_CHUNK) {
            let mut q = Query::default();
            let (p, ids) = (q.string(project), q.strings(chunk));
            q.push(&format!(
                "SELECT {CALL_TEXT_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND parent_id IN {ids} \
                 AND deleted_at IS NULL ORDER BY parent_id, started_at, id FORMAT JSONCompactEachRow"
            ));
            let mut open = true;
            self.client.query_rows::<CallTextTuple>(&q, &mut |t| {
                open = sink(&call_text(&t));
                Ok(open)
            })?;
            if !open {
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
        let mut q = Query::default();
        let source = live_objects_with_latest(&mut q, project, &[object_id.to_string()]);
        let (pick, order) = match version {
            Version::Latest => ("is_latest".to_string(), String::new()),
            Version::Index(i) => (format!("version_index = {}", q.int(*i)), String::new()),
            Version::Digest(d) => (format!("digest = {}", q.string(d)), String::new()),
            Version::Alias(a) => {
                let (p, o, a) = (q.string(project), q.string(object_id), q.string(a));
                (
                    format!(
                        "(digest IN (SELECT digest FROM object_aliases FINAL WHERE project_id = {p} \
                         AND object_id = {o} AND alias = {a} AND NOT removed) OR digest = {a})"
                    ),
                    format!(" ORDER BY digest = {a}"),
                )
            }
        };
        q.push(&format!(
            "SELECT {OBJECT_COLUMNS}, is_latest FROM {source} WHERE {pick}{order} LIMIT 1 FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<LatestObjectTuple>(&q)?.pop().map(latest_object))
    }

    fn objects(
        &self,
        project: &str,
        oq: &ObjectQuery,
        sink: &mut dyn FnMut(ObjectVersion, bool, Option<Labels>) -> bool,
    ) -> Result<()> {
        let mut q = Query::default();
        let source = live_objects_with_latest(&mut q, project, &oq.object_ids);
        let mut filters = String::from("1");
        if !oq.base_object_classes.is_empty() {
            filters.push_str(&format!(" AND base_object_class IN {}", q.strings(&oq.base_object_classes)));
        }
        if !oq.exclude_base_object_classes.is_empty() {
            filters.push_str(&format!(
                " AND base_object_class IS NOT NULL AND base_object_class NOT IN {}",
                q.strings(&oq.exclude_base_object_classes)
            ));
        }
        if !oq.leaf_object_classes.is_empty() {
            filters.push_str(&format!(" AND leaf_object_class IN {}", q.strings(&oq.leaf_object_classes)));
        }
        if !oq.tags.is_empty() {
            let tags: Vec<&str> = oq.tags.iter().map(String::as_str).collect();
            let sub = labeled(&mut q, project, "object_tags", "tag", &tags);
            filters.push_str(&format!(" AND (object_id, digest) IN {sub}"));
        }
        if !oq.aliases.is_empty() {
            let named: Vec<&str> = oq.aliases.iter().map(String::as_str).filter(|a| *a != "latest").collect();
            let latest = named.len() < oq.aliases.len();
            let by_name = if named.is_empty() {
                "0".to_string()
            } else {
                format!(
                    "(object_id, digest) IN {}",
                    labeled(&mut q, project, "object_aliases", "alias", &named)
                )
            };
            filters.push_str(&if latest {
                format!(" AND (is_latest OR {by_name})")
            } else {
                format!(" AND {by_name}")
            });
        }
        match oq.is_op {
            Some(true) => filters.push_str(" AND kind = 'op'"),
            Some(false) => filters.push_str(" AND kind != 'op'"),
            None => {}
        }
        if oq.latest_only {
            filters.push_str(" AND is_latest");
        }
        let (labels, joins) = if oq.with_labels {
            let p = q.string(project);
            (
                ", tags, aliases",
                format!(
                    " LEFT JOIN (SELECT object_id, digest, groupArray(tag) AS tags FROM object_tags FINAL \
                     WHERE project_id = {p} AND NOT removed GROUP BY object_id, digest) AS t USING (object_id, digest) \
                     LEFT JOIN (SELECT object_id, digest, groupArray(alias) AS aliases FROM object_aliases FINAL \
                     WHERE project_id = {p} AND NOT removed GROUP BY object_id, digest) AS a USING (object_id, digest)"
                ),
            )
        } else {
            (", [], []", String::new())
        };
        let window = limit_offset(&mut q, oq.page);
        q.push(&format!(
            "SELECT {}, is_latest{labels} FROM {source} AS o{joins} WHERE {filters} \
             ORDER BY {}{window} FORMAT JSONCompactEachRow",
            object_columns(oq.metadata_only),
            object_order(oq),
        ));
        self.client.query_rows::<LabeledObjectTuple>(&q, &mut |t| {
            let (o, latest) = latest_object((t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10, t.11));
            let labels = oq.with_labels.then_some(Labels { tags: t.12, aliases: t.13 });
            Ok(sink(o, latest, labels))
        })
    }

    fn labels(&self, project: &str, object_id: &str, digest: &str) -> Result<Labels> {
        let read = |table: &str, column: &str| -> Result<Vec<String>> {
            let mut q = Query::default();
            let (p, o, d) = (q.string(project), q.string(object_id), q.string(digest));
            q.push(&format!(
                "SELECT {column} FROM {table} FINAL WHERE project_id = {p} AND object_id = {o} AND digest = {d} \
                 AND NOT removed ORDER BY {column} FORMAT JSONCompactEachRow"
            ));
            names(&self.client, &q)
        };
        Ok(Labels { tags: read("object_tags", "tag")?, aliases: read("object_aliases", "alias")? })
    }

    fn project_tags(&self, project: &str) -> Result<Vec<String>> {
        let mut q = Query::default();
        let p = q.string(project);
        q.push(&format!(
            "SELECT DISTINCT tag FROM object_tags FINAL WHERE project_id = {p} AND NOT removed ORDER BY tag \
             FORMAT JSONCompactEachRow"
        ));
        names(&self.client, &q)
    }

    fn project_aliases(&self, project: &str) -> Result<Vec<String>> {
        let mut q = Query::default();
        let p = q.string(project);
        q.push(&format!(
            "SELECT DISTINCT alias FROM object_aliases FINAL WHERE project_id = {p} AND NOT removed \
             ORDER BY alias FORMAT JSONCompactEachRow"
        ));
        names(&self.client, &q)
    }

    fn table_digests(&self, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
        let mut q = Query::default();
        let (p, d) = (q.string(project), q.string(digest));
        q.push(&format!(
            "SELECT row_digests FROM tables WHERE project_id = {p} AND digest = {d} LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<(Vec<String>,)>(&q)?.pop().map(|(l,)| l))
    }

    fn table_row_texts(
        &self,
        project: &str,
        digests: &[&str],
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<()> {
        // A chunk of positions at a time: its distinct rows in one query, then sent in order.
        let mut vals: HashMap<String, String> = HashMap::new();
        for (c, chunk) in digests.chunks(ROW_CHUNK).enumerate() {
            vals.clear();
            let distinct: Vec<&str> = {
                let mut seen = HashSet::new();
                chunk.iter().copied().filter(|d| seen.insert(*d)).collect()
            };
            let mut q = Query::default();
            let (p, ds) = (q.string(project), q.strings(&distinct));
            q.push(&format!(
                "SELECT digest, val FROM table_rows WHERE project_id = {p} AND digest IN {ds} \
                 LIMIT 1 BY digest FORMAT JSONCompactEachRow"
            ));
            self.client.query_rows::<(String, String)>(&q, &mut |(d, v)| {
                vals.insert(d, v);
                Ok(true)
            })?;
            for (k, d) in chunk.iter().enumerate() {
                if let Some(v) = vals.get(*d)
                    && !sink(c * ROW_CHUNK + k, v)
                {
                    return Ok(());
                }
            }
        }
        Ok(())
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
            "SELECT {FEEDBACK_COLUMNS} FROM feedback FINAL WHERE project_id = {p} AND deleted_at IS NULL \
             ORDER BY created_at, id FORMAT JSONCompactEachRow"
        ));
        self.client.query_rows::<FeedbackTuple>(&q, &mut |t| Ok(sink(feedback_from_tuple(t))))
    }

    fn costs(&self, project: &str, sink: &mut dyn FnMut(LlmPrice) -> bool) -> Result<()> {
        let mut q = Query::default();
        let p = q.string(project);
        q.push(&format!(
            "SELECT {PRICE_COLUMNS} FROM llm_token_prices FINAL WHERE project_id = {p} AND deleted_at IS NULL \
             ORDER BY created_at, id FORMAT JSONCompactEachRow"
        ));
        self.client.query_rows::<PriceTuple>(&q, &mut |t| Ok(sink(price_from_tuple(t))))
    }

    fn turns(&self, project: &str, tq: &TurnQuery, sink: &mut dyn FnMut(Turn) -> bool) -> Result<()> {
        let mut q = Query::default();
        let p = q.string(project);
        let mut sql = format!(
            "SELECT assumeNotNull(thread_id), id, toUnixTimestamp64Micro(started_at), \
               toUnixTimestamp64Micro(ended_at) FROM calls FINAL \
             WHERE project_id = {p} AND deleted_at IS NULL AND thread_id IS NOT NULL AND thread_id != '' \
               AND turn_id IS NOT NULL AND id = turn_id"
        );
        if let Some(after) = tq.after {
            sql.push_str(&format!(" AND toUnixTimestamp64Micro(started_at) > {}", q.int(after)));
        }
        if let Some(before) = tq.before {
            sql.push_str(&format!(" AND toUnixTimestamp64Micro(started_at) < {}", q.int(before)));
        }
        if !tq.thread_ids.is_empty() {
            sql.push_str(&format!(" AND thread_id IN {}", q.strings(&tq.thread_ids)));
        }
        sql.push_str(" FORMAT JSONCompactEachRow");
        q.push(&sql);
        self.client.query_rows::<(String, String, Micros, Option<Micros>)>(&q, &mut |(
            thread_id,
            id,
            started_at,
            ended_at,
        )| {
            Ok(sink(Turn { thread_id, id, started_at, ended_at }))
        })
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
        let q = Query::new(
            "SELECT project_id, countIf(kind = 'run'), \
               toUnixTimestamp64Micro(if(countIf(kind = 'run') > 0, maxIf(started_at, kind = 'run'), max(started_at))) \
             FROM calls FINAL WHERE deleted_at IS NULL GROUP BY project_id ORDER BY project_id \
             FORMAT JSONCompactEachRow"
                .to_string(),
        );
        self.client.query_rows::<(String, u64, Micros)>(&q, &mut |(project_id, runs, last_activity)| {
            Ok(sink(ProjectSummary { project_id, runs, last_activity }))
        })
    }
}
