//! Reads filtered by a query expression the store cannot run: calls and feedback rows are
//! streamed from the store, tested against the expression here, and only then windowed, so
//! that `limit` and `offset` count the rows that match.

use std::collections::HashMap;

use serde_json::Value;

use super::call::Call;

use super::error::Result;
use super::page::{Page, Window};
use super::query::Expr;
use super::store::Store;
use super::trace::{CallsQueryReq, call_json, holds_ref};

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
/// before the calls are streamed.
fn call_feedback(s: &dyn Store, project: &str) -> Result<HashMap<String, Vec<Value>>> {
    let prefix = format!("weave:///{project}/call/");
    let mut by_call: HashMap<String, Vec<Value>> = HashMap::new();
    s.feedback(project, &mut |f| {
        if let Some(id) = f.weave_ref.strip_prefix(&prefix) {
            by_call.entry(id.to_string()).or_default().push(f.to_json());
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
    let include = req.include_feedback == Some(true);
    let feedback = if include || expr.is_some_and(Expr::uses_feedback) {
        Some(call_feedback(s, &req.project_id)?)
    } else {
        None
    };
    let to_json = |c: Call| {
        let mut row = call_json(&c);
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

/// Streams a project's feedback rows that match `expr`, oldest first, windowed by `page`.
pub fn feedback(
    s: &dyn Store,
    project: &str,
    expr: Option<&Expr>,
    page: Page,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    filtered(
        |sink| s.feedback(project, sink),
        |f| f.to_json(),
        |row: &Value| expr.map_or(Ok(true), |e| e.matches(row)),
        |row| row,
        page,
        emit,
    )
}
