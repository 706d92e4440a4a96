//! Rows as they travel: encoded as JSONEachRow lines for inserts, and decoded from the
//! JSONCompactEachRow lines (arrays in column order) of the `*_COLUMNS` selections.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::call::{Call, CallText, Micros};
use crate::domain::costs::LlmPrice;
use crate::domain::error::{Error, Result};
use crate::domain::feedback::Feedback;
use crate::domain::keys::ApiKey;
use crate::domain::object::ObjectVersion;
use crate::domain::sessions::Session;
use crate::domain::view::ViewColumns;
use crate::store::json_from_text;

/// First instant a `DateTime64(6, 'UTC')` holds: 1900-01-01T00:00:00Z, in µs.
const TIME_MIN: Micros = -2_208_988_800_000_000;
/// Last instant a `DateTime64(6, 'UTC')` holds: 2299-12-31T23:59:59.999999Z, in µs.
const TIME_MAX: Micros = 10_413_791_999_999_999;

/// Refuses (400) a time a `DateTime64(6, 'UTC')` column cannot hold (before 1900 or after 2299).
pub fn check_time(micros: Micros) -> Result<()> {
    if (TIME_MIN..=TIME_MAX).contains(&micros) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "time out of the stored range (1900-01-01 to 2299-12-31): {} µs since the epoch",
            micros
        )))
    }
}

/// Refuses (400) a call whose times the calls table cannot hold.
pub fn check_call_times(c: &Call) -> Result<()> {
    check_time(c.started_at)?;
    c.ended_at.map_or(Ok(()), check_time)
}

/// A time as ClickHouse reads a `DateTime64(6, 'UTC')` in text formats.
pub fn time(micros: Micros) -> Result<String> {
    check_time(micros)?;
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .ok_or_else(|| Error::BadRequest(format!("time out of range: {micros} µs")))
}

fn opt_time(micros: Option<Micros>) -> Result<Value> {
    Ok(match micros {
        Some(m) => Value::String(time(m)?),
        None => Value::Null,
    })
}

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

/// An object version with its soft-delete time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The version.
    pub object: ObjectVersion,
    /// When it was deleted, if it was.
    pub deleted_at: Option<Micros>,
}

/// The columns of an object version as [`ObjectTuple`] reads them.
pub const OBJECT_COLUMNS: &str = "project_id, object_id, digest, version_index, kind, base_object_class, \
    leaf_object_class, val, toUnixTimestamp64Micro(created_at), wb_user_id, \
    toUnixTimestamp64Micro(deleted_at)";

/// A row of [`OBJECT_COLUMNS`].
pub type ObjectTuple = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Micros,
    Option<String>,
    Option<Micros>,
);

/// Decodes a row of [`OBJECT_COLUMNS`].
pub fn object_from_tuple(t: ObjectTuple) -> StoredObject {
    StoredObject {
        object: ObjectVersion {
            project_id: t.0,
            object_id: t.1,
            digest: t.2,
            version_index: t.3,
            kind: t.4,
            base_object_class: t.5,
            leaf_object_class: t.6,
            val: json_from_text(&t.7),
            created_at: t.8,
            wb_user_id: t.9,
        },
        deleted_at: t.10,
    }
}

/// Encodes an object version as a row of the objects table.
pub fn object_line(s: &StoredObject, version: u64) -> Result<String> {
    let o = &s.object;
    Ok(json!({
        "project_id": o.project_id,
        "object_id": o.object_id,
        "digest": o.digest,
        "version_index": o.version_index,
        "kind": o.kind,
        "base_object_class": o.base_object_class,
        "leaf_object_class": o.leaf_object_class,
        "val": o.val.to_string(),
        "created_at": time(o.created_at)?,
        "wb_user_id": o.wb_user_id,
        "deleted_at": opt_time(s.deleted_at)?,
        "version": version,
    })
    .to_string())
}

/// [`OBJECT_COLUMNS`], with `'{}'` read in place of each value when `metadata_only`.
pub fn object_columns(metadata_only: bool) -> String {
    if metadata_only { OBJECT_COLUMNS.replacen(" val,", " '{}',", 1) } else { OBJECT_COLUMNS.to_string() }
}

/// A tag of an object version, or its removal.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub project_id: String,
    pub object_id: String,
    pub digest: String,
    pub tag: String,
    pub removed: bool,
}

impl TagRow {
    pub fn new(project: &str, object_id: &str, digest: &str, tag: &str, removed: bool) -> Self {
        TagRow {
            project_id: project.into(),
            object_id: object_id.into(),
            digest: digest.into(),
            tag: tag.into(),
            removed,
        }
    }
}

/// Encodes a tag as a row of the object_tags table.
pub fn tag_line(t: &TagRow, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": t.project_id,
        "object_id": t.object_id,
        "digest": t.digest,
        "tag": t.tag,
        "removed": t.removed,
        "version": version,
    })
    .to_string())
}

/// An alias of an object and the version it names, or its removal.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    pub project_id: String,
    pub object_id: String,
    pub alias: String,
    pub digest: String,
    pub removed: bool,
}

impl AliasRow {
    pub fn new(project: &str, object_id: &str, alias: &str, digest: &str, removed: bool) -> Self {
        AliasRow {
            project_id: project.into(),
            object_id: object_id.into(),
            alias: alias.into(),
            digest: digest.into(),
            removed,
        }
    }
}

/// Encodes an alias as a row of the object_aliases table.
pub fn alias_line(a: &AliasRow, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": a.project_id,
        "object_id": a.object_id,
        "alias": a.alias,
        "digest": a.digest,
        "removed": a.removed,
        "version": version,
    })
    .to_string())
}

/// The columns of a feedback row as [`FeedbackTuple`] reads them.
pub const FEEDBACK_COLUMNS: &str = "project_id, id, weave_ref, feedback_type, payload, creator, \
    toUnixTimestamp64Micro(created_at), wb_user_id, annotation_ref, runnable_ref, call_ref, trigger_ref";

/// A row of [`FEEDBACK_COLUMNS`].
pub type FeedbackTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Micros,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Decodes a row of [`FEEDBACK_COLUMNS`].
pub fn feedback_from_tuple(t: FeedbackTuple) -> Feedback {
    Feedback {
        project_id: t.0,
        id: t.1,
        weave_ref: t.2,
        feedback_type: t.3,
        payload: json_from_text(&t.4),
        creator: t.5,
        created_at: t.6,
        wb_user_id: t.7,
        annotation_ref: t.8,
        runnable_ref: t.9,
        call_ref: t.10,
        trigger_ref: t.11,
    }
}

/// The columns of a price as [`PriceTuple`] reads them.
pub const PRICE_COLUMNS: &str = "project_id, id, llm_id, provider_id, toUnixTimestamp64Micro(effective_date), \
    prompt_token_cost, completion_token_cost, cache_read_input_token_cost, cache_creation_input_token_cost, \
    prompt_token_cost_unit, completion_token_cost_unit, created_by, toUnixTimestamp64Micro(created_at)";

/// A row of [`PRICE_COLUMNS`].
pub type PriceTuple =
    (String, String, String, String, Micros, f64, f64, f64, f64, String, String, Option<String>, Micros);

/// Decodes a row of [`PRICE_COLUMNS`].
pub fn price_from_tuple(t: PriceTuple) -> LlmPrice {
    LlmPrice {
        project_id: t.0,
        id: t.1,
        llm_id: t.2,
        provider_id: t.3,
        effective_date: t.4,
        prompt_token_cost: t.5,
        completion_token_cost: t.6,
        cache_read_input_token_cost: t.7,
        cache_creation_input_token_cost: t.8,
        prompt_token_cost_unit: t.9,
        completion_token_cost_unit: t.10,
        created_by: t.11,
        created_at: t.12,
    }
}

/// Encodes a price, deleted at `deleted_at` if it was.
pub fn price_line(p: &LlmPrice, deleted_at: Option<Micros>, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": p.project_id,
        "id": p.id,
        "llm_id": p.llm_id,
        "provider_id": p.provider_id,
        "effective_date": time(p.effective_date)?,
        "prompt_token_cost": p.prompt_token_cost,
        "completion_token_cost": p.completion_token_cost,
        "cache_read_input_token_cost": p.cache_read_input_token_cost,
        "cache_creation_input_token_cost": p.cache_creation_input_token_cost,
        "prompt_token_cost_unit": p.prompt_token_cost_unit,
        "completion_token_cost_unit": p.completion_token_cost_unit,
        "created_by": p.created_by,
        "created_at": time(p.created_at)?,
        "deleted_at": opt_time(deleted_at)?,
        "version": version,
    })
    .to_string())
}

/// Encodes a feedback row, deleted at `deleted_at` if it was.
pub fn feedback_line(f: &Feedback, deleted_at: Option<Micros>, version: u64) -> Result<String> {
    Ok(json!({
        "project_id": f.project_id,
        "id": f.id,
        "weave_ref": f.weave_ref,
        "feedback_type": f.feedback_type,
        "payload": f.payload.to_string(),
        "creator": f.creator,
        "created_at": time(f.created_at)?,
        "wb_user_id": f.wb_user_id,
        "annotation_ref": f.annotation_ref,
        "runnable_ref": f.runnable_ref,
        "call_ref": f.call_ref,
        "trigger_ref": f.trigger_ref,
        "deleted_at": opt_time(deleted_at)?,
        "version": version,
    })
    .to_string())
}

/// The columns of an API key as [`KeyTuple`] reads them.
pub const KEY_COLUMNS: &str = "id, hash, entities, admin, toUnixTimestamp64Micro(created_at), \
    toUnixTimestamp64Micro(revoked_at)";

/// A row of [`KEY_COLUMNS`].
pub type KeyTuple = (String, String, Vec<String>, bool, Micros, Option<Micros>);

/// Decodes a row of [`KEY_COLUMNS`].
pub fn key_from_tuple(t: KeyTuple) -> ApiKey {
    ApiKey { id: t.0, hash: t.1, entities: t.2, admin: t.3, created_at: t.4, revoked_at: t.5 }
}

/// The columns of a session as [`SessionTuple`] reads them.
pub const SESSION_COLUMNS: &str = "hash, key_hash, csrf, toUnixTimestamp64Micro(created_at), \
    toUnixTimestamp64Micro(expires_at), toUnixTimestamp64Micro(ended_at)";

/// A row of [`SESSION_COLUMNS`].
pub type SessionTuple = (String, String, String, Micros, Micros, Option<Micros>);

/// Decodes a row of [`SESSION_COLUMNS`].
pub fn session_from_tuple(t: SessionTuple) -> Session {
    Session { hash: t.0, key_hash: t.1, csrf: t.2, created_at: t.3, expires_at: t.4, ended_at: t.5 }
}

/// Encodes a session.
pub fn session_line(s: &Session, version: u64) -> Result<String> {
    Ok(json!({
        "hash": s.hash,
        "key_hash": s.key_hash,
        "csrf": s.csrf,
        "created_at": time(s.created_at)?,
        "expires_at": time(s.expires_at)?,
        "ended_at": opt_time(s.ended_at)?,
        "version": version,
    })
    .to_string())
}

/// Encodes an API key.
pub fn key_line(k: &ApiKey, version: u64) -> Result<String> {
    Ok(json!({
        "id": k.id,
        "hash": k.hash,
        "entities": k.entities,
        "admin": k.admin,
        "created_at": time(k.created_at)?,
        "revoked_at": opt_time(k.revoked_at)?,
        "version": version,
    })
    .to_string())
}

/// Encodes a table row (content-addressed: any version of it is the same row).
pub fn table_row_line(project: &str, digest: &str, val: &str) -> String {
    json!({"project_id": project, "digest": digest, "val": val, "version": 0}).to_string()
}

/// Encodes a table's ordered row digests.
pub fn table_line(project: &str, digest: &str, row_digests: &[String]) -> String {
    json!({"project_id": project, "digest": digest, "row_digests": row_digests, "version": 0}).to_string()
}

/// Encodes a file, its bytes in base64.
pub fn file_line(project: &str, digest: &str, content: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    json!({"project_id": project, "digest": digest, "content_base64": encoded, "version": 0}).to_string()
}

/// Decodes a file's base64 bytes.
pub fn file_content(encoded: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Error::Storage(format!("a stored file is not base64: {e}")))
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
    fn times_are_clickhouse_datetime64_text() {
        assert_eq!(time(1_700_000_000_123_456).expect("time"), "2023-11-14 22:13:20.123456");
        assert_eq!(time(0).expect("time"), "1970-01-01 00:00:00.000000");
        assert!(time(i64::MAX).is_err());
        assert_eq!(time(TIME_MIN).expect("time"), "1900-01-01 00:00:00.000000");
        assert_eq!(time(TIME_MAX).expect("time"), "2299-12-31 23:59:59.999999");
        assert!(time(TIME_MIN - 1).is_err() && time(TIME_MAX + 1).is_err());
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

    #[test]
    fn files_round_trip_any_bytes() {
        let bytes = [0u8, 255, 10, 13, 34, 92];
        let line: Value = serde_json::from_str(&file_line("p", "d", &bytes)).expect("json");
        let back = file_content(line["content_base64"].as_str().expect("text")).expect("bytes");
        assert_eq!(back, bytes);
    }

    #[test]
    fn keys_round_trip() {
        let k = ApiKey {
            id: "k1".into(),
            hash: "h".into(),
            entities: vec!["acme".into()],
            admin: false,
            created_at: 1,
            revoked_at: None,
        };
        let line: Value = serde_json::from_str(&key_line(&k, 1).expect("line")).expect("json");
        assert_eq!(line["entities"], json!(["acme"]));
        let t: KeyTuple = parse_row(r#"["k1","h",["acme"],false,1,null]"#).expect("row");
        assert_eq!(key_from_tuple(t), k);
    }
}
