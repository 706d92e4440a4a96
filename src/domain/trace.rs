//! The v1 trace API's writes of calls: start, end, complete, batched upserts, delete, rename.

use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::call::{Call, DerivedWeave, Micros, counts_errors, merge_weave, new_id, now};
use super::error::{Error, Issue, Result};
use super::store::{CallEndFields, Writer};
use super::validate::MAX_OP_NAMES;

/// Reads a request body into `T`; a mismatch is a 422 naming the problem.
pub fn from_body<T: for<'de> Deserialize<'de>>(body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        Error::invalid(Issue {
            kind: "value_error",
            loc: vec![json!("body")],
            msg: e.to_string(),
            input: Value::Null,
            ctx: None,
        })
    })
}

/// Parses an ISO-8601 time; one without an offset is taken as UTC.
pub fn parse_time(s: &str) -> Result<Micros> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(Error::invalid(Issue {
        kind: "datetime_from_date_parsing",
        loc: vec![json!("body")],
        msg: format!("Input should be a valid datetime: {s:?}"),
        input: json!(s),
        ctx: None,
    }))
}

fn object(v: Option<Map<String, Value>>) -> Value {
    Value::Object(v.unwrap_or_default())
}

/// `StartedCallSchemaForInsert`.
#[derive(Debug, Clone, Deserialize)]
pub struct CallStart {
    pub project_id: String,
    pub id: Option<String>,
    pub op_name: String,
    pub display_name: Option<String>,
    pub trace_id: Option<String>,
    pub parent_id: Option<String>,
    pub started_at: String,
    pub attributes: Option<Map<String, Value>>,
    pub inputs: Option<Map<String, Value>>,
    pub wb_user_id: Option<String>,
}

/// What a call's end carries, in an end or a completed call.
#[derive(Debug, Clone, Deserialize)]
pub struct Ending {
    pub ended_at: String,
    pub exception: Option<String>,
    #[serde(default)]
    pub output: Value,
    pub summary: Option<Map<String, Value>>,
}

/// `EndedCallSchemaForInsert`.
#[derive(Debug, Clone, Deserialize)]
pub struct CallEnd {
    pub project_id: String,
    pub id: String,
    #[serde(flatten)]
    pub ending: Ending,
}

/// `CompletedCallSchemaForInsert`: a call sent once it has ended.
#[derive(Debug, Clone, Deserialize)]
pub struct CallComplete {
    #[serde(flatten)]
    pub start: CallStart,
    #[serde(flatten)]
    pub ending: Ending,
}

/// One item of `call/upsert_batch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", content = "req", rename_all = "lowercase")]
pub enum UpsertItem {
    /// `{"mode": "start", "req": {"start": ...}}`.
    Start(StartReq),
    /// `{"mode": "end", "req": {"end": ...}}`.
    End(EndReq),
}

/// `{"start": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct StartReq {
    pub start: CallStart,
}

/// `{"end": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct EndReq {
    pub end: CallEnd,
}

/// An op name that names nothing yet: a call whose end arrived before its start.
const PENDING_OP: &str = "";

/// The call `s` starts, over `base` (an end that arrived first) if there is one.
fn started(s: &CallStart, base: Option<Call>, user: Option<&str>) -> Result<Call> {
    let id = s.id.clone().filter(|i| !i.is_empty()).unwrap_or_else(new_id);
    let trace_id = s.trace_id.clone().filter(|t| !t.is_empty()).unwrap_or_else(new_id);
    let started_at = parse_time(&s.started_at)?;
    let mut call = match base {
        Some(mut call) => {
            call.id = id;
            call.trace_id = trace_id;
            call
        }
        None => Call::with_ids(&s.project_id, &s.op_name, started_at, id, trace_id),
    };
    call.parent_id = s.parent_id.clone();
    call.op_name = s.op_name.clone();
    call.display_name = s.display_name.clone();
    call.started_at = started_at;
    call.attributes = object(s.attributes.clone());
    call.inputs = object(s.inputs.clone());
    call.wb_user_id = user.map(String::from).or_else(|| s.wb_user_id.clone());
    Ok(call)
}

/// Tells the writer which calls an upsert batch is about to look up (see
/// [`Writer::prefetch_calls`]).
pub fn prefetch_upserted(w: &mut dyn Writer, batch: &[UpsertItem]) -> Result<()> {
    let mut ids: Vec<(&str, String)> = Vec::with_capacity(batch.len());
    for item in batch {
        match item {
            UpsertItem::Start(s) => {
                if let Some(id) = s.start.id.as_ref().filter(|i| !i.is_empty()) {
                    ids.push((&s.start.project_id, id.clone()));
                }
            }
            UpsertItem::End(e) => ids.push((&e.end.project_id, e.end.id.clone())),
        }
    }
    ids.sort();
    for group in ids.chunk_by(|a, b| a.0 == b.0) {
        if let Some((project, _)) = group.first() {
            let wanted: Vec<String> = group.iter().map(|(_, id)| id.clone()).collect();
            w.prefetch_calls(project, &wanted)?;
        }
    }
    Ok(())
}

/// Records a call's start (merging into an end that arrived first); returns (id, trace id).
pub fn start(w: &mut dyn Writer, s: &CallStart, user: Option<&str>) -> Result<(String, String)> {
    let Some(id) = s.id.as_deref().filter(|i| !i.is_empty()) else {
        let call = started(s, None, user)?;
        w.insert_call(&call)?;
        return Ok((call.id, call.trace_id));
    };
    // A new call is inserted without reading anything; an existing one (an end that arrived
    // first, or a retried start) is merged.
    let call = started(s, None, user)?;
    if w.insert_new_call(&call)? {
        return Ok((call.id, call.trace_id));
    }
    let existing = w.call(&s.project_id, id)?;
    let merge = existing.is_some();
    let call = started(s, existing, user)?;
    if merge {
        w.update_call(&call)?;
    } else {
        // A deleted call keeps its id: the insert reports it as taken.
        w.insert_call(&call)?;
    }
    Ok((call.id, call.trace_id))
}

/// Records a call's end; an end that arrives before its start is kept until the start comes.
pub fn end(w: &mut dyn Writer, e: &CallEnd, user: Option<&str>) -> Result<()> {
    let mut call = Call::with_ids(&e.project_id, PENDING_OP, 0, e.id.clone(), e.id.clone());
    ended(&mut call, &e.ending)?;
    let fields = CallEndFields {
        ended_at: call.ended_at.unwrap_or_default(),
        exception: call.exception.as_deref(),
        output: call.output.as_ref().unwrap_or(&Value::Null),
        summary: call.summary.as_ref().unwrap_or(&Value::Null),
    };
    if w.end_call(&e.project_id, &e.id, &fields)? {
        return Ok(());
    }
    call.started_at = call.ended_at.unwrap_or_default();
    call.wb_user_id = user.map(String::from);
    w.insert_call(&call)
}

/// Sets the end fields of `call` from an end.
fn ended(call: &mut Call, e: &Ending) -> Result<()> {
    call.ended_at = Some(parse_time(&e.ended_at)?);
    call.exception = e.exception.clone();
    call.output = Some(e.output.clone());
    call.summary = Some(object(e.summary.clone()));
    Ok(())
}

/// Records a call that has already ended (start and end at once): one insert when new.
pub fn complete(w: &mut dyn Writer, c: &CallComplete, user: Option<&str>) -> Result<()> {
    start_ended(w, &c.start, &c.ending, user).map(|_| ())
}

/// Records a start and then its call's end, as [`start`] and [`end`] one after the other
/// would, with one insert when the call is new; returns (id, trace id).
pub fn start_ended(
    w: &mut dyn Writer,
    s: &CallStart,
    ending: &Ending,
    user: Option<&str>,
) -> Result<(String, String)> {
    let mut call = started(s, None, user)?;
    ended(&mut call, ending)?;
    let Some(id) = s.id.as_deref().filter(|i| !i.is_empty()) else {
        w.insert_call(&call)?;
        return Ok((call.id, call.trace_id));
    };
    if w.insert_new_call(&call)? {
        return Ok((call.id, call.trace_id));
    }
    let ids = start(w, s, user)?;
    let end_of = CallEnd { project_id: s.project_id.clone(), id: id.to_string(), ending: ending.clone() };
    end(w, &end_of, user)?;
    Ok(ids)
}

/// Whether an upsert batch's end is the end of the start just before it (same project and
/// id), so that the two can be written as one completed call.
pub fn ends_start(s: &CallStart, e: &CallEnd) -> bool {
    s.id.as_deref().is_some_and(|id| !id.is_empty() && id == e.id) && s.project_id == e.project_id
}

/// Soft-deletes calls with their descendants; returns how many calls were deleted.
pub fn delete(w: &mut dyn Writer, project: &str, ids: &[String]) -> Result<u64> {
    let at = now();
    let mut n = 0;
    w.prefetch_calls(project, ids)?;
    for id in ids {
        n += w.delete_subtree(project, id, at)?;
    }
    Ok(n)
}

/// Renames a call (`display_name`); a 404 if it does not exist.
pub fn rename(w: &mut dyn Writer, project: &str, id: &str, display_name: Option<String>) -> Result<()> {
    let mut call = w.call(project, id)?.ok_or_else(|| Error::NotFound(format!("Call {id} not found")))?;
    call.display_name = display_name;
    w.update_call(&call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_and_without_offsets() {
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1_500_000);
        assert_eq!(parse_time("1970-01-01T00:00:01.5+00:00").unwrap(), 1_500_000);
        assert_eq!(parse_time("1970-01-01T00:00:02").unwrap(), 2_000_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn upsert_items_are_tagged_by_mode() {
        let item: UpsertItem = serde_json::from_value(json!({
            "mode": "end",
            "req": {"end": {"project_id": "e/p", "id": "c", "ended_at": "1970-01-01T00:00:00Z", "summary": {}}}
        }))
        .unwrap();
        assert!(matches!(item, UpsertItem::End(_)));
    }
}

/// Filters, order and window of a calls query (`calls/stream_query`).
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    /// Only these call ids.
    pub call_ids: Vec<String>,
    /// Only calls of these traces.
    pub trace_ids: Vec<String>,
    /// Only children of these calls.
    pub parent_ids: Vec<String>,
    /// Only these ops: op names or refs; a ref ending in `:*` matches every version.
    pub op_names: Vec<String>,
    /// Only calls written by these users.
    pub wb_user_ids: Vec<String>,
    /// Only root calls.
    pub trace_roots_only: bool,
    /// Newest first instead of oldest first.
    pub descending: bool,
    /// Window over the ordered result.
    pub page: super::store::Page,
}

/// `CallsFilter` of the wire.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallsFilter {
    pub op_names: Option<Vec<String>>,
    pub parent_ids: Option<Vec<String>>,
    pub trace_ids: Option<Vec<String>>,
    pub call_ids: Option<Vec<String>>,
    pub trace_roots_only: Option<bool>,
    pub wb_user_ids: Option<Vec<String>>,
}

/// One `sort_by` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SortBy {
    pub field: String,
    pub direction: Option<String>,
}

/// `CallsQueryReq` of the wire.
#[derive(Debug, Clone, Deserialize)]
pub struct CallsQueryReq {
    pub project_id: String,
    pub filter: Option<CallsFilter>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub sort_by: Option<Vec<SortBy>>,
}

impl CallsQueryReq {
    /// The store query this request asks for; negative windows are 422s.
    pub fn query(&self) -> Result<CallQuery> {
        let f = self.filter.clone().unwrap_or_default();
        let count = |name: &str, v: Option<i64>| -> Result<Option<u64>> {
            match v {
                Some(n) if n < 0 => Err(Error::invalid(Issue {
                    kind: "greater_than_equal",
                    loc: vec![json!("body"), json!(name)],
                    msg: "Input should be greater than or equal to 0".into(),
                    input: json!(n),
                    ctx: Some(json!({"ge": 0})),
                })),
                other => Ok(other.map(|n| n as u64)),
            }
        };
        if let Some(ops) = &f.op_names
            && ops.len() > MAX_OP_NAMES
        {
            return Err(Error::TooLarge(format!("Too many op_names: at most {MAX_OP_NAMES} allowed")));
        }
        let descending = self
            .sort_by
            .as_ref()
            .and_then(|s| s.first())
            .is_some_and(|s| s.field == "started_at" && s.direction.as_deref() == Some("desc"));
        Ok(CallQuery {
            call_ids: f.call_ids.unwrap_or_default(),
            trace_ids: f.trace_ids.unwrap_or_default(),
            parent_ids: f.parent_ids.unwrap_or_default(),
            op_names: f.op_names.unwrap_or_default(),
            wb_user_ids: f.wb_user_ids.unwrap_or_default(),
            trace_roots_only: f.trace_roots_only.unwrap_or(false),
            descending,
            page: super::store::Page {
                limit: count("limit", self.limit)?,
                offset: count("offset", self.offset)?.unwrap_or(0),
            },
        })
    }
}

/// Writes a call as `CallSchema` JSON, with the derived `summary.weave` of Weave's reads.
pub fn call_json(c: &Call) -> Value {
    use super::call::format_time;
    let mut summary = match &c.summary {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let weave = DerivedWeave::new(
        c.started_at,
        c.ended_at,
        c.exception.is_some(),
        counts_errors(&summary),
        c.display_name.as_deref(),
        &c.op_name,
    )
    .to_value();
    merge_weave(&mut summary, weave);
    json!({
        "id": c.id,
        "project_id": c.project_id,
        "op_name": c.op_name,
        "display_name": c.display_name,
        "trace_id": c.trace_id,
        "parent_id": c.parent_id,
        "thread_id": null,
        "turn_id": null,
        "started_at": format_time(c.started_at),
        "attributes": c.attributes,
        "inputs": c.inputs,
        "ended_at": c.ended_at.map(format_time),
        "exception": c.exception,
        "output": c.output,
        "summary": summary,
        "wb_user_id": c.wb_user_id,
        "wb_run_id": null,
        "wb_run_step": null,
        "wb_run_step_end": null,
        "deleted_at": null,
        "storage_size_bytes": null,
        "total_storage_size_bytes": null,
    })
}
