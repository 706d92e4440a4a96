//! The v1 trace API's writes of calls: start, end, complete, batched upserts, delete, rename.

use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::call::{Call, DerivedWeave, Micros, counts_errors, merge_weave};
use super::error::{Error, Issue, Result};
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

pub(crate) fn object(v: Option<Map<String, Value>>) -> Value {
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
    pub page: super::page::Page,
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
            page: super::page::Page::from_body(self.limit, self.offset)?,
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
