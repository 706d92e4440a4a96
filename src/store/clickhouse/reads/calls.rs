//! Calls: the views' lists, `calls/stream_query`, one call, and the children of calls.

use serde::de::DeserializeOwned;

use super::limit_offset;
use crate::domain::call::{Call, CallText};
use crate::domain::call_query::{CallQuery, Sort, SortField};
use crate::domain::error::Result;
use crate::domain::page::Page;
use crate::domain::run_rows::RunCursor;
use crate::domain::view::Kind;
use crate::store::clickhouse::IN_CHUNK;
use crate::store::clickhouse::client::{Client, Query};
use crate::store::clickhouse::rows::{
    CALL_COLUMNS, CALL_TEXT_COLUMNS, CallTextTuple, CallTuple, call_from_tuple, call_text,
};
use crate::store::{call_list_filters, call_order, op_name_filters, ref_filters};

/// Streams the calls of a query to `sink`.
fn stream_calls(client: &Client, q: &Query, sink: &mut dyn FnMut(Call) -> bool) -> Result<()> {
    client.query_rows::<CallTuple>(q, &mut |t| Ok(sink(call_from_tuple(t).call)))
}

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
    call_order(sort, |field, dir| match field {
        SortField::Column(c) => format!("{c} {dir}"),
        SortField::LatencyMs => format!(
            "if(ended_at IS NULL, 0, toUnixTimestamp64Micro(assumeNotNull(ended_at)) - toUnixTimestamp64Micro(started_at)) {dir}"
        ),
        SortField::Status => format!(
            "multiIf(exception IS NOT NULL, 'error', ended_at IS NULL, 'running', \
             JSONExtractFloat(ifNull(summary, '{{}}'), 'status_counts', 'error') > 0, 'descendant_error', 'success') {dir}"
        ),
        SortField::TraceName => format!("{} {dir}", trace_name()),
        SortField::Json(column, path) => {
            let keys: Vec<String> = path.iter().map(|k| q.string(k)).collect();
            let args = if keys.is_empty() { String::new() } else { format!(", {}", keys.join(", ")) };
            let doc = format!("ifNull({column}, 'null')");
            let t = format!("JSONType({doc}{args})");
            format!(
                "multiIf({t} IN ('Int64', 'UInt64', 'Double', 'Bool'), 1, {t} = 'Null', 0, 2) {dir}, \
                 if({t} = 'Bool', toFloat64(JSONExtractBool({doc}{args})), JSONExtractFloat({doc}{args})) {dir}, \
                 multiIf({t} = 'String', JSONExtractString({doc}{args}), {t} = 'Null', '', JSONExtractRaw({doc}{args})) {dir}"
            )
        }
    })
}

pub(super) fn view_calls(
    client: &Client,
    project: &str,
    kind: Kind,
    run_id: Option<&str>,
    after: Option<&RunCursor>,
    page: Page,
    sink: &mut dyn FnMut(Call) -> bool,
) -> Result<()> {
    let Some(tag) = kind.tag() else {
        return Ok(());
    };
    let mut q = Query::default();
    let (p, k) = (q.string(project), q.string(tag));
    let mut run = match run_id {
        Some(r) => format!(" AND run_id = {}", q.string(r)),
        None => String::new(),
    };
    if let Some(c) = after {
        let (t, id) = (q.int(c.started_at), q.string(&c.id));
        run.push_str(&format!(" AND (toUnixTimestamp64Micro(started_at), id) > ({t}, {id})"));
    }
    let window = limit_offset(&mut q, page);
    // The window's ids from the index of the views' rows, in its order; then those calls
    // whole, by the primary key, checked again.
    q.push(&format!(
        "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} \
         AND id IN (SELECT id FROM call_views FINAL WHERE project_id = {p} AND kind = {k} \
           AND NOT deleted{run} ORDER BY started_at, id{window}) \
         AND kind = {k} AND deleted_at IS NULL{run} ORDER BY started_at, id FORMAT JSONCompactEachRow"
    ));
    stream_calls(client, &q, sink)
}

pub(super) fn calls(
    client: &Client,
    project: &str,
    cq: &CallQuery,
    sink: &mut dyn FnMut(Call) -> bool,
) -> Result<()> {
    let mut q = Query::default();
    let p = q.string(project);
    let mut filters = String::new();
    for (column, values) in call_list_filters(cq) {
        if !values.is_empty() {
            filters.push_str(&format!(" AND {column} IN {}", q.strings(values)));
        }
    }
    if !cq.op_names.is_empty() {
        let (exact, prefixes) = op_name_filters(cq);
        let (e, pre) = (q.strings(&exact), q.strings(&prefixes));
        filters
            .push_str(&format!(" AND (op_name IN {e} OR arrayExists(x -> startsWith(op_name, x), {pre}))"));
    }
    if cq.trace_roots_only {
        filters.push_str(" AND parent_id IS NULL");
    }
    for (column, needles) in ref_filters(cq) {
        let n = q.strings(&needles);
        filters.push_str(&format!(" AND arrayExists(x -> position(ifNull({column}, ''), x) > 0, {n})"));
    }
    let order = order_by(&mut q, &cq.sort);
    let window = limit_offset(&mut q, cq.page);
    q.push(&format!(
        "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND deleted_at IS NULL{filters} \
         ORDER BY {order}{window} FORMAT JSONCompactEachRow"
    ));
    stream_calls(client, &q, sink)
}

pub(super) fn call(client: &Client, project: &str, id: &str) -> Result<Option<Call>> {
    let mut q = Query::default();
    let (p, i) = (q.string(project), q.string(id));
    q.push(&format!(
        "SELECT {CALL_COLUMNS} FROM calls FINAL WHERE project_id = {p} AND id = {i} \
         AND deleted_at IS NULL LIMIT 1 FORMAT JSONCompactEachRow"
    ));
    Ok(client.query_all::<CallTuple>(&q)?.pop().map(|t| call_from_tuple(t).call))
}

/// Streams `columns` of the live children of `parent_ids` (by parent, then start and id) to
/// `row` until it asks to stop; a query per [`IN_CHUNK`] ids keeps each query's parameters
/// short.
fn children_rows<T: DeserializeOwned>(
    client: &Client,
    project: &str,
    parent_ids: &[String],
    columns: &str,
    row: &mut dyn FnMut(T) -> bool,
) -> Result<()> {
    for chunk in parent_ids.chunks(IN_CHUNK) {
        let mut q = Query::default();
        let (p, ids) = (q.string(project), q.strings(chunk));
        q.push(&format!(
            "SELECT {columns} FROM calls FINAL WHERE project_id = {p} AND parent_id IN {ids} \
             AND deleted_at IS NULL ORDER BY parent_id, started_at, id FORMAT JSONCompactEachRow"
        ));
        let mut open = true;
        client.query_rows::<T>(&q, &mut |t| {
            open = row(t);
            Ok(open)
        })?;
        if !open {
            break;
        }
    }
    Ok(())
}

pub(super) fn children_of(
    client: &Client,
    project: &str,
    parent_ids: &[String],
    sink: &mut dyn FnMut(Call) -> bool,
) -> Result<()> {
    children_rows::<CallTuple>(client, project, parent_ids, CALL_COLUMNS, &mut |t| {
        sink(call_from_tuple(t).call)
    })
}

pub(super) fn children_text(
    client: &Client,
    project: &str,
    parent_ids: &[String],
    sink: &mut dyn FnMut(&CallText<'_>) -> bool,
) -> Result<()> {
    children_rows::<CallTextTuple>(client, project, parent_ids, CALL_TEXT_COLUMNS, &mut |t| {
        sink(&call_text(&t))
    })
}
