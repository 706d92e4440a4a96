//! Calls: the views' lists, `calls/stream_query`, and the children of calls.

use rusqlite::{Connection, Row, params, params_from_iter};

use crate::domain::call::{Call, CallText};
use crate::domain::call_query::{CallQuery, Sort, SortField};
use crate::domain::error::Result;
use crate::domain::page::Page;
use crate::domain::run_rows::RunCursor;
use crate::domain::view::Kind;
use crate::store::sqlite::ids::{self, Id};
use crate::store::sqlite::interned::{Project, name_keys, name_of};
use crate::store::sqlite::rows::{
    Arg, CALL_COLUMNS, CALL_TEXT_COLUMNS, call_from_row, for_rows, kind_code, limit_offset, with_call_text,
};
use crate::store::sqlite::{packed, storage};
use crate::store::{call_list_filters, call_order, op_name_filters, ref_filters};

/// A JSON path of keys as SQLite's JSON functions take it: `$."a"."b"`.
fn json_path(path: &[String]) -> String {
    let mut p = String::from("$");
    for key in path {
        p.push_str(&format!(".\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\"")));
    }
    // Inside a quoted SQL literal; a NUL cannot be written in SQL text, so it is joined in.
    p.replace('\'', "''").replace('\0', "' || char(0) || '")
}

/// A call's `summary.weave.trace_name` as [`crate::domain::call::op_short_name`] derives it
/// from its op (the name between the first `/op/` after a ref's scheme and the next `:`),
/// or its display name when it has a non-empty one.
fn trace_name() -> String {
    let op = name_of("op_name");
    let rest = format!(
        "(CASE WHEN substr({op}, 1, 9) = 'weave:///' THEN substr({op}, 10) \
         WHEN substr({op}, 1, 24) = 'weave-trace-internal:///' THEN substr({op}, 25) END)"
    );
    let tail = format!("substr({rest}, instr({rest}, '/op/') + 4)");
    format!(
        "(CASE WHEN coalesce(display_name, '') != '' THEN display_name \
         WHEN instr(coalesce({rest}, ''), '/op/') > 0 THEN (CASE WHEN instr({tail}, ':') > 0 \
         THEN substr({tail}, 1, instr({tail}, ':') - 1) ELSE {tail} END) ELSE {op} END)"
    )
}

/// The columns holding keys of `call_names`, read and ordered as their texts.
const NAME_COLUMNS: [&str; 2] = ["op_name", "wb_user_id"];

/// The columns holding call ids, stored as `ids` encodes them.
const ID_COLUMNS: [&str; 5] = ["id", "trace_id", "parent_id", "run_id", "turn_id"];

/// The `ORDER BY` of a calls query: its keys, then the call id. A key on an id column orders
/// as the ids' texts (as the ClickHouse store orders them; no index gives that order, so the
/// rows are sorted either way), except the id that ends a query's keys, the tie-break, which
/// orders as stored (ids that are not UUIDs first): the text of every row would cost a
/// function call per row sorted, for the ties alone.
fn order_by(sort: &[Sort]) -> String {
    // The position (from 1) of the last of several keys.
    let tie_break = if sort.len() > 1 { sort.len() } else { 0 };
    let mut n = 0;
    call_order(sort, |field, dir| {
        n += 1;
        match field {
            SortField::Column(c) if ID_COLUMNS.contains(c) && n != tie_break => {
                format!("{}({c}) {dir}", ids::DECODE)
            }
            SortField::Column(c) if NAME_COLUMNS.contains(c) => format!("{} {dir}", name_of(c)),
            SortField::Column(c) => format!("{c} {dir}"),
            SortField::LatencyMs => {
                format!("CASE WHEN ended_at IS NULL THEN 0 ELSE ended_at - started_at END {dir}")
            }
            SortField::Status => format!(
                "CASE WHEN exception IS NOT NULL THEN 'error' WHEN ended_at IS NULL THEN 'running' \
             WHEN coalesce(json_extract(summary, '$.status_counts.error'), 0) > 0 \
             THEN 'descendant_error' ELSE 'success' END {dir}"
            ),
            SortField::TraceName => format!("{} {dir}", trace_name()),
            SortField::Json(column, path) => {
                // Null or missing first, then numbers and booleans, then text (and other values,
                // as their JSON text): what the ClickHouse store orders by too.
                let p = json_path(path);
                let column = packed::read(column);
                format!(
                    "CASE coalesce(json_type({column}, '{p}'), 'null') WHEN 'integer' THEN 1 \
                 WHEN 'real' THEN 1 WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'null' THEN 0 \
                 ELSE 2 END {dir}, json_extract({column}, '{p}') {dir}"
                )
            }
        }
    })
}

/// The statement of a view's calls; the kind is a literal (one of a few static tags): plans
/// are made once, before any value is bound, and only a literal lets the planner pick the
/// partial `calls_views` (a run's calls) or `calls_view_order` (all of a kind's). A cursor is
/// a row value over the index's last columns: one range, however deep the page.
fn view_calls_sql(project: Project<'_>, kind: i64, run_filter: &str, after: bool) -> String {
    let after = if after { " AND (started_at, id) > (?5, ?6)" } else { "" };
    format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = {} AND kind = {kind} \
         AND deleted_at IS NULL {run_filter}{after} ORDER BY started_at, id LIMIT ?3 OFFSET ?4",
        project.filter("?1")
    )
}

pub(super) fn view_calls(
    conn: &Connection,
    project: Project<'_>,
    kind: Kind,
    run_id: Option<&str>,
    after: Option<&RunCursor>,
    page: Page,
    sink: &mut dyn FnMut(Call) -> bool,
) -> Result<()> {
    let (limit, offset) = limit_offset(page);
    let run_filter = if run_id.is_some() { "AND run_id = ?2" } else { "AND ?2 IS NULL" };
    let Some(kind) = kind_code(kind) else {
        return Ok(());
    };
    let mut stmt =
        conn.prepare_cached(&view_calls_sql(project, kind, run_filter, after.is_some())).map_err(storage)?;
    let rows = match after {
        Some(c) => stmt.query(params![project, Id::opt(run_id), limit, offset, c.started_at, Id::new(&c.id)]),
        None => stmt.query(params![project, Id::opt(run_id), limit, offset]),
    }
    .map_err(storage)?;
    for_rows(rows, &mut |r| Ok(sink(call_from_row(r)?)))
}

pub(super) fn calls(
    conn: &Connection,
    project: Project<'_>,
    q: &CallQuery,
    sink: &mut dyn FnMut(Call) -> bool,
) -> Result<()> {
    let mut sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = {} AND deleted_at IS NULL",
        project.filter("?")
    );
    let mut args: Vec<Arg<'_>> = vec![Arg::Project(project)];
    // Each list is bound as one value (`rarray`): the statement's text does not grow with the
    // list, so no list is too long for SQLite's limits on a statement.
    for (column, values) in call_list_filters(q) {
        if !values.is_empty() {
            let values = values.iter().map(String::as_str);
            if NAME_COLUMNS.contains(&column) {
                // The project's keys of those names, found once per statement.
                sql.push_str(&format!(" AND {column} IN {}", name_keys(&project.filter("?"), "?")));
                args.push(Arg::Project(project));
            } else {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
            }
            args.push(if ID_COLUMNS.contains(&column) { Arg::id_list(values) } else { Arg::list(values) });
        }
    }
    if !q.op_names.is_empty() {
        // The keys of the project's op names that match, found once per statement.
        let (exact, prefixes) = op_name_filters(q);
        sql.push_str(&format!(
            " AND op_name IN (SELECT n.id FROM call_names n WHERE n.project_id = {} \
             AND (n.name IN rarray(?) OR EXISTS (SELECT 1 FROM rarray(?) p \
             WHERE substr(n.name, 1, length(p.value)) = p.value)))",
            project.filter("?")
        ));
        args.push(Arg::Project(project));
        args.push(Arg::list(exact));
        args.push(Arg::list(prefixes.iter().map(String::as_str)));
    }
    if q.trace_roots_only {
        sql.push_str(" AND parent_id IS NULL");
    }
    for (column, needles) in ref_filters(q) {
        let column = packed::read(column);
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM rarray(?) n WHERE instr({column}, n.value) > 0)"));
        args.push(Arg::list(needles.iter().map(String::as_str)));
    }
    let (limit, offset) = limit_offset(q.page);
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit} OFFSET {offset}", order_by(&q.sort)));
    let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
    for_rows(stmt.query(params_from_iter(args)).map_err(storage)?, &mut |r| Ok(sink(call_from_row(r)?)))
}

/// Runs `each` on `columns` of the live children of `parent_ids` (by parent, then start and
/// id) until it answers `false`: one query, the ids bound as one value, each looked up in
/// `calls_children`.
fn children_rows(
    conn: &Connection,
    project: Project<'_>,
    parent_ids: &[String],
    columns: &str,
    each: &mut dyn FnMut(&Row<'_>) -> rusqlite::Result<bool>,
) -> Result<()> {
    if parent_ids.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&children_sql(project, columns)).map_err(storage)?;
    let ids = Arg::id_list(parent_ids.iter().map(String::as_str));
    for_rows(stmt.query(params![project, ids]).map_err(storage)?, each)
}

/// The statement of [`children_rows`].
fn children_sql(project: Project<'_>, columns: &str) -> String {
    format!(
        "SELECT {columns} FROM calls WHERE project_id = {} AND parent_id IN rarray(?2) \
         AND deleted_at IS NULL ORDER BY parent_id, started_at, id",
        project.filter("?1")
    )
}

pub(super) fn children_of(
    conn: &Connection,
    project: Project<'_>,
    parent_ids: &[String],
    sink: &mut dyn FnMut(Call) -> bool,
) -> Result<()> {
    children_rows(conn, project, parent_ids, CALL_COLUMNS, &mut |r| Ok(sink(call_from_row(r)?)))
}

pub(super) fn children_text(
    conn: &Connection,
    project: Project<'_>,
    parent_ids: &[String],
    sink: &mut dyn FnMut(&CallText<'_>) -> bool,
) -> Result<()> {
    children_rows(conn, project, parent_ids, CALL_TEXT_COLUMNS, &mut |r| with_call_text(r, &mut *sink))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn a_sort_by_id_orders_uuids_and_other_ids_as_their_texts() {
        use crate::domain::call::Call;
        use crate::domain::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let uuid = crate::domain::call::new_id();
        let ids = ["zz".to_string(), uuid.clone(), "0".to_string(), uuid.to_uppercase()];
        let calls: Vec<Call> =
            ids.iter().map(|id| Call::with_ids("e/p", "f", 1, id.clone(), id.clone())).collect();
        crate::domain::store::write(&store, move |w| calls.iter().try_for_each(|c| w.insert_call(c)))
            .unwrap();
        for column in ["id", "trace_id"] {
            let q = CallQuery {
                sort: vec![Sort { field: SortField::Column(column), descending: false }],
                ..Default::default()
            };
            let mut found = Vec::new();
            store
                .calls("e/p", &q, &mut |c| {
                    found.push(c.id);
                    true
                })
                .unwrap();
            let mut expected = ids.to_vec();
            expected.sort();
            assert_eq!(found, expected, "{column}");
        }
    }

    #[test]
    fn op_name_and_user_filters_and_sorts_read_the_names_keys() {
        use crate::domain::call::Call;
        use crate::domain::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let ops = [
            "weave:///e/p/op/B:1",
            "weave:///e/p/op/A:2",
            "plain",
            "weave:///e/p/op/A:1",
            "weave:///e/p/op/AB:1",
            "weave:///e/p/op/A:1",
        ];
        let calls: Vec<Call> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let mut c = Call::new("e/p", op, i as i64);
                c.wb_user_id = (i % 2 == 0).then(|| format!("user{}", i % 3));
                c
            })
            .collect();
        // Another project's names: never matched here.
        let mut other = Call::new("e/q", "plain", 9);
        other.wb_user_id = Some("user0".into());
        let written = [calls.clone(), vec![other]].concat();
        crate::domain::store::write(&store, move |w| written.iter().try_for_each(|c| w.insert_call(c)))
            .unwrap();
        let found = |q: CallQuery| {
            let mut found = Vec::new();
            store
                .calls("e/p", &q, &mut |c| {
                    found.push(c);
                    true
                })
                .unwrap();
            found
        };
        let by_ops = |names: &[&str]| {
            let q =
                CallQuery { op_names: names.iter().map(|n| n.to_string()).collect(), ..Default::default() };
            found(q).into_iter().map(|c| c.started_at).collect::<Vec<_>>()
        };
        assert_eq!(by_ops(&["weave:///e/p/op/A:*"]), [1, 3, 5]);
        assert_eq!(by_ops(&["weave:///e/p/op/A:*", "plain", "unknown"]), [1, 2, 3, 5]);
        assert_eq!(by_ops(&["weave:///e/p/op/A:1", "weave:///e/p/op/B:*"]), [0, 3, 5]);
        assert_eq!(by_ops(&["unknown", "weave:///e/p/op/C:*"]), Vec::<i64>::new());
        assert_eq!(found(CallQuery::default()), calls);
        let users = |names: &[&str]| {
            let q = CallQuery {
                wb_user_ids: names.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            };
            found(q).into_iter().map(|c| c.started_at).collect::<Vec<_>>()
        };
        assert_eq!(users(&["user0", "nobody"]), [0]);
        assert_eq!(users(&["user1", "user2"]), [2, 4]);
        assert_eq!(users(&["nobody"]), Vec::<i64>::new());
        let sorted = |field: &'static str, descending| {
            let q = CallQuery {
                sort: vec![Sort { field: SortField::Column(field), descending }],
                ..Default::default()
            };
            found(q).into_iter().map(|c| c.started_at).collect::<Vec<_>>()
        };
        // As the texts order, ties by id (ids grow with the start here).
        assert_eq!(sorted("op_name", false), [2, 3, 5, 1, 4, 0]);
        assert_eq!(sorted("op_name", true), [0, 4, 1, 3, 5, 2]);
        assert_eq!(sorted("wb_user_id", false), [1, 3, 5, 0, 4, 2]);
        let q = CallQuery {
            sort: vec![Sort { field: SortField::TraceName, descending: false }],
            ..Default::default()
        };
        let by_trace_name: Vec<i64> = found(q).into_iter().map(|c| c.started_at).collect();
        assert_eq!(by_trace_name, [1, 3, 5, 4, 0, 2]);
    }

    #[test]
    fn calls_by_id_children_and_turns_seek_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let plan = |sql: &str, args: &[&dyn rusqlite::ToSql]| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map(args, |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let key = Project::Key(1);
        let one = plan(&crate::store::sqlite::rows::read_call_sql(key), &[&1, &"x"]);
        assert!(one.contains("SEARCH calls USING INDEX calls_id (project_id=? AND id=?)"), "{one}");
        let one = plan(&crate::store::sqlite::rows::read_call_sql(Project::Name("e/p")), &[&"e/p", &"x"]);
        assert!(one.contains("SEARCH calls USING INDEX calls_id (project_id=? AND id=?)"), "{one}");
        let ids = Arg::id_list(["x"]);
        let children = plan(&children_sql(key, CALL_COLUMNS), &[&1, &ids]);
        assert!(children.contains("calls_children (project_id=? AND parent_id=?)"), "{children}");
        let turns = plan(&super::super::threads::turns_sql(key, 0), &[&1, &0, &1]);
        assert!(turns.contains("calls_threads (project_id=? AND thread_id>?)"), "{turns}");
    }

    #[test]
    fn prediction_and_score_lists_read_the_views_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        for kind in [2, 3] {
            for (run_filter, index) in
                [("AND run_id = ?2", "calls_views "), ("AND ?2 IS NULL", "calls_view_order ")]
            {
                for after in [false, true] {
                    let sql = format!(
                        "EXPLAIN QUERY PLAN {}",
                        view_calls_sql(Project::Key(1), kind, run_filter, after)
                    );
                    let mut stmt = conn.prepare(&sql).unwrap();
                    let args: &[&dyn rusqlite::ToSql] =
                        if after { &[&1, &"r", &10, &0, &5, &"x"] } else { &[&1, &"r", &10, &0] };
                    let plan = stmt
                        .query_map(args, |r| r.get::<_, String>(3))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect::<Vec<_>>()
                        .join("; ");
                    assert!(
                        plan.contains(&format!("USING INDEX {index}")) && !plan.contains("B-TREE"),
                        "{kind} {run_filter} {after}: {plan}"
                    );
                    if after {
                        assert!(plan.contains("(started_at,id)>(?,?)"), "{kind} {run_filter}: {plan}");
                    }
                }
            }
        }
    }
}
