//! The rows of the SQLite store as the domain's values: column lists, row readers, and the
//! arguments statements bind; what both reads and writes use.

use std::rc::Rc;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OptionalExtension, Params, Row, Rows, ToSql, params};
use serde_json::Value;

use super::ids::{self, Id, StoredId};
use super::interned::Project;
use super::storage;
use crate::domain::call::{Call, CallText};
use crate::domain::costs::LlmPrice;
use crate::domain::error::Result;
use crate::domain::feedback::Feedback;
use crate::domain::object::ObjectVersion;
use crate::domain::page::Page;
use crate::domain::view::{Kind, ViewColumns};
use crate::store::json_from_text;

/// A value's JSON text, written straight into a byte buffer (`Display` goes through a
/// formatter, a call per token).
pub(super) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// The code the calls table's `kind` holds for a kind of call: 1 a run, 2 a prediction, 3 a
/// score, none (NULL) for any other. Statements name the codes as literals: only a literal
/// lets the planner pick a partial index whose condition names one.
pub(super) fn kind_code(kind: Kind) -> Option<i64> {
    match kind {
        Kind::EvaluationRun => Some(1),
        Kind::Prediction => Some(2),
        Kind::Score => Some(3),
        Kind::Other => None,
    }
}

/// The model a call's row keeps: a run's. No statement reads the model of a prediction or
/// a score (their lists read their run's), so theirs is not stored.
pub(super) fn stored_model(v: &ViewColumns) -> Option<&str> {
    if matches!(v.kind, Kind::Prediction | Kind::Score) { None } else { v.model.as_deref() }
}

/// The columns of a [`Call`]; the packed ones read through `weft_unpack` (see `packed`), the
/// ids through `ids`, the project's name, op name and user id from their keys (see
/// `interned`).
pub(super) const CALL_COLUMNS: &str = "(SELECT p.name FROM projects p WHERE p.id = project_id), id, trace_id, parent_id, weft_name(op_name), display_name, started_at, \
     ended_at, exception, weft_unpack(attributes), weft_unpack(inputs), output, summary, weft_name(wb_user_id), thread_id, turn_id, wb_run_id, \
     wb_run_step, wb_run_step_end";

pub(super) fn call_from_row(r: &Row<'_>) -> rusqlite::Result<Call> {
    let json = |i: usize| -> rusqlite::Result<Option<Value>> {
        Ok(r.get_ref(i)?.as_str_or_null()?.map(json_from_text))
    };
    Ok(Call {
        project_id: r.get(0)?,
        id: r.get::<_, StoredId>(1)?.0,
        trace_id: r.get::<_, StoredId>(2)?.0,
        parent_id: r.get::<_, Option<StoredId>>(3)?.map(|i| i.0),
        op_name: r.get(4)?,
        display_name: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        exception: r.get(8)?,
        attributes: json(9)?.unwrap_or(Value::Null),
        inputs: json(10)?.unwrap_or(Value::Null),
        output: json(11)?,
        summary: json(12)?,
        wb_user_id: r.get(13)?,
        thread_id: r.get(14)?,
        turn_id: r.get::<_, Option<StoredId>>(15)?.map(|i| i.0),
        wb_run_id: r.get(16)?,
        wb_run_step: r.get(17)?,
        wb_run_step_end: r.get(18)?,
    })
}

/// The columns of a [`CallText`].
pub(super) const CALL_TEXT_COLUMNS: &str = "id, parent_id, weft_name(op_name), started_at, ended_at, exception, weft_unpack(attributes), \
     weft_unpack(inputs), output";

/// Gives `sink` the [`CallText`] of a row of [`CALL_TEXT_COLUMNS`], borrowed from the row.
pub(super) fn with_call_text(
    r: &Row<'_>,
    sink: &mut dyn FnMut(&CallText<'_>) -> bool,
) -> rusqlite::Result<bool> {
    let text = |i: usize| -> rusqlite::Result<&str> { Ok(r.get_ref(i)?.as_str()?) };
    let opt = |i: usize| -> rusqlite::Result<Option<&str>> { Ok(r.get_ref(i)?.as_str_or_null()?) };
    let (mut id, mut parent_id) = ([0u8; 36], [0u8; 36]);
    Ok(sink(&CallText {
        id: ids::read_into(r.get_ref(0)?, &mut id)?,
        parent_id: ids::read_opt_into(r.get_ref(1)?, &mut parent_id)?,
        op_name: text(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        exception: opt(5)?,
        // A NULL JSON column reads as JSON null, as `call_from_row` reads it.
        attributes: opt(6)?.unwrap_or("null"),
        inputs: opt(7)?.unwrap_or("null"),
        output: opt(8)?,
    }))
}

/// The statement of [`read_call`].
pub(super) fn read_call_sql(project: Project<'_>) -> String {
    format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE project_id = {} AND id = ?2 AND deleted_at IS NULL",
        project.filter("?1")
    )
}

pub(super) fn read_call(conn: &Connection, project: Project<'_>, id: &str) -> Result<Option<Call>> {
    conn.prepare_cached(&read_call_sql(project))
        .map_err(storage)?
        .query_row(params![project, Id::new(id)], call_from_row)
        .optional()
        .map_err(storage)
}

/// Runs `each` on the rows of a query, in order, until it answers `false`.
pub(super) fn for_rows(
    mut rows: Rows<'_>,
    each: &mut dyn FnMut(&Row<'_>) -> rusqlite::Result<bool>,
) -> Result<()> {
    while let Some(r) = rows.next().map_err(storage)? {
        if !each(r).map_err(storage)? {
            break;
        }
    }
    Ok(())
}

/// The first column of a statement's rows, as texts.
pub(super) fn texts(conn: &Connection, sql: &str, params: impl Params) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
    let rows = stmt.query_map(params, |r| r.get(0)).map_err(storage)?;
    rows.collect::<rusqlite::Result<Vec<String>>>().map_err(storage)
}

pub(super) fn limit_offset(page: Page) -> (i64, i64) {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    (page.limit.map_or(-1, clamp), clamp(page.offset))
}

/// An argument of a statement: a text value, or a list bound as one value (read with
/// `rarray(?)`).
pub(super) enum Arg<'a> {
    Text(&'a str),
    /// A project, by key or by name (see `interned::Project`).
    Project(Project<'a>),
    Int(i64),
    /// A call id, encoded as stored (see `ids`).
    Id(Id<'a>),
    Ids(Rc<Vec<rusqlite::types::Value>>),
}

impl Arg<'_> {
    /// A list of texts, bound as one value for `rarray(?)`.
    pub(super) fn list<'v>(values: impl IntoIterator<Item = &'v str>) -> Self {
        Arg::Ids(Rc::new(values.into_iter().map(|v| v.to_string().into()).collect()))
    }

    /// A list of integers, bound as one value for `rarray(?)`.
    pub(super) fn ints(values: &[i64]) -> Self {
        Arg::Ids(Rc::new(values.iter().map(|&v| rusqlite::types::Value::Integer(v)).collect()))
    }

    /// A list of call ids, encoded as stored, bound as one value for `rarray(?)`.
    pub(super) fn id_list<'v>(values: impl IntoIterator<Item = &'v str>) -> Self {
        Arg::Ids(ids::list(values))
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Text(s) => s.to_sql(),
            Arg::Project(p) => p.to_sql(),
            Arg::Int(n) => n.to_sql(),
            Arg::Id(id) => id.to_sql(),
            Arg::Ids(ids) => ids.to_sql(),
        }
    }
}

/// The ordered row digests of a table, if it exists.
pub(super) fn table_digests(conn: &Connection, project: &str, digest: &str) -> Result<Option<Vec<String>>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT row_digests FROM tables WHERE project_id = ?1 AND digest = ?2")
        .map_err(storage)?
        .query_row(params![project, digest], |r| r.get(0))
        .optional()
        .map_err(storage)?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or_default()))
}

pub(super) const FEEDBACK_COLUMNS: &str = "project_id, id, weave_ref, feedback_type, payload, creator, created_at, \
     wb_user_id, annotation_ref, runnable_ref, call_ref, trigger_ref";

pub(super) fn feedback_from_row(r: &Row<'_>) -> rusqlite::Result<Feedback> {
    Ok(Feedback {
        project_id: r.get(0)?,
        id: r.get(1)?,
        weave_ref: r.get(2)?,
        feedback_type: r.get(3)?,
        payload: json_from_text(r.get_ref(4)?.as_str()?),
        creator: r.get(5)?,
        created_at: r.get(6)?,
        wb_user_id: r.get(7)?,
        annotation_ref: r.get(8)?,
        runnable_ref: r.get(9)?,
        call_ref: r.get(10)?,
        trigger_ref: r.get(11)?,
    })
}

pub(super) const PRICE_COLUMNS: &str = "project_id, id, llm_id, provider_id, effective_date, prompt_token_cost, \
     completion_token_cost, cache_read_input_token_cost, cache_creation_input_token_cost, \
     prompt_token_cost_unit, completion_token_cost_unit, created_by, created_at";

pub(super) fn price_from_row(r: &Row<'_>) -> rusqlite::Result<LlmPrice> {
    Ok(LlmPrice {
        project_id: r.get(0)?,
        id: r.get(1)?,
        llm_id: r.get(2)?,
        provider_id: r.get(3)?,
        effective_date: r.get(4)?,
        prompt_token_cost: r.get(5)?,
        completion_token_cost: r.get(6)?,
        cache_read_input_token_cost: r.get(7)?,
        cache_creation_input_token_cost: r.get(8)?,
        prompt_token_cost_unit: r.get(9)?,
        completion_token_cost_unit: r.get(10)?,
        created_by: r.get(11)?,
        created_at: r.get(12)?,
    })
}

pub(super) const OBJECT_COLUMNS: &str = "project_id, object_id, digest, version_index, kind, base_object_class, \
     leaf_object_class, val, created_at, wb_user_id";

pub(super) fn object_from_row(r: &Row<'_>) -> rusqlite::Result<ObjectVersion> {
    Ok(ObjectVersion {
        project_id: r.get(0)?,
        object_id: r.get(1)?,
        digest: r.get(2)?,
        version_index: r.get(3)?,
        kind: r.get(4)?,
        base_object_class: r.get(5)?,
        leaf_object_class: r.get(6)?,
        val: json_from_text(r.get_ref(7)?.as_str()?),
        created_at: r.get(8)?,
        wb_user_id: r.get(9)?,
    })
}

/// [`OBJECT_COLUMNS`], with `'{}'` read in place of each value when `metadata_only`.
pub(super) fn object_columns(metadata_only: bool) -> String {
    if metadata_only { OBJECT_COLUMNS.replacen(" val,", " '{}',", 1) } else { OBJECT_COLUMNS.to_string() }
}

/// The columns reading an object version's tags and aliases (of the row `o`) as JSON arrays.
pub(super) const LABEL_COLUMNS: &str = "(SELECT json_group_array(t.tag) FROM object_tags t \
     WHERE t.project_id = o.project_id AND t.object_id = o.object_id AND t.digest = o.digest), \
     (SELECT json_group_array(a.alias) FROM object_aliases a \
     WHERE a.project_id = o.project_id AND a.object_id = o.object_id AND a.digest = o.digest)";

/// A JSON array of strings as read from [`LABEL_COLUMNS`].
pub(super) fn string_list(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    let text: Option<String> = r.get(i)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

/// An object version and whether it is its object's latest live version.
pub(super) fn object_with_latest(r: &Row<'_>) -> rusqlite::Result<(ObjectVersion, bool)> {
    Ok((object_from_row(r)?, r.get(10)?))
}

pub(super) const IS_LATEST: &str = "version_index = (SELECT MAX(l.version_index) FROM objects l \
     WHERE l.project_id = o.project_id AND l.object_id = o.object_id AND l.deleted_at IS NULL)";
