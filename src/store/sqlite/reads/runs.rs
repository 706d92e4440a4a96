//! Run lists on SQLite: the statement of a list of evaluation runs (which index it reads,
//! and how filtered lists merge ordered index ranges), and streaming its rows; the values
//! runs take, the latest run of each pair, and the projects' summaries.

use std::collections::HashSet;

use rusqlite::{Connection, params_from_iter};

use crate::domain::error::Result;
use crate::domain::page::Page;
#[cfg(test)]
use crate::domain::run_rows::RunCursor;
use crate::domain::run_rows::{RunQuery, RunRow};
use crate::domain::store::ProjectSummary;
use crate::store::sqlite::ids::{self, Id};
use crate::store::sqlite::interned::{ReadKeys, RowRefs, project_key};
use crate::store::sqlite::rows::{Arg, for_rows, limit_offset, texts};
use crate::store::sqlite::storage;

/// The columns of a run row, in `RunRow` order; `started_at` is the 7th and `id` the 1st.
pub(super) const RUN_COLUMNS: &str = "c.id, evaluation, model, run_id, display_name, op_name, started_at, ended_at, \
     exception IS NOT NULL, \
     EXISTS (SELECT 1 FROM calls f WHERE f.project_id = c.project_id \
       AND f.trace_id = c.trace_id AND f.id != c.id \
       AND f.exception IS NOT NULL AND f.deleted_at IS NULL), \
     summary, \
     CASE WHEN logged_run THEN output END";

/// The largest offset an unfiltered list reads through `calls_runs_rows`, whose entries hold
/// whole rows; deeper pages skip entries in the narrow `calls_runs` (about 4× fewer pages).
pub(super) const WIDE_INDEX_MAX_OFFSET: u64 = 1_000;

/// Most arms of a run list's merge: SQLite takes at most 500 in one compound statement.
pub(super) const MAX_ARMS: usize = 100;

/// A run list's project and the evaluations and models it filters by, as their keys (each
/// once; values without a key dropped, as no run has them).
pub(super) struct ListKeys {
    project: i64,
    evaluations: Vec<i64>,
    models: Vec<i64>,
}

/// The keys of a run list's project and filters, found through `keys`; `None` when no run
/// can match: an unknown project, or a filter none of whose values has a key.
fn list_keys(conn: &Connection, keys: &ReadKeys, project: &str, q: &RunQuery) -> Result<Option<ListKeys>> {
    let Some(project) = keys.project(conn, project).map_err(storage)? else {
        return Ok(None);
    };
    let resolve = |values: &[String]| -> Result<Option<Vec<i64>>> {
        let mut seen = HashSet::with_capacity(values.len());
        let mut found = Vec::with_capacity(values.len());
        for v in values {
            if let Some(k) = keys.run_ref(conn, project, v).map_err(storage)?
                && seen.insert(k)
            {
                found.push(k);
            }
        }
        Ok((values.is_empty() || !found.is_empty()).then_some(found))
    };
    let (Some(evaluations), Some(models)) = (resolve(&q.evaluations)?, resolve(&q.models)?) else {
        return Ok(None);
    };
    Ok(Some(ListKeys { project, evaluations, models }))
}

/// The SQL and arguments of a run list, its project and filters bound as their keys. A
/// filter on several evaluations or models is a merge of one ordered index range per value
/// (SQLite merges `UNION ALL` arms that each come sorted), so a page reads about as many
/// rows as it returns, however the filtered runs are spread over time.
pub(super) fn run_list_sql<'a>(keys: &'a ListKeys, q: &'a RunQuery) -> (String, Vec<Arg<'a>>) {
    let dedup = |v: &'a [String]| {
        let mut seen = HashSet::with_capacity(v.len());
        v.iter().map(String::as_str).filter(|s| seen.insert(*s)).collect::<Vec<&str>>()
    };
    let (evaluations, models, ids) = (&keys.evaluations, &keys.models, dedup(&q.ids));
    let unfiltered = ids.is_empty() && models.is_empty() && evaluations.is_empty();
    let index = if !ids.is_empty() {
        // Looking runs up by id is one point lookup per id in `calls_id`, joined from the list
        // of ids as given (no index of the ids is built first), whatever the statistics say;
        // the run conditions are checked on the row, which the lookup reads anyway.
        "INDEXED BY calls_id"
    } else if unfiltered && q.page.offset <= WIDE_INDEX_MAX_OFFSET {
        "INDEXED BY calls_runs_rows"
    } else if unfiltered {
        // The planner would rather read the covering index; skipping is cheaper in this one.
        "INDEXED BY calls_runs"
    } else {
        ""
    };
    // The dimension split into merged arms: the models, else the evaluations (not for ids,
    // nor for more values than a statement may have arms: those are looked up in a set).
    let (arm_column, arms): (&str, &[i64]) = if !ids.is_empty() {
        ("", &[0])
    } else if (1..=MAX_ARMS).contains(&models.len()) {
        ("model", models)
    } else if (1..=MAX_ARMS).contains(&evaluations.len()) {
        ("evaluation", evaluations)
    } else {
        ("", &[0])
    };
    let mut sql = String::new();
    let mut args = Vec::new();
    for (n, arm) in arms.iter().enumerate() {
        if n > 0 {
            sql.push_str(" UNION ALL ");
        }
        if ids.is_empty() {
            sql.push_str(&format!("SELECT {RUN_COLUMNS} FROM calls c {index} WHERE"));
        } else {
            sql.push_str(&format!(
                "SELECT {RUN_COLUMNS} FROM rarray(?) ids CROSS JOIN calls c {index} WHERE c.id = ids.value AND"
            ));
            args.push(Arg::id_list(ids.iter().copied()));
        }
        sql.push_str(" c.project_id = ? AND kind = 1 AND deleted_at IS NULL");
        args.push(Arg::Int(keys.project));
        if !arm_column.is_empty() {
            sql.push_str(&format!(" AND {arm_column} = ?"));
            args.push(Arg::Int(*arm));
        }
        for (column, values) in [("evaluation", evaluations), ("model", models)] {
            if values.len() == 1 && column != arm_column {
                // One value is an equality the planner can see: one evaluation and one model
                // read one ordered range of `calls_runs_pairs`.
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(Arg::Int(values[0]));
            } else if !values.is_empty() && column != arm_column {
                sql.push_str(&format!(" AND {column} IN rarray(?)"));
                args.push(Arg::ints(values));
            }
        }
        if let Some(c) = &q.after {
            // A row value: one range of the index, however deep the page.
            let cmp = if q.newest_first { "<" } else { ">" };
            sql.push_str(&format!(" AND (c.started_at, c.id) {cmp} (?, ?)"));
            args.push(Arg::Int(c.started_at));
            args.push(Arg::Id(Id::new(&c.id)));
        }
    }
    sql.push_str(if q.newest_first { " ORDER BY 7 DESC, 1 DESC" } else { " ORDER BY 7, 1" });
    // Without a LIMIT clause, rows that need sorting (a lookup by ids) go through SQLite's
    // sorter; with one, through a temporary b-tree, an insert per row.
    if q.page != Page::default() {
        let (limit, offset) = limit_offset(q.page);
        sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
    (sql, args)
}

/// Streams the runs of a run list through `conn`.
/// Its project and filters are bound, and its evaluation and model refs read as text, through
/// `keys` (`conn` must be a read connection: see `interned::ReadKeys`).
pub(super) fn eval_runs_on(
    conn: &Connection,
    keys: &ReadKeys,
    project: &str,
    q: &RunQuery,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    let Some(list) = list_keys(conn, keys, project, q)? else {
        return Ok(());
    };
    let (sql, args) = run_list_sql(&list, q);
    let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
    let rows = stmt.query(params_from_iter(args)).map_err(storage)?;
    let mut refs = RowRefs::new(keys);
    for_rows(rows, &mut |r| {
        let text = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?));
        let (mut id, mut source_run_id) = ([0u8; 36], [0u8; 36]);
        let evaluation = refs.text(conn, r.get(1)?)?;
        let model = refs.text(conn, r.get(2)?)?;
        let op_name = refs.call_name(conn, r.get(5)?)?;
        let row = RunRow {
            id: ids::read_into(r.get_ref(0)?, &mut id)?,
            evaluation: evaluation.as_deref().unwrap_or(""),
            model: model.as_deref().unwrap_or(""),
            source_run_id: ids::read_opt_into(r.get_ref(3)?, &mut source_run_id)?,
            display_name: text(4)?,
            op_name: &op_name,
            started_at: r.get(6)?,
            ended_at: r.get(7)?,
            failed: r.get(8)?,
            descendant_failed: r.get(9)?,
            summary: text(10)?,
            output: text(11)?,
        };
        Ok(sink(&row))
    })
}

/// The distinct non-empty values of a run column (`evaluation` or `model`) of a project, in
/// order, at most `max`: the project's refs in text order, each kept if a live run has it
/// (one seek in the column's index per ref).
pub(super) fn run_values_on(
    conn: &Connection,
    project: &str,
    column: &str,
    max: usize,
) -> Result<Vec<String>> {
    texts(conn, &run_values_sql(column), rusqlite::params![project, max as i64])
}

/// The statement of [`run_values_on`].
fn run_values_sql(column: &str) -> String {
    let index = if column == "model" { "calls_runs_model" } else { "calls_runs_evaluation" };
    format!(
        "SELECT r.ref FROM run_refs r WHERE r.project_id = {} AND r.ref > '' \
         AND EXISTS (SELECT 1 FROM calls INDEXED BY {index} WHERE project_id = r.project_id \
           AND {column} = r.id AND kind = 1 AND deleted_at IS NULL) \
         ORDER BY r.ref LIMIT ?2",
        project_key("?1")
    )
}

/// The distinct (evaluation, model) pairs of a project's runs, at most `max`, in the order of
/// their texts: a skip through the evaluations' keys, then through each one's models in
/// `calls_runs_pairs`, one seek per pair; each key's text read from `run_refs`.
fn run_pairs_on(conn: &Connection, project: &str, max: usize) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(&run_pairs_sql()).map_err(storage)?;
    let rows = stmt
        .query_map(rusqlite::params![project, max as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(storage)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
}

/// The statement of [`run_pairs_on`].
fn run_pairs_sql() -> String {
    // Keys are rowids, from 1: `> 0` skips NULL.
    let live = format!("project_id = {} AND kind = 1 AND deleted_at IS NULL", project_key("?1"));
    format!(
        "WITH RECURSIVE \
         ev(e) AS ( \
           SELECT (SELECT min(evaluation) FROM calls INDEXED BY calls_runs_evaluation WHERE {live} AND evaluation > 0) \
           UNION ALL SELECT (SELECT min(evaluation) FROM calls INDEXED BY calls_runs_evaluation \
             WHERE {live} AND evaluation > ev.e) FROM ev WHERE ev.e IS NOT NULL), \
         pm(e, m) AS ( \
           SELECT ev.e, (SELECT min(model) FROM calls INDEXED BY calls_runs_pairs \
             WHERE {live} AND evaluation = ev.e AND model > 0) FROM ev WHERE ev.e IS NOT NULL \
           UNION ALL SELECT pm.e, (SELECT min(model) FROM calls INDEXED BY calls_runs_pairs \
             WHERE {live} AND evaluation = pm.e AND model > pm.m) FROM pm WHERE pm.m IS NOT NULL) \
         SELECT re.ref, rm.ref FROM pm JOIN run_refs re ON re.id = pm.e JOIN run_refs rm ON rm.id = pm.m \
         WHERE pm.m IS NOT NULL AND re.ref > '' AND rm.ref > '' ORDER BY 1, 2 LIMIT ?2"
    )
}

/// Streams the newest run of each (evaluation, model) pair: the pairs, then per pair one
/// seek to the end of its range of `calls_runs_pairs`.
pub(super) fn latest_runs_on(
    conn: &Connection,
    keys: &ReadKeys,
    project: &str,
    max_pairs: usize,
    sink: &mut dyn FnMut(&RunRow<'_>) -> bool,
) -> Result<()> {
    for (evaluation, model) in run_pairs_on(conn, project, max_pairs)? {
        let q = RunQuery {
            evaluations: vec![evaluation],
            models: vec![model],
            newest_first: true,
            page: Page { limit: Some(1), offset: 0 },
            ..Default::default()
        };
        let mut go_on = true;
        eval_runs_on(conn, keys, project, &q, &mut |row| {
            go_on = sink(row);
            false
        })?;
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// Streams each project's summary: its runs and last activity.
pub(super) fn projects_on(conn: &Connection, sink: &mut dyn FnMut(ProjectSummary) -> bool) -> Result<()> {
    // The projects in name order (`projects` holds the names of those that have had calls),
    // then each one's runs over the partial index of runs. Last activity is the latest run's
    // start, or the latest call's without runs.
    let mut stmt = conn.prepare_cached(PROJECTS_SQL).map_err(storage)?;
    for_rows(stmt.query([]).map_err(storage)?, &mut |r| {
        Ok(sink(ProjectSummary {
            project_id: r.get(0)?,
            runs: r.get::<_, i64>(1)?.max(0) as u64,
            last_activity: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
        }))
    })
}

/// The statement of [`projects_on`].
const PROJECTS_SQL: &str = "SELECT p.name, \
     (SELECT count(*) FROM calls r WHERE r.project_id = p.id AND r.kind = 1 \
        AND r.deleted_at IS NULL), \
     coalesce((SELECT max(started_at) FROM calls r WHERE r.project_id = p.id \
        AND r.kind = 1 AND r.deleted_at IS NULL), \
       (SELECT max(started_at) FROM calls a WHERE a.project_id = p.id)) \
     FROM projects p WHERE EXISTS (SELECT 1 FROM calls a WHERE a.project_id = p.id) \
     ORDER BY p.name";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// Made-up keys of a list's project and filters.
    fn keys_of(q: &RunQuery) -> ListKeys {
        let keys = |v: &[String]| (1..=v.len() as i64).collect();
        ListKeys { project: 1, evaluations: keys(&q.evaluations), models: keys(&q.models) }
    }

    fn plan(conn: &Connection, q: &RunQuery) -> String {
        let keys = keys_of(q);
        let (sql, args) = run_list_sql(&keys, q);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    fn opcodes(conn: &Connection, q: &RunQuery) -> Vec<String> {
        let keys = keys_of(q);
        let (sql, args) = run_list_sql(&keys, q);
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(1)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn plan_of(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(args, |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn values_pairs_and_projects_seek_the_indexes_of_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        for (column, index) in [("model", "calls_runs_model"), ("evaluation", "calls_runs_evaluation")] {
            let plan = plan_of(&conn, &run_values_sql(column), &[&"e/p", &10]);
            assert!(
                plan.contains(
                    "SEARCH r USING COVERING INDEX sqlite_autoindex_run_refs_1 (project_id=? AND ref>?)"
                ) && plan.contains(&format!(
                    "SEARCH calls EXISTS USING INDEX {index} (project_id=? AND {column}=?)"
                )) && !plan.contains("B-TREE"),
                "{plan}"
            );
        }
        let plan = plan_of(&conn, &run_pairs_sql(), &[&"e/p", &10]);
        assert!(
            plan.contains("calls_runs_evaluation (project_id=? AND evaluation>?)")
                && plan.contains("calls_runs_pairs (project_id=? AND evaluation=? AND model>?)")
                && !plan.contains("SCAN calls"),
            "{plan}"
        );
        let plan = plan_of(&conn, PROJECTS_SQL, &[]);
        assert!(
            plan.contains("SCAN p USING COVERING INDEX sqlite_autoindex_projects_1")
                && !plan.contains("SCAN calls")
                && !plan.contains("SCAN r")
                && !plan.contains("SCAN a"),
            "{plan}"
        );
    }

    #[test]
    fn a_lookup_by_ids_sorts_in_the_sorter_unless_paged() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let mut q = RunQuery { ids: vec!["a".into(), "b".into()], ..Default::default() };
        let ops = opcodes(&conn, &q);
        assert!(
            ops.iter().any(|o| o == "SorterOpen") && !ops.iter().any(|o| o == "OpenEphemeral"),
            "{ops:?}"
        );
        q.page = Page { limit: Some(1), offset: 1 };
        assert!(opcodes(&conn, &q).iter().any(|o| o == "OpenEphemeral"));
    }

    #[test]
    fn run_lists_read_the_index_that_suits_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.reader().unwrap();
        let page = |limit, offset| Page { limit, offset };
        let first = plan(&conn, &RunQuery { page: page(Some(100), 0), ..Default::default() });
        assert!(first.contains("calls_runs_rows"), "{first}");
        let all = plan(&conn, &RunQuery { page: page(None, 0), ..Default::default() });
        assert!(all.contains("calls_runs_rows"), "{all}");
        let deep = plan(&conn, &RunQuery { page: page(Some(100), 50_000), ..Default::default() });
        assert!(deep.contains("calls_runs ") && !deep.contains("calls_runs_rows"), "{deep}");
        let models = RunQuery { models: vec!["m1".into(), "m2".into()], ..Default::default() };
        let filtered = plan(&conn, &models);
        assert!(filtered.contains("calls_runs_model") && !filtered.contains("TEMP B-TREE"), "{filtered}");
        let after = Some(RunCursor { started_at: 5, id: "x".into() });
        let newest = RunQuery {
            newest_first: true,
            after: after.clone(),
            page: page(Some(51), 0),
            ..Default::default()
        };
        let keyset = plan(&conn, &newest);
        assert!(
            keyset.contains("calls_runs_rows (project_id=? AND (started_at,id)<(?,?))")
                && !keyset.contains("B-TREE"),
            "{keyset}"
        );
        // The v2 list's `after=`: oldest first, a page of 100, unfiltered or merged per model.
        let oldest = RunQuery { after: after.clone(), page: page(Some(100), 0), ..Default::default() };
        let oldest = plan(&conn, &oldest);
        assert!(
            oldest.contains("calls_runs_rows (project_id=? AND (started_at,id)>(?,?))")
                && !oldest.contains("B-TREE"),
            "{oldest}"
        );
        let merged = RunQuery {
            models: vec!["m1".into(), "m2".into()],
            after: after.clone(),
            page: page(Some(100), 0),
            ..Default::default()
        };
        let merged = plan(&conn, &merged);
        assert!(
            merged.matches("calls_runs_model (project_id=? AND model=? AND (started_at,id)>(?,?))").count()
                == 2
                && !merged.contains("TEMP B-TREE"),
            "{merged}"
        );
        let one_model =
            RunQuery { models: vec!["m1".into()], newest_first: true, after, ..Default::default() };
        let one_model = plan(&conn, &one_model);
        assert!(
            one_model.contains("calls_runs_model (project_id=? AND model=? AND (started_at,id)<(?,?))")
                && !one_model.contains("B-TREE"),
            "{one_model}"
        );
        let pair = RunQuery {
            models: vec!["m1".into()],
            evaluations: vec!["e1".into()],
            newest_first: true,
            ..Default::default()
        };
        let pair = plan(&conn, &pair);
        assert!(pair.contains("calls_runs_pairs") && !pair.contains("B-TREE"), "{pair}");
        let ids = plan(&conn, &RunQuery { ids: vec!["a".into(), "b".into()], ..Default::default() });
        let (scan, search) =
            (ids.find("SCAN ids"), ids.find("SEARCH c USING INDEX calls_id (project_id=? AND id=?)"));
        assert!(matches!((scan, search), (Some(a), Some(b)) if a < b), "{ids}");
    }
}
