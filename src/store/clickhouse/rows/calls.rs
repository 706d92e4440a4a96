//! Calls as the calls table holds them, with their view columns.

use serde_json::{Value, json};

use super::{opt_time, time};
use crate::domain::call::{Call, CallText, Micros};
use crate::domain::error::Result;
use crate::domain::view::ViewColumns;
use crate::store::json_from_text;

/// A call with its soft-delete time, as the calls table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    /// The call.
    pub call: Call,
    /// When it was deleted, if it was.
    pub deleted_at: Option<Micros>,
}

/// The columns of a call as [`CallTuple`] reads them.
pub const CALL_COLUMNS: &str = "project_id, id, trace_id, parent_id, op_name, display_name, \
    toUnixTimestamp64Micro(started_at), toUnixTimestamp64Micro(ended_at), exception, attributes, \
    inputs, output, summary, wb_user_id, toUnixTimestamp64Micro(deleted_at), thread_id, turn_id, wb_run_id, \
    wb_run_step, wb_run_step_end";

/// A row of [`CALL_COLUMNS`].
#[derive(Debug, serde::Deserialize)]
pub struct CallTuple(
    pub String,
    pub String,
    pub String,
    pub Option<String>,
    pub String,
    pub Option<String>,
    pub Micros,
    pub Option<Micros>,
    pub Option<String>,
    pub String,
    pub String,
    pub Option<String>,
    pub Option<String>,
    pub Option<String>,
    pub Option<Micros>,
    pub Option<String>,
    pub Option<String>,
    pub Option<String>,
    pub Option<i64>,
    pub Option<i64>,
);

/// Decodes a row of [`CALL_COLUMNS`].
pub fn call_from_tuple(t: CallTuple) -> StoredCall {
    let json = |s: Option<String>| s.map(|s| json_from_text(&s));
    StoredCall {
        call: Call {
            project_id: t.0,
            id: t.1,
            trace_id: t.2,
            parent_id: t.3,
            op_name: t.4,
            display_name: t.5,
            started_at: t.6,
            ended_at: t.7,
            exception: t.8,
            attributes: json_from_text(&t.9),
            inputs: json_from_text(&t.10),
            output: json(t.11),
            summary: json(t.12),
            wb_user_id: t.13,
            thread_id: t.15,
            turn_id: t.16,
            wb_run_id: t.17,
            wb_run_step: t.18,
            wb_run_step_end: t.19,
        },
        deleted_at: t.14,
    }
}

/// The columns of a call as [`CallTextTuple`] reads them.
pub const CALL_TEXT_COLUMNS: &str = "id, parent_id, op_name, toUnixTimestamp64Micro(started_at), \
    toUnixTimestamp64Micro(ended_at), exception, attributes, inputs, output";

/// A row of [`CALL_TEXT_COLUMNS`].
pub type CallTextTuple =
    (String, Option<String>, String, Micros, Option<Micros>, Option<String>, String, String, Option<String>);

/// The [`CallText`] of a row of [`CALL_TEXT_COLUMNS`].
pub fn call_text(t: &CallTextTuple) -> CallText<'_> {
    CallText {
        id: &t.0,
        parent_id: t.1.as_deref(),
        op_name: &t.2,
        started_at: t.3,
        ended_at: t.4,
        exception: t.5.as_deref(),
        attributes: &t.6,
        inputs: &t.7,
        output: t.8.as_deref(),
    }
}

/// Encodes a call, with its view columns, as a row of the calls table.
pub fn call_line(s: &StoredCall, version: u64) -> Result<String> {
    let c = &s.call;
    let v = ViewColumns::of(c);
    let text = |v: &Option<Value>| v.as_ref().map(Value::to_string);
    Ok(json!({
        "project_id": c.project_id,
        "id": c.id,
        "trace_id": c.trace_id,
        "parent_id": c.parent_id,
        "op_name": c.op_name,
        "display_name": c.display_name,
        "started_at": time(c.started_at)?,
        "ended_at": opt_time(c.ended_at)?,
        "exception": c.exception,
        "attributes": c.attributes.to_string(),
        "inputs": c.inputs.to_string(),
        "output": text(&c.output),
        "summary": text(&c.summary),
        "wb_user_id": c.wb_user_id,
        "deleted_at": opt_time(s.deleted_at)?,
        "kind": v.kind.tag(),
        "evaluation": v.evaluation,
        "model": v.model,
        "run_id": v.run_id,
        "logged_run": v.logged_run,
        "thread_id": c.thread_id,
        "turn_id": c.turn_id,
        "wb_run_id": c.wb_run_id,
        "wb_run_step": c.wb_run_step,
        "wb_run_step_end": c.wb_run_step_end,
        "version": version,
    })
    .to_string())
}

/// A key of a call in `call_views`: the view it is listed in and its start time.
pub type ViewKey = (&'static str, Micros);

/// The view key of a call that raised (counted for its trace's failed descendants).
pub const FAILED_VIEW: &str = "failed";

/// The keys `call_views` lists a call under: its kind, if it has one, and [`FAILED_VIEW`] if it
/// raised.
pub fn view_keys(c: &Call) -> Vec<ViewKey> {
    let mut keys = Vec::with_capacity(2);
    if let Some(tag) = ViewColumns::of(c).kind.tag() {
        keys.push((tag, c.started_at));
    }
    if c.exception.is_some() {
        keys.push((FAILED_VIEW, c.started_at));
    }
    keys
}

/// The `call_views` rows of a call: one per key it has now, and one marked deleted per key in
/// `before` (the keys its stored row had) that it no longer has.
pub fn view_lines(s: &StoredCall, before: &[ViewKey], version: u64) -> Result<Vec<String>> {
    let c = &s.call;
    let v = ViewColumns::of(c);
    let now = view_keys(c);
    let text = |v: &Option<Value>| v.as_ref().map(Value::to_string);
    let line = |(kind, started_at): ViewKey, deleted: bool| -> Result<String> {
        // What a run list shows beyond the index: only on a run's row.
        let run = kind == "run";
        Ok(json!({
            "project_id": c.project_id,
            "kind": kind,
            "started_at": time(started_at)?,
            "id": c.id,
            "trace_id": c.trace_id,
            "evaluation": v.evaluation,
            "model": v.model,
            "run_id": v.run_id,
            "op_name": c.op_name,
            "display_name": c.display_name,
            "ended_at": opt_time(c.ended_at)?,
            "failed": c.exception.is_some(),
            "summary": if run { text(&c.summary) } else { None },
            "output": if run && v.logged_run { text(&c.output) } else { None },
            "deleted": deleted,
            "version": version,
        })
        .to_string())
    };
    let mut lines = Vec::with_capacity(now.len() + before.len());
    for k in &now {
        lines.push(line(*k, s.deleted_at.is_some())?);
    }
    for k in before.iter().filter(|k| !now.contains(k)) {
        lines.push(line(*k, true)?);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clickhouse::client::parse_row;

    fn sample_call() -> Call {
        let mut c = Call::new("acme/proj", "Evaluation.evaluate", 1_700_000_000_123_456);
        c.inputs = json!({"self": "weave:///acme/proj/object/E:1", "model": "weave:///acme/proj/object/M:2"});
        c.ended_at = Some(1_700_000_001_000_001);
        c.output = Some(json!({"acc": 0.5}));
        c
    }

    #[test]
    fn a_call_row_carries_its_view_columns() {
        let s = StoredCall { call: sample_call(), deleted_at: None };
        let line: Value = serde_json::from_str(&call_line(&s, 9).expect("line")).expect("json");
        assert_eq!(line["kind"], "run");
        assert_eq!(line["evaluation"], "weave:///acme/proj/object/E:1");
        assert_eq!(line["model"], "weave:///acme/proj/object/M:2");
        assert_eq!(line["logged_run"], true);
        assert_eq!(line["started_at"], "2023-11-14 22:13:20.123456");
        assert_eq!(line["deleted_at"], Value::Null);
        assert_eq!(line["output"], r#"{"acc":0.5}"#);
        assert_eq!(line["version"], 9);
    }

    #[test]
    fn a_call_that_changes_its_view_keys_marks_the_old_ones_deleted() {
        let mut s = StoredCall { call: sample_call(), deleted_at: None };
        let before = view_keys(&s.call);
        assert_eq!(before, vec![("run", s.call.started_at)]);
        s.call.exception = Some("boom".into());
        s.call.started_at += 1;
        let lines: Vec<Value> = view_lines(&s, &before, 3)
            .expect("lines")
            .iter()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let keys: Vec<(&str, bool)> =
            lines.iter().map(|l| (l["kind"].as_str().unwrap_or(""), l["deleted"] == true)).collect();
        assert_eq!(keys, vec![("run", false), ("failed", false), ("run", true)]);
        assert_eq!(lines[2]["started_at"], "2023-11-14 22:13:20.123456", "the old key's start");
        assert_eq!(lines[0]["evaluation"], "weave:///acme/proj/object/E:1");
        s.deleted_at = Some(9);
        let deleted = view_lines(&s, &view_keys(&s.call), 4).expect("lines");
        assert!(deleted.iter().all(|l| l.contains("\"deleted\":true")), "{deleted:?}");
    }

    #[test]
    fn a_call_reads_back_from_its_result_row() {
        let c = sample_call();
        let row = json!([
            c.project_id,
            c.id,
            c.trace_id,
            null,
            c.op_name,
            null,
            c.started_at,
            c.ended_at,
            null,
            c.attributes.to_string(),
            c.inputs.to_string(),
            r#"{"acc":0.5}"#,
            null,
            null,
            5,
            null,
            null,
            null,
            null,
            null
        ]);
        let t: CallTuple = parse_row(&row.to_string()).expect("row");
        let s = call_from_tuple(t);
        assert_eq!(s.call, c);
        assert_eq!(s.deleted_at, Some(5));
    }
}
