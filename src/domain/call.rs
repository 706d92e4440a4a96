//! The call (a trace span): the storage primitive every view is built on.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// The times a store keeps, on every backend: 1900-01-01T00:00:00Z to
/// 2299-12-31T23:59:59.999999Z, the range of ClickHouse's `DateTime64(6)`. A written time
/// outside it is refused, so that both stores accept the same calls.
pub const STORED_TIMES: std::ops::RangeInclusive<Micros> = -2_208_988_800_000_000..=10_413_791_999_999_999;

/// One call as stored. JSON-valued fields are kept as parsed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `"{entity}/{project}"`.
    pub project_id: String,
    /// The call's id (a UUIDv7 string for calls weft creates).
    pub id: String,
    /// Id of the trace's root call.
    pub trace_id: String,
    /// Parent call, `None` for a root.
    pub parent_id: Option<String>,
    /// Op name or op ref.
    pub op_name: String,
    /// Display name, if set.
    pub display_name: Option<String>,
    /// Start time.
    pub started_at: Micros,
    /// End time, `None` while running.
    pub ended_at: Option<Micros>,
    /// Exception text when the call failed.
    pub exception: Option<String>,
    /// Attributes object (`{"weave": {...}}` for the views).
    pub attributes: Value,
    /// Inputs object.
    pub inputs: Value,
    /// Output, once ended.
    pub output: Option<Value>,
    /// Summary, once ended.
    pub summary: Option<Value>,
    /// The user that wrote the call, if known.
    pub wb_user_id: Option<String>,
    /// The thread (a conversation) the call belongs to, if any.
    pub thread_id: Option<String>,
    /// The turn of its thread the call belongs to, if any.
    pub turn_id: Option<String>,
    /// The W&B run the call was logged in, if any.
    pub wb_run_id: Option<String>,
    /// The step of that run when the call started.
    pub wb_run_step: Option<i64>,
    /// The step of that run when the call ended.
    pub wb_run_step_end: Option<i64>,
}

/// Parses stored JSON text, treating text that is not JSON as a string value: how every
/// store reads the JSON fields of what it holds.
pub fn stored_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A stored call narrowed to what a run's examples are made of, its JSON fields as the stored
/// text, unparsed and borrowed from the store's row: for readers of many calls that parse only
/// the parts they use. What [`crate::domain::store::Store::children_text`] streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallText<'a> {
    /// The call's id.
    pub id: &'a str,
    /// Parent call, `None` for a root.
    pub parent_id: Option<&'a str>,
    /// Op name or op ref.
    pub op_name: &'a str,
    /// Start time.
    pub started_at: Micros,
    /// End time, `None` while running.
    pub ended_at: Option<Micros>,
    /// Exception text when the call failed.
    pub exception: Option<&'a str>,
    /// Attributes, JSON text.
    pub attributes: &'a str,
    /// Inputs, JSON text.
    pub inputs: &'a str,
    /// Output, JSON text, once ended.
    pub output: Option<&'a str>,
}

impl Call {
    /// A new root or child call started at `started_at`, with empty output and summary.
    pub fn new(project_id: &str, op_name: &str, started_at: Micros) -> Self {
        let id = new_id();
        Self::with_ids(project_id, op_name, started_at, id.clone(), id)
    }

    /// A call with the given id and trace id, otherwise as [`Call::new`].
    pub fn with_ids(
        project_id: &str,
        op_name: &str,
        started_at: Micros,
        id: String,
        trace_id: String,
    ) -> Self {
        Call {
            project_id: project_id.to_string(),
            trace_id,
            id,
            parent_id: None,
            op_name: op_name.to_string(),
            display_name: None,
            started_at,
            ended_at: None,
            exception: None,
            attributes: Value::Object(Default::default()),
            inputs: Value::Object(Default::default()),
            output: None,
            summary: None,
            wb_user_id: None,
            thread_id: None,
            turn_id: None,
            wb_run_id: None,
            wb_run_step: None,
            wb_run_step_end: None,
        }
    }

    /// Makes this call a child of `parent` (same trace).
    pub fn under(self, parent: &Call) -> Self {
        self.child_of(&parent.trace_id, &parent.id)
    }

    /// Makes this call a child of call `parent_id` in trace `trace_id`.
    pub fn child_of(mut self, trace_id: &str, parent_id: &str) -> Self {
        self.trace_id = trace_id.to_string();
        self.parent_id = Some(parent_id.to_string());
        self
    }

    /// `attributes.weave.<key>` as a string, if it is one.
    pub fn weave_attr(&self, key: &str) -> Option<&str> {
        self.attributes.get("weave")?.get(key)?.as_str()
    }

    /// The op's name: the name part of an op ref, or the op name itself.
    pub fn op_short_name(&self) -> &str {
        op_short_name(&self.op_name)
    }
}

/// The name part of an op ref (`weave:///e/p/op/Name:digest` → `Name`), or `op` unchanged.
pub fn op_short_name(op: &str) -> &str {
    if let Some(rest) = op.strip_prefix("weave:///").or_else(|| op.strip_prefix("weave-trace-internal:///"))
        && let Some((_, tail)) = rest.split_once("/op/")
    {
        return tail.split(':').next().unwrap_or(tail);
    }
    op
}

/// A new call id: a UUIDv7 string, ordered by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time.
pub fn now() -> Micros {
    Utc::now().timestamp_micros()
}

/// Formats a time as pydantic does for UTC datetimes: `2025-01-02T03:04:05.123456Z`,
/// without a fraction when it is zero.
pub fn format_time(t: Micros) -> String {
    let mut out = Vec::with_capacity(27);
    write_time(&mut out, t);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`format_time`]'s text to `out` without allocating (the list's hot path).
pub fn write_time(out: &mut Vec<u8>, t: Micros) {
    let (secs, micros) = (t.div_euclid(1_000_000), t.rem_euclid(1_000_000) as u32);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    // Days since the epoch to a proleptic Gregorian date (the civil-from-days algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        if let Some(dt) = DateTime::<Utc>::from_timestamp_micros(t) {
            out.extend_from_slice(dt.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
        }
        if micros != 0 {
            let mut fraction = *b".000000";
            put_digits(&mut fraction[1..], micros);
            out.extend_from_slice(&fraction);
        }
        out.push(b'Z');
        return;
    }
    // Filled in place and appended at once: this runs for every listed row.
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year as u32);
    put_digits(&mut text[5..7], month);
    put_digits(&mut text[8..10], day);
    put_digits(&mut text[11..13], sod / 3600);
    put_digits(&mut text[14..16], sod / 60 % 60);
    put_digits(&mut text[17..19], sod % 60);
    if micros != 0 {
        put_digits(&mut text[20..26], micros);
        out.extend_from_slice(&text);
    } else {
        out.extend_from_slice(&text[..19]);
        out.push(b'Z');
    }
}

/// Writes `n` into `slot` as decimal digits, zero-padded to the slot's width.
fn put_digits(slot: &mut [u8], mut n: u32) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The derived `summary.weave` of a call, as Weave's reads add it: its status (`error`,
/// `running`, `descendant_error` or `success`), its `display_name` if it has one, else its
/// `trace_name` (the op's name), and its latency once ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DerivedWeave<'a> {
    status: &'static str,
    name_key: &'static str,
    name: &'a str,
    latency_ms: Option<i64>,
}

impl<'a> DerivedWeave<'a> {
    /// Derives the fields of a call's `summary.weave`.
    pub fn new(
        started_at: Micros,
        ended_at: Option<Micros>,
        failed: bool,
        descendant_failed: bool,
        display_name: Option<&'a str>,
        op_name: &'a str,
    ) -> Self {
        let status = match (failed, ended_at, descendant_failed) {
            (true, _, _) => "error",
            (false, None, _) => "running",
            (false, Some(_), true) => "descendant_error",
            (false, Some(_), false) => "success",
        };
        let (name_key, name) = match display_name.filter(|d| !d.is_empty()) {
            Some(d) => ("display_name", d),
            None => ("trace_name", op_short_name(op_name)),
        };
        DerivedWeave {
            status,
            name_key,
            name,
            latency_ms: ended_at.map(|e| (e - started_at).div_euclid(1000)),
        }
    }

    /// As a JSON object.
    pub fn to_value(&self) -> serde_json::Value {
        let mut w = serde_json::json!({ "status": self.status });
        w[self.name_key] = serde_json::json!(self.name);
        if let Some(ms) = self.latency_ms {
            w["latency_ms"] = serde_json::json!(ms);
        }
        w
    }

    /// Appends the same JSON object as [`DerivedWeave::to_value`] would serialise to.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"status\":\"");
        out.extend_from_slice(self.status.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(self.name_key.as_bytes());
        out.extend_from_slice(b"\":");
        write_json_str(out, self.name);
        if let Some(ms) = self.latency_ms {
            out.extend_from_slice(b",\"latency_ms\":");
            out.extend_from_slice(ms.to_string().as_bytes());
        }
        out.push(b'}');
    }
}

/// Appends `s` as a JSON string, copying it as is when nothing in it needs escaping.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // A fold without early exit, which the compiler turns into wide compares.
    let plain = !s.bytes().fold(false, |escape, b| escape | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serialising a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Whether a summary counts failed descendants (`status_counts.error > 0`).
pub fn counts_errors(summary: &serde_json::Map<String, serde_json::Value>) -> bool {
    summary
        .get("status_counts")
        .and_then(|c| c.get("error"))
        .and_then(serde_json::Value::as_f64)
        .is_some_and(|n| n > 0.0)
}

/// Puts the derived `weave` object into a summary, merged into a stored `weave` object if any.
pub fn merge_weave(summary: &mut serde_json::Map<String, serde_json::Value>, derived: serde_json::Value) {
    match (summary.get_mut("weave"), derived) {
        (Some(serde_json::Value::Object(existing)), serde_json::Value::Object(derived)) => {
            existing.extend(derived)
        }
        (_, derived) => {
            summary.insert("weave".into(), derived);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_pydantic() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_time(951_827_696_000_001), "2000-02-29T12:34:56.000001Z");
        assert_eq!(format_time(4_102_444_799_000_000), "2099-12-31T23:59:59Z");
        assert_eq!(format_time(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(format_time(1_700_000_000_100_000), "2023-11-14T22:13:20.100000Z");
    }

    #[test]
    fn time_formatting_agrees_with_chrono() {
        let mut t: i64 = -62_135_596_800_000_000; // 0001-01-01
        while t < 253_402_300_799_000_000 {
            let dt = DateTime::<Utc>::from_timestamp_micros(t).unwrap();
            let expected = if t.rem_euclid(1_000_000) == 0 {
                dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            };
            assert_eq!(format_time(t), expected, "{t}");
            t += 3_999_999_937_123; // about 46 days and an odd number of microseconds
        }
    }

    #[test]
    fn derived_weave_writes_what_it_serialises_to() {
        for d in [
            DerivedWeave::new(0, Some(1_500), false, false, None, "weave:///e/p/op/f:1"),
            DerivedWeave::new(0, None, false, false, Some("my \"f\""), "f"),
            DerivedWeave::new(0, Some(9_000_000), true, false, None, "f"),
        ] {
            let mut out = Vec::new();
            d.write_json(&mut out);
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap(), d.to_value());
        }
    }

    #[test]
    fn op_refs_name_their_op() {
        assert_eq!(op_short_name("weave:///a/b/op/Evaluation.evaluate:abc"), "Evaluation.evaluate");
        assert_eq!(op_short_name("Evaluation.evaluate"), "Evaluation.evaluate");
    }
}
