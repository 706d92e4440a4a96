//! The v1 trace API's writes of calls: start, end, complete, batched upserts, delete, rename (their
//! queries are in `call_query`).

use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::OutputOnly;
use super::call::Micros;
use super::error::{Error, Issue, Result};

/// Reads a request body into `T`; a mismatch is a 422 naming the problem, a field `T` does not
/// read a 400 naming it (see [`super::body`]).
pub fn from_body<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    super::body::from_value(body)
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

/// Parses a time to be stored (in `field` of a body): [`parse_time`], then a 400 naming the
/// field when it is outside [`STORED_TIMES`](super::call::STORED_TIMES).
pub fn parse_stored_time(s: &str, field: &str) -> Result<Micros> {
    let t = parse_time(s)?;
    if super::call::STORED_TIMES.contains(&t) {
        Ok(t)
    } else {
        Err(Error::BadRequest(format!(
            "{field}: time out of the stored range (1900-01-01 to 2299-12-31 UTC): {s:?}"
        )))
    }
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
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    pub started_at: String,
    pub attributes: Option<Map<String, Value>>,
    pub inputs: Option<Map<String, Value>>,
    pub wb_user_id: Option<String>,
    pub wb_run_id: Option<String>,
    pub wb_run_step: Option<i64>,
    /// Output only: the OpenTelemetry span a call came from, which no read of weft returns.
    pub otel_dump: Option<OutputOnly>,
}

/// What a call's end carries, in an end or a completed call.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub ended_at: String,
    /// A name given to the call while it ran (the TypeScript SDK sends it with the end).
    pub display_name: Option<String>,
    pub exception: Option<String>,
    pub output: Value,
    pub summary: Option<Map<String, Value>>,
    pub wb_run_step_end: Option<i64>,
}

/// `EndedCallSchemaForInsert`.
#[derive(Debug, Clone, Deserialize)]
pub struct CallEnd {
    pub project_id: String,
    pub id: String,
    pub ended_at: String,
    pub exception: Option<String>,
    #[serde(default)]
    pub output: Value,
    pub summary: Option<Map<String, Value>>,
    pub wb_run_step_end: Option<i64>,
    /// Not in Weave's schema (its server ignores it): the TypeScript SDK sends the name a call
    /// was given while it ran with its end; weft renames the call with it.
    pub display_name: Option<String>,
    /// Output only: the start of the call (its start is what weft keeps).
    pub started_at: Option<OutputOnly>,
    /// Output only: the trace of the call (its start is what weft keeps).
    pub trace_id: Option<OutputOnly>,
    /// Output only: a hint for Weave's storage of evaluation calls.
    pub is_eval: Option<OutputOnly>,
}

impl CallEnd {
    /// What this end writes.
    pub fn ending(&self) -> Ending {
        Ending {
            ended_at: self.ended_at.clone(),
            display_name: self.display_name.clone(),
            exception: self.exception.clone(),
            output: self.output.clone(),
            summary: self.summary.clone(),
            wb_run_step_end: self.wb_run_step_end,
        }
    }
}

/// `CompletedCallSchemaForInsert`: a call sent once it has ended.
///
/// Every field is read whole (text, numbers, JSON values, [`OutputOnly`]): `calls/complete`
/// finds unread fields at this level only ([`super::body::struct_noting_unknown`]). A field
/// that is itself a struct must be read through that function too.
#[derive(Debug, Clone, Deserialize)]
pub struct CallComplete {
    pub project_id: String,
    pub id: Option<String>,
    pub op_name: String,
    pub display_name: Option<String>,
    pub trace_id: Option<String>,
    pub parent_id: Option<String>,
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    pub started_at: String,
    pub attributes: Option<Map<String, Value>>,
    pub inputs: Option<Map<String, Value>>,
    pub wb_user_id: Option<String>,
    pub wb_run_id: Option<String>,
    pub wb_run_step: Option<i64>,
    pub wb_run_step_end: Option<i64>,
    pub ended_at: String,
    pub exception: Option<String>,
    #[serde(default)]
    pub output: Value,
    pub summary: Option<Map<String, Value>>,
    /// Output only: as in a start.
    pub otel_dump: Option<OutputOnly>,
}

impl CallComplete {
    /// Its start and its end, moved out of it (nothing copied).
    pub fn into_parts(self) -> (CallStart, Ending) {
        let start = CallStart {
            project_id: self.project_id,
            id: self.id,
            op_name: self.op_name,
            display_name: self.display_name,
            trace_id: self.trace_id,
            parent_id: self.parent_id,
            thread_id: self.thread_id,
            turn_id: self.turn_id,
            started_at: self.started_at,
            attributes: self.attributes,
            inputs: self.inputs,
            wb_user_id: self.wb_user_id,
            wb_run_id: self.wb_run_id,
            wb_run_step: self.wb_run_step,
            otel_dump: None,
        };
        let ending = Ending {
            ended_at: self.ended_at,
            display_name: None,
            exception: self.exception,
            output: self.output,
            summary: self.summary,
            wb_run_step_end: self.wb_run_step_end,
        };
        (start, ending)
    }

    /// Its start.
    pub fn start(&self) -> CallStart {
        CallStart {
            project_id: self.project_id.clone(),
            id: self.id.clone(),
            op_name: self.op_name.clone(),
            display_name: self.display_name.clone(),
            trace_id: self.trace_id.clone(),
            parent_id: self.parent_id.clone(),
            thread_id: self.thread_id.clone(),
            turn_id: self.turn_id.clone(),
            started_at: self.started_at.clone(),
            attributes: self.attributes.clone(),
            inputs: self.inputs.clone(),
            wb_user_id: self.wb_user_id.clone(),
            wb_run_id: self.wb_run_id.clone(),
            wb_run_step: self.wb_run_step,
            otel_dump: None,
        }
    }

    /// Its end.
    pub fn ending(&self) -> Ending {
        Ending {
            ended_at: self.ended_at.clone(),
            display_name: None,
            exception: self.exception.clone(),
            output: self.output.clone(),
            summary: self.summary.clone(),
            wb_run_step_end: self.wb_run_step_end,
        }
    }
}

/// `POST /v2/{entity}/{project}/calls/complete`'s body: ended calls.
#[derive(Deserialize)]
pub struct CompleteBody {
    pub batch: Vec<CallComplete>,
}

/// Reads a [`CompleteBody`] handing each call of its batch to `each` as soon as it is read,
/// in order, through [`super::body::from_slice_noting`]: a field neither the body nor a call
/// knows sets `unknown` (the body must then be read again by [`super::body::from_bytes`] for
/// its answer). Read without error and with nothing unknown, it gives the calls reading it
/// whole gives.
pub struct CompleteCalls<'s, F> {
    pub each: &'s mut F,
    pub unknown: &'s mut bool,
}

impl<'de, F: FnMut(CallComplete)> serde::de::DeserializeSeed<'de> for CompleteCalls<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_struct("CompleteBody", &["batch"], self)
    }
}

impl<'de, F: FnMut(CallComplete)> serde::de::Visitor<'de> for CompleteCalls<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct CompleteBody")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        use serde::de::Error as _;
        let mut read = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "batch" {
                *self.unknown = true;
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            if read {
                return Err(A::Error::duplicate_field("batch"));
            }
            read = true;
            map.next_value_seed(Batch { each: &mut *self.each, unknown: &mut *self.unknown })?;
        }
        if read { Ok(()) } else { Err(A::Error::missing_field("batch")) }
    }
}

/// The calls of a [`CompleteCalls`] batch, each handed on as it is read.
struct Batch<'s, F> {
    each: &'s mut F,
    unknown: &'s mut bool,
}

impl<'de, F: FnMut(CallComplete)> serde::de::DeserializeSeed<'de> for Batch<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(CallComplete)> serde::de::Visitor<'de> for Batch<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(call) = seq.next_element_seed(OneCall(&mut *self.unknown))? {
            (self.each)(call);
        }
        Ok(())
    }
}

/// One call of a [`CompleteCalls`] batch: every field of a [`CallComplete`] is read whole.
struct OneCall<'u>(&'u mut bool);

impl<'de> serde::de::DeserializeSeed<'de> for OneCall<'_> {
    type Value = CallComplete;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<CallComplete, D::Error> {
        super::body::struct_noting_unknown(d, self.0)
    }
}

/// One item of `call/upsert_batch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawUpsertItem")]
pub enum UpsertItem {
    /// `{"mode": "start", "req": {"start": ...}}`.
    Start(StartReq),
    /// `{"mode": "end", "req": {"end": ...}}`.
    End(EndReq),
}

/// An item as sent: its `req` is read by the body rule of its own (an adjacently tagged enum
/// would let fields it does not read pass unnoticed).
#[derive(Deserialize)]
struct RawUpsertItem {
    mode: String,
    req: Value,
}

impl TryFrom<RawUpsertItem> for UpsertItem {
    type Error = String;

    fn try_from(item: RawUpsertItem) -> std::result::Result<Self, String> {
        let why = |e: Error| match e {
            Error::Validation(issues) => {
                let each = issues.iter().map(|i| {
                    // The issue's place inside `req` (its first part is `body`).
                    let at: Vec<String> = i
                        .loc
                        .iter()
                        .skip(1)
                        .map(|l| l.as_str().map_or(l.to_string(), String::from))
                        .collect();
                    format!("req.{}: {}", at.join("."), i.msg)
                });
                each.collect::<Vec<_>>().join("; ")
            }
            other => format!("req: {other}"),
        };
        match item.mode.as_str() {
            "start" => super::body::from_value(item.req).map(UpsertItem::Start).map_err(why),
            "end" => super::body::from_value(item.req).map(UpsertItem::End).map_err(why),
            other => Err(format!("unknown mode {other:?}, expected `start` or `end`")),
        }
    }
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
