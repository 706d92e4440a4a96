//! Threads: the turn calls `threads/stream_query` folds into threads.

use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::threads::{Turn, TurnQuery};
use crate::store::clickhouse::client::{Client, Query};

pub(super) fn turns(
    client: &Client,
    project: &str,
    tq: &TurnQuery,
    sink: &mut dyn FnMut(Turn) -> bool,
) -> Result<()> {
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
    client.query_rows::<(String, String, Micros, Option<Micros>)>(&q, &mut |(
        thread_id,
        id,
        started_at,
        ended_at,
    )| {
        Ok(sink(Turn { thread_id, id, started_at, ended_at }))
    })
}
