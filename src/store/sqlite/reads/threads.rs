//! Threads: the turn calls `threads/stream_query` folds into threads.

use rusqlite::{Connection, params_from_iter};

use crate::domain::error::Result;
use crate::domain::threads::{Turn, TurnQuery};
use crate::store::sqlite::ids::StoredId;
use crate::store::sqlite::interned::project_key;
use crate::store::sqlite::rows::for_rows;
use crate::store::sqlite::storage;

pub(super) fn turns(
    conn: &Connection,
    project: &str,
    q: &TurnQuery,
    sink: &mut dyn FnMut(Turn) -> bool,
) -> Result<()> {
    let mut sql = format!(
        "SELECT thread_id, id, started_at, ended_at FROM calls INDEXED BY calls_threads \
         WHERE project_id = {} AND thread_id IS NOT NULL AND thread_id != '' AND id = turn_id \
         AND deleted_at IS NULL AND started_at > ?2 AND started_at < ?3",
        project_key("?1")
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
    for_rows(stmt.query(params_from_iter(args)).map_err(storage)?, &mut |r| {
        Ok(sink(Turn {
            thread_id: r.get(0)?,
            id: r.get::<_, StoredId>(1)?.0,
            started_at: r.get(2)?,
            ended_at: r.get(3)?,
        }))
    })
}
