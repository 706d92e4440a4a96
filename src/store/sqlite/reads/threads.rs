//! Threads: the turn calls `threads/stream_query` folds into threads.

use rusqlite::{Connection, params_from_iter};

use crate::domain::error::Result;
use crate::domain::threads::{Turn, TurnQuery};
use crate::store::sqlite::ids::StoredId;
use crate::store::sqlite::interned::Project;
use crate::store::sqlite::rows::for_rows;
use crate::store::sqlite::storage;

pub(super) fn turns(
    conn: &Connection,
    project: Project<'_>,
    q: &TurnQuery,
    sink: &mut dyn FnMut(Turn) -> bool,
) -> Result<()> {
    let mut args: Vec<rusqlite::types::Value> = vec![
        match project {
            Project::Key(k) => k.into(),
            Project::Name(n) => n.to_string().into(),
        },
        q.after.unwrap_or(i64::MIN).into(),
        q.before.unwrap_or(i64::MAX).into(),
    ];
    args.extend(q.thread_ids.iter().map(|t| t.clone().into()));
    let mut stmt = conn.prepare(&turns_sql(project, q.thread_ids.len())).map_err(storage)?;
    for_rows(stmt.query(params_from_iter(args)).map_err(storage)?, &mut |r| {
        Ok(sink(Turn {
            thread_id: r.get(0)?,
            id: r.get::<_, StoredId>(1)?.0,
            started_at: r.get(2)?,
            ended_at: r.get(3)?,
        }))
    })
}

/// The statement of [`turns`], of `threads` thread ids (none: every thread).
pub(super) fn turns_sql(project: Project<'_>, threads: usize) -> String {
    let mut sql = format!(
        "SELECT thread_id, id, started_at, ended_at FROM calls INDEXED BY calls_threads \
         WHERE project_id = {} AND thread_id IS NOT NULL AND thread_id != '' AND id = turn_id \
         AND deleted_at IS NULL AND started_at > ?2 AND started_at < ?3",
        project.filter("?1")
    );
    if threads > 0 {
        sql.push_str(" AND thread_id IN (");
        for i in 0..threads {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
        }
        sql.push(')');
    }
    sql
}
