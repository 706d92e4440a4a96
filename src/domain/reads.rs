//! Reads filtered by a query expression the store cannot run: calls and feedback rows are
//! streamed from the store, tested against the expression here, and only then windowed, so
//! that `limit` and `offset` count the rows that match.

use std::collections::HashMap;

use serde_json::Value;

use super::call::Call;
use super::costs::{Prices, output_row};
use super::row_query::{RowSort, compare, select};

use super::call_query::{CallsQueryReq, call_json, holds_ref};
use super::error::Result;
use super::page::{Page, Window};
use super::query::Expr;
use super::store::Store;

/// Passes the rows `read` streams through `keep` and then `window`, to `emit` as `to_json`
/// writes them; the store's stream stops once the window is full, `emit` returns `false`, or
/// `keep` fails on a row (that error is returned).
fn filtered<T, R>(
    read: impl FnOnce(&mut dyn FnMut(T) -> bool) -> Result<()>,
    to_row: impl Fn(T) -> R,
    keep: impl Fn(&R) -> Result<bool>,
    to_json: impl Fn(R) -> Value,
    page: Page,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    let mut window = Window::new(page);
    let mut failure = None;
    read(&mut |item| {
        if window.full() {
            return false;
        }
        let row = to_row(item);
        match keep(&row) {
            Err(e) => {
                failure = Some(e);
                false
            }
            Ok(false) => true,
            Ok(true) => !window.admit() || (emit(to_json(row)) && !window.full()),
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// The feedback rows on calls of `project`, by call id, oldest first: what
/// `summary.weave.feedback` holds. Read whole (the project's call feedback, not its calls)
/// before the calls are streamed. A row holds the fields Weave asks its feedback query for:
/// every column but `project_id`.
fn call_feedback(s: &dyn Store, project: &str) -> Result<HashMap<String, Vec<Value>>> {
    let prefix = format!("weave:///{project}/call/");
    let mut by_call: HashMap<String, Vec<Value>> = HashMap::new();
    s.feedback(project, &mut |f| {
        if let Some(id) = f.weave_ref.strip_prefix(&prefix) {
            let mut row = f.to_json();
            if let Some(o) = row.as_object_mut() {
                o.remove("project_id");
            }
            by_call.entry(id.to_string()).or_default().push(row);
        }
        true
    })?;
    Ok(by_call)
}

/// Streams the calls `req` asks for as `CallSchema` JSON, in order, to `emit`. Without an
/// expression or a ref filter the window goes to the store; with one, it applies to the calls
/// that match.
pub fn calls(
    s: &dyn Store,
    req: &CallsQueryReq,
    expr: Option<&Expr>,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    let mut q = req.query()?;
    let prices =
        if req.include_costs == Some(true) { Some(project_prices(s, &req.project_id)?) } else { None };
    let include = req.include_feedback == Some(true);
    let feedback = if include || expr.is_some_and(Expr::uses_feedback) {
        Some(call_feedback(s, &req.project_id)?)
    } else {
        None
    };
    let to_json = |c: Call| {
        let mut row = call_json(&c);
        if let Some(prices) = &prices {
            add_costs(&mut row, prices, c.started_at);
        }
        if let Some(by_call) = &feedback {
            let rows = by_call.get(&c.id).cloned().unwrap_or_default();
            row["summary"]["weave"]["feedback"] = Value::Array(rows);
        }
        (c, row)
    };
    let (input_refs, output_refs) = (q.input_refs.clone(), q.output_refs.clone());
    let narrowed = expr.is_some() || !input_refs.is_empty() || !output_refs.is_empty();
    if !narrowed {
        return s.calls(&req.project_id, &q, &mut |c| emit(to_json(c).1));
    }
    let keep = |(c, row): &(Call, Value)| -> Result<bool> {
        if !input_refs.is_empty() && !holds_ref(&c.inputs, &input_refs) {
            return Ok(false);
        }
        if !output_refs.is_empty() && !c.output.as_ref().is_some_and(|o| holds_ref(o, &output_refs)) {
            return Ok(false);
        }
        expr.map_or(Ok(true), |e| e.matches(row))
    };
    let page = std::mem::take(&mut q.page);
    filtered(
        |sink| s.calls(&req.project_id, &q, sink),
        to_json,
        keep,
        |(_, mut row)| {
            if !include && let Some(w) = row["summary"]["weave"].as_object_mut() {
                w.remove("feedback");
            }
            row
        },
        page,
        emit,
    )
}

/// The LLM token prices of `project`, to price calls with.
pub fn project_prices(s: &dyn Store, project: &str) -> Result<Prices> {
    let mut prices = Prices::default();
    s.costs(project, &mut |p| {
        prices.add(p);
        true
    })?;
    Ok(prices)
}

/// Prices a call's `summary.usage` into `summary.weave.costs` (nothing if no model of it has
/// a price).
pub fn add_costs(row: &mut Value, prices: &Prices, started_at: super::call::Micros) {
    if let Some(costs) = prices.costs(&row["summary"]["usage"], started_at)
        && let Some(weave) = row["summary"]["weave"].as_object_mut()
    {
        weave.insert("costs".into(), costs);
    }
}

/// `fields`, `sort_by` and the window of a table query (`feedback/query`, `cost/query`).
#[derive(Debug, Clone, Default)]
pub struct RowShape {
    /// Only these fields (`None`: every column).
    pub fields: Option<Vec<String>>,
    /// The order; empty keeps the store's (oldest first).
    pub sort: Vec<RowSort>,
    pub page: Page,
}

impl RowShape {
    /// The shape a row query asks for of a table with `columns`: its `fields`, `sort_by` and
    /// window, each checked (400 naming a field or key the table lacks, 422 for a bad window).
    pub fn of(
        columns: &super::row_query::Columns,
        fields: Option<&[String]>,
        sort_by: Option<&[super::call_query::SortBy]>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<RowShape> {
        Ok(RowShape {
            fields: columns.fields(fields)?,
            sort: columns.sort(sort_by)?,
            page: Page::from_body(limit, offset)?,
        })
    }
}

/// Passes the rows `read` streams that match `expr` to `emit` in `shape`'s order and window,
/// as `output` writes them. Unordered, they stream; ordered, the matching rows are held (a
/// project's feedback or prices) and sorted first.
fn shaped(
    read: impl FnOnce(&mut dyn FnMut(Value) -> bool) -> Result<()>,
    expr: Option<&Expr>,
    shape: &RowShape,
    output: impl Fn(Value) -> Value,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    let keep = |row: &Value| expr.map_or(Ok(true), |e| e.matches(row));
    if shape.sort.is_empty() {
        return filtered(read, |row| row, keep, output, shape.page, emit);
    }
    let mut rows = Vec::new();
    let mut failure = None;
    read(&mut |row| match keep(&row) {
        Ok(true) => {
            rows.push(row);
            true
        }
        Ok(false) => true,
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    rows.sort_by(|a, b| compare(a, b, &shape.sort));
    let mut window = Window::new(shape.page);
    for row in rows {
        if window.full() {
            break;
        }
        if window.admit() && !emit(output(row)) {
            break;
        }
    }
    Ok(())
}

/// Streams a project's feedback rows that match `expr`, in `shape`'s order (oldest first
/// unless it sorts), fields and window.
pub fn feedback(
    s: &dyn Store,
    project: &str,
    expr: Option<&Expr>,
    shape: &RowShape,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    shaped(
        |sink| s.feedback(project, &mut |f| sink(f.to_json())),
        expr,
        shape,
        |row| select(row, shape.fields.as_deref()),
        emit,
    )
}

/// Streams a project's LLM token prices that match `expr` as `cost/query` answers them, in
/// `shape`'s order (oldest first unless it sorts), fields and window.
pub fn costs(
    s: &dyn Store,
    project: &str,
    expr: Option<&Expr>,
    shape: &RowShape,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    shaped(
        |sink| s.costs(project, &mut |p| sink(p.to_json())),
        expr,
        shape,
        |row| output_row(&row, shape.fields.as_deref()),
        emit,
    )
}
