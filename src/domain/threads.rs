//! Threads (`threads/stream_query`): the conversations of a project, built as Weave builds
//! them from its turn calls, the live calls whose id is their `turn_id` and that name a
//! `thread_id`. A thread answers its turn count, its first start and last end, the turns with
//! the earliest start and the latest end, and the 50th and 99th percentiles of its turns'
//! durations (in milliseconds, interpolated between the nearest two, as ClickHouse's
//! `quantile` does for Weave). A thread none of whose turns has ended has no `last_updated`
//! and is not listed (Weave cannot answer it either).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::call::{Micros, format_time};
use super::call_query::SortBy;
use super::error::{Error, Result};
use super::page::{Page, Window};
use super::store::Store;
use super::trace::parse_time;

/// `ThreadsQueryFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThreadsFilter {
    /// Only turns started after this time.
    pub after_datetime: Option<String>,
    /// Only turns started before this time.
    pub before_datetime: Option<String>,
    pub thread_ids: Option<Vec<String>>,
}

/// `ThreadsQueryReq`.
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadsQueryReq {
    pub project_id: String,
    pub filter: Option<ThreadsFilter>,
    #[serde(default, deserialize_with = "super::body::opt_int")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "super::body::opt_int")]
    pub offset: Option<i64>,
    pub sort_by: Option<Vec<SortBy>>,
}

/// Which turn calls a store reads for a threads query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnQuery {
    /// Only these threads (all when empty).
    pub thread_ids: Vec<String>,
    /// Only turns started strictly after this time.
    pub after: Option<Micros>,
    /// Only turns started strictly before this time.
    pub before: Option<Micros>,
}

/// A turn call, as a threads query reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub thread_id: String,
    pub id: String,
    pub started_at: Micros,
    pub ended_at: Option<Micros>,
}

/// The fields threads sort by.
const SORT_FIELDS: &[&str] = &[
    "thread_id",
    "turn_count",
    "start_time",
    "last_updated",
    "p50_turn_duration_ms",
    "p99_turn_duration_ms",
];

/// A key of the threads' order: the index of a [`SORT_FIELDS`] field, and whether descending.
type SortKey = (usize, bool);

#[derive(Debug, Default)]
struct Thread {
    turns: u64,
    first: Option<(Micros, String)>,
    last: Option<(Micros, String)>,
    durations: Vec<i64>,
}

/// The `q` quantile of sorted values, interpolated linearly between the nearest two.
fn quantile(sorted: &[i64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (sorted[lo] as f64, sorted[hi] as f64);
    Some(a + (b - a) * (pos - lo as f64))
}

impl ThreadsQueryReq {
    /// The store query, the order and the window; bad values are 4xx.
    fn plan(&self) -> Result<(TurnQuery, Vec<SortKey>, Page)> {
        let f = self.filter.clone().unwrap_or_default();
        let q = TurnQuery {
            thread_ids: f.thread_ids.unwrap_or_default(),
            after: f.after_datetime.as_deref().map(parse_time).transpose()?,
            before: f.before_datetime.as_deref().map(parse_time).transpose()?,
        };
        let mut sort = Vec::new();
        for s in self.sort_by.iter().flatten() {
            let Some(i) = SORT_FIELDS.iter().position(|f| *f == s.field) else {
                // Weave's own words.
                let names: Vec<String> = SORT_FIELDS.iter().map(|f| format!("'{f}'")).collect();
                return Err(Error::BadRequest(format!(
                    "Unsupported sort field: {}. Supported fields: [{}]",
                    s.field,
                    names.join(", ")
                )));
            };
            sort.push((i, s.descending()?));
        }
        if sort.is_empty() {
            sort.push((3, true));
        }
        Ok((q, sort, Page::from_body(self.limit, self.offset)?))
    }

    /// Checks the request without reading anything.
    pub fn check(&self) -> Result<()> {
        self.plan().map(drop)
    }
}

/// Orders two values of a sort field: nulls first, then numbers, then text.
fn order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
        (Value::Null, _) => std::cmp::Ordering::Less,
        (_, Value::Null) => std::cmp::Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
        }
        _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
    }
}

/// Streams the threads `req` asks for, as `ThreadSchema` JSON, to `emit`. The turns are read
/// once and folded per thread (a thread holds its turns' durations, for the percentiles);
/// then the threads are ordered and windowed.
pub fn threads(s: &dyn Store, req: &ThreadsQueryReq, emit: &mut dyn FnMut(Value) -> bool) -> Result<()> {
    let (q, sort, page) = req.plan()?;
    let mut by_thread: HashMap<String, Thread> = HashMap::new();
    s.turns(&req.project_id, &q, &mut |t| {
        let th = by_thread.entry(t.thread_id).or_default();
        th.turns += 1;
        if th.first.as_ref().is_none_or(|(at, id)| (t.started_at, &t.id) < (*at, id)) {
            th.first = Some((t.started_at, t.id.clone()));
        }
        if let Some(end) = t.ended_at {
            if th.last.as_ref().is_none_or(|(at, id)| (end, &t.id) > (*at, id)) {
                th.last = Some((end, t.id.clone()));
            }
            th.durations.push(end / 1000 - t.started_at / 1000);
        }
        true
    })?;
    let mut rows: Vec<Value> = by_thread
        .into_iter()
        .filter_map(|(thread_id, mut th)| {
            let (last_at, last_id) = th.last.take()?;
            let (first_at, first_id) = th.first.take()?;
            th.durations.sort_unstable();
            Some(json!({
                "thread_id": thread_id,
                "turn_count": th.turns,
                "start_time": format_time(first_at),
                "last_updated": format_time(last_at),
                "first_turn_id": first_id,
                "last_turn_id": last_id,
                "p50_turn_duration_ms": quantile(&th.durations, 0.5),
                "p99_turn_duration_ms": quantile(&th.durations, 0.99),
            }))
        })
        .collect();
    rows.sort_by(|a, b| {
        sort.iter()
            .map(|(i, desc)| {
                let o = order(&a[SORT_FIELDS[*i]], &b[SORT_FIELDS[*i]]);
                if *desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| order(&a["thread_id"], &b["thread_id"]))
    });
    let mut window = Window::new(page);
    for row in rows {
        if window.full() {
            break;
        }
        if window.admit() && !emit(row) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_as_clickhouse_does() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[10], 0.99), Some(10.0));
        assert_eq!(quantile(&[10, 20], 0.5), Some(15.0));
        assert_eq!(quantile(&[0, 100], 0.99), Some(99.0));
    }
}
