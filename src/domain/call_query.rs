//! Calls queries (`calls/stream_query`, `calls/query_stats`): the wire's request (`CallsQueryReq`),
//! the store's query (`CallQuery`: filters, order, window), the ref filters' match, and a call
//! as the v1 API answers it (`call_json`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::OutputOnly;
use super::call::{Call, DerivedWeave, counts_errors, merge_weave};
use super::error::{Error, Result};
use super::validate::MAX_OP_NAMES;

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
    /// Only calls of these threads.
    pub thread_ids: Vec<String>,
    /// Only calls of these turns.
    pub turn_ids: Vec<String>,
    /// Only calls logged in these W&B runs.
    pub wb_run_ids: Vec<String>,
    /// Only calls whose inputs' JSON text holds one of these refs as a string (a ref ending in
    /// `:*`: a string starting with its name and `:`). A store may return more calls than
    /// those whose inputs hold the ref (the text is searched, not parsed); the domain keeps
    /// only the calls [`holds_ref`] says hold one.
    pub input_refs: Vec<String>,
    /// The same over the output.
    pub output_refs: Vec<String>,
    /// Only root calls.
    pub trace_roots_only: bool,
    /// The order: these keys, then the call id (ascending when there are no keys: `started_at`
    /// ascending).
    pub sort: Vec<Sort>,
    /// Window over the ordered result.
    pub page: super::page::Page,
}

/// A key calls are ordered by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortField {
    /// A column of the call: one of [`SORT_COLUMNS`].
    Column(&'static str),
    /// A value inside a JSON field (`inputs`, `output`, `attributes`, `summary`) at a path of
    /// keys. Values order as null (or missing) first, then numbers and booleans by value,
    /// then strings and other values by their text.
    Json(&'static str, Vec<String>),
    /// `summary.weave.latency_ms`: the end minus the start; 0 while running.
    LatencyMs,
    /// `summary.weave.status`: as [`super::call::DerivedWeave`] derives it.
    Status,
    /// `summary.weave.trace_name` as Weave orders by it: the display name when there is a
    /// non-empty one, else the op's name ([`super::call::op_short_name`]).
    TraceName,
}

/// One key of an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

/// The call columns `sort_by` accepts by name.
pub const SORT_COLUMNS: &[&str] = &[
    "id",
    "project_id",
    "trace_id",
    "parent_id",
    "thread_id",
    "turn_id",
    "op_name",
    "display_name",
    "started_at",
    "ended_at",
    "exception",
    "wb_user_id",
    "wb_run_id",
    "wb_run_step",
    "wb_run_step_end",
];

impl SortField {
    /// The key a `sort_by` field names; a 400 for one weft cannot order by.
    pub fn parse(field: &str) -> Result<SortField> {
        if let Some(c) = SORT_COLUMNS.iter().find(|c| **c == field) {
            return Ok(SortField::Column(c));
        }
        match field {
            "summary.weave.latency_ms" => return Ok(SortField::LatencyMs),
            "summary.weave.status" => return Ok(SortField::Status),
            "summary.weave.trace_name" => return Ok(SortField::TraceName),
            _ => {}
        }
        let mut parts = field.split('.');
        let head = parts.next().unwrap_or("");
        let path: Vec<String> = parts.map(String::from).collect();
        let column = ["inputs", "output", "attributes", "summary"].into_iter().find(|c| *c == head);
        match column {
            // A NUL cannot be in a JSON path SQLite's JSON functions read, so no store takes it.
            Some(c)
                if path.iter().all(|p| !p.is_empty() && !p.contains('\0'))
                    && (c == "output" || !path.is_empty()) =>
            {
                Ok(SortField::Json(c, path))
            }
            _ => Err(Error::BadRequest(format!("Unsupported sort_by field {field:?}"))),
        }
    }
}

/// `CallsFilter` of the wire.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallsFilter {
    pub op_names: Option<Vec<String>>,
    pub input_refs: Option<Vec<String>>,
    pub output_refs: Option<Vec<String>>,
    pub parent_ids: Option<Vec<String>>,
    pub trace_ids: Option<Vec<String>>,
    pub call_ids: Option<Vec<String>>,
    pub thread_ids: Option<Vec<String>>,
    pub turn_ids: Option<Vec<String>>,
    pub trace_roots_only: Option<bool>,
    pub wb_user_ids: Option<Vec<String>>,
    pub wb_run_ids: Option<Vec<String>>,
}

/// One `sort_by` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SortBy {
    pub field: String,
    pub direction: Option<String>,
}

impl SortBy {
    /// Whether the order is descending: `direction` is `asc` (or absent) or `desc`, in any
    /// case; anything else is a 400 naming it and the field.
    pub fn descending(&self) -> Result<bool> {
        match self.direction.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => Ok(false),
            Some("desc") => Ok(true),
            Some(other) => Err(Error::BadRequest(format!(
                "Invalid sort_by direction {other:?} for {:?}: asc or desc",
                self.field
            ))),
        }
    }
}

/// `CallsQueryReq` of the wire. Fields typed [`OutputOnly`] are accepted and not read.
#[derive(Debug, Clone, Deserialize)]
pub struct CallsQueryReq {
    pub project_id: String,
    pub filter: Option<CallsFilter>,
    #[serde(default, deserialize_with = "super::body::opt_int")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "super::body::opt_int")]
    pub offset: Option<i64>,
    pub sort_by: Option<Vec<SortBy>>,
    /// A query expression (`{"$expr": ...}`), see [`super::query`].
    pub query: Option<Value>,
    /// Each call's feedback rows in `summary.weave.feedback`.
    pub include_feedback: Option<bool>,
    /// Each call's `summary.usage` priced in `summary.weave.costs` (see [`super::costs`]).
    pub include_costs: Option<bool>,
    /// Output only: storage sizes (answered as `null`).
    pub include_storage_size: Option<OutputOnly>,
    /// Output only: a trace's storage size (answered as `null`).
    pub include_total_storage_size: Option<OutputOnly>,
    /// Output only: user names (weft answers ids).
    pub include_usernames: Option<OutputOnly>,
    /// Output only: which columns to answer (weft answers all).
    pub columns: Option<OutputOnly>,
    /// Output only: refs to expand in the answer (weft answers them unexpanded; clients read
    /// them with `refs/read_batch`).
    pub expand_columns: Option<OutputOnly>,
    /// Output only: with `expand_columns`.
    pub return_expanded_column_values: Option<OutputOnly>,
    /// Output only: weft keeps one row per call, what `latest_only` asks for.
    pub latest_only: Option<OutputOnly>,
}

/// The most refs a calls filter may name (Weave's bound on its filter lists).
const MAX_REFS: usize = 1000;

impl CallsQueryReq {
    /// The store query this request asks for; negative windows are 422s, an order weft
    /// cannot follow a 400.
    pub fn query(&self) -> Result<CallQuery> {
        let f = self.filter.clone().unwrap_or_default();
        if let Some(ops) = &f.op_names
            && ops.len() > MAX_OP_NAMES
        {
            return Err(Error::TooLarge(format!("Too many op_names: at most {MAX_OP_NAMES} allowed")));
        }
        for (name, refs) in [("input_refs", &f.input_refs), ("output_refs", &f.output_refs)] {
            if refs.as_ref().is_some_and(|r| r.len() > MAX_REFS) {
                return Err(Error::TooLarge(format!("Too many {name}: at most {MAX_REFS} allowed")));
            }
        }
        let mut sort = Vec::new();
        for s in self.sort_by.iter().flatten() {
            sort.push(Sort { field: SortField::parse(&s.field)?, descending: s.descending()? });
        }
        // Ties end on the id as Weave's servers end them: in the direction of a last key
        // `started_at`, else descending.
        if let Some(last) = sort.last()
            && !sort.iter().any(|s| s.field == SortField::Column("id"))
        {
            let descending = last.field != SortField::Column("started_at") || last.descending;
            sort.push(Sort { field: SortField::Column("id"), descending });
        }
        Ok(CallQuery {
            call_ids: f.call_ids.unwrap_or_default(),
            trace_ids: f.trace_ids.unwrap_or_default(),
            parent_ids: f.parent_ids.unwrap_or_default(),
            op_names: f.op_names.unwrap_or_default(),
            wb_user_ids: f.wb_user_ids.unwrap_or_default(),
            thread_ids: f.thread_ids.unwrap_or_default(),
            turn_ids: f.turn_ids.unwrap_or_default(),
            wb_run_ids: f.wb_run_ids.unwrap_or_default(),
            input_refs: f.input_refs.unwrap_or_default(),
            output_refs: f.output_refs.unwrap_or_default(),
            trace_roots_only: f.trace_roots_only.unwrap_or(false),
            sort,
            page: super::page::Page::from_body(self.limit, self.offset)?,
        })
    }
}

/// Whether `value` holds one of `refs` as Weave finds refs in a call's inputs or output: a
/// string anywhere inside it (in objects' values and lists, not keys) that is a ref, equal
/// to one of `refs` or, for one ending in `:*`, starting with its name and `:`.
pub fn holds_ref(value: &Value, refs: &[String]) -> bool {
    match value {
        Value::String(s) => {
            s.starts_with("weave:///")
                && super::refs::Ref::parse(s).is_ok()
                && refs.iter().any(|r| match r.strip_suffix(":*") {
                    Some(name) => s.strip_prefix(name).is_some_and(|rest| rest.starts_with(':')),
                    None => s == r,
                })
        }
        Value::Array(items) => items.iter().any(|v| holds_ref(v, refs)),
        Value::Object(m) => m.values().any(|v| holds_ref(v, refs)),
        _ => false,
    }
}

/// The text a store searches a call's JSON for, for a ref filter: the ref as a JSON string
/// (`"weave:///...`), closed by its quote unless the ref ends in `:*` (then its name and `:`).
pub fn ref_needle(r: &str) -> String {
    let (text, open) = match r.strip_suffix(":*") {
        Some(name) => (format!("{name}:"), true),
        None => (r.to_string(), false),
    };
    let mut quoted = serde_json::to_string(&text).unwrap_or_default();
    if open {
        quoted.pop();
    }
    quoted
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
        "thread_id": c.thread_id,
        "turn_id": c.turn_id,
        "started_at": format_time(c.started_at),
        "attributes": c.attributes,
        "inputs": c.inputs,
        "ended_at": c.ended_at.map(format_time),
        "exception": c.exception,
        "output": c.output,
        "summary": summary,
        "wb_user_id": c.wb_user_id,
        "wb_run_id": c.wb_run_id,
        "wb_run_step": c.wb_run_step,
        "wb_run_step_end": c.wb_run_step_end,
        "deleted_at": null,
        "storage_size_bytes": null,
        "total_storage_size_bytes": null,
    })
}

#[cfg(test)]
mod tests {
    use super::SortBy;

    #[test]
    fn a_direction_is_asc_or_desc_in_any_case() {
        let by = |d: Option<&str>| SortBy { field: "started_at".into(), direction: d.map(String::from) };
        assert!(!by(None).descending().unwrap());
        assert!(!by(Some("ASC")).descending().unwrap());
        assert!(by(Some("Desc")).descending().unwrap());
        let e = by(Some("up")).descending().unwrap_err().to_string();
        assert!(e.contains("\"up\"") && e.contains("started_at"), "{e}");
    }
}
