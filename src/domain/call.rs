//! The call (a trace span): the storage primitive every view is built on.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

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
}

impl Call {
    /// A new root or child call started at `started_at`, with empty output and summary.
    pub fn new(project_id: &str, op_name: &str, started_at: Micros) -> Self {
        let id = new_id();
        Call {
            project_id: project_id.to_string(),
            trace_id: id.clone(),
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
        }
    }

    /// Makes this call a child of `parent` (same trace).
    pub fn under(mut self, parent: &Call) -> Self {
        self.trace_id = parent.trace_id.clone();
        self.parent_id = Some(parent.id.clone());
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
    use chrono::{Datelike, Timelike};
    let Some(dt) = DateTime::<Utc>::from_timestamp_micros(t) else { return };
    let year = dt.year();
    if (0..=9999).contains(&year) {
        push_digits(out, year as u32, 4);
        out.push(b'-');
        push_digits(out, dt.month(), 2);
        out.push(b'-');
        push_digits(out, dt.day(), 2);
        out.push(b'T');
        push_digits(out, dt.hour(), 2);
        out.push(b':');
        push_digits(out, dt.minute(), 2);
        out.push(b':');
        push_digits(out, dt.second(), 2);
    } else {
        out.extend_from_slice(dt.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
    }
    let micros = t.rem_euclid(1_000_000) as u32;
    if micros != 0 {
        out.push(b'.');
        push_digits(out, micros, 6);
    }
    out.push(b'Z');
}

/// Appends `n` as exactly `width` decimal digits, zero-padded.
fn push_digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// The derived `summary.weave` of a call, as Weave's reads add it: its status (`error`,
/// `running`, `descendant_error` or `success`), its latency once ended, and its
/// `display_name` if it has one, else its `trace_name` (the op's name).
pub fn derived_weave(
    started_at: Micros,
    ended_at: Option<Micros>,
    failed: bool,
    descendant_failed: bool,
    display_name: Option<&str>,
    op_name: &str,
) -> serde_json::Value {
    let status = match (failed, ended_at, descendant_failed) {
        (true, _, _) => "error",
        (false, None, _) => "running",
        (false, Some(_), true) => "descendant_error",
        (false, Some(_), false) => "success",
    };
    let mut w = serde_json::json!({ "status": status });
    match display_name.filter(|d| !d.is_empty()) {
        Some(d) => w["display_name"] = serde_json::json!(d),
        None => w["trace_name"] = serde_json::json!(op_short_name(op_name)),
    }
    if let Some(end) = ended_at {
        w["latency_ms"] = serde_json::json!((end - started_at).div_euclid(1000));
    }
    w
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
        assert_eq!(format_time(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(format_time(1_700_000_000_100_000), "2023-11-14T22:13:20.100000Z");
    }

    #[test]
    fn op_refs_name_their_op() {
        assert_eq!(op_short_name("weave:///a/b/op/Evaluation.evaluate:abc"), "Evaluation.evaluate");
        assert_eq!(op_short_name("Evaluation.evaluate"), "Evaluation.evaluate");
    }
}
