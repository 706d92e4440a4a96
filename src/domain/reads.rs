//! Reads filtered by a query expression the store cannot run: calls and feedback rows are
//! streamed from the store, tested against the expression here, and only then windowed, so
//! that `limit` and `offset` count the rows that match.

use serde_json::Value;

use super::error::Result;
use super::page::{Page, Window};
use super::query::Expr;
use super::store::Store;
use super::trace::{CallsQueryReq, call_json};

/// Passes the rows `read` streams through `expr` (if any) and then `window`, to `emit`; the
/// store's stream stops once the window is full, `emit` returns `false`, or the expression
/// fails on a row (that error is returned).
fn filtered<T>(
    read: impl FnOnce(&mut dyn FnMut(T) -> bool) -> Result<()>,
    to_json: impl Fn(T) -> Value,
    expr: Option<&Expr>,
    page: Page,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    let mut window = Window::new(page);
    let mut failure = None;
    read(&mut |item| {
        if window.full() {
            return false;
        }
        let row = to_json(item);
        match expr.map_or(Ok(true), |e| e.matches(&row)) {
            Err(e) => {
                failure = Some(e);
                false
            }
            Ok(false) => true,
            Ok(true) => !window.admit() || (emit(row) && !window.full()),
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// Streams the calls `req` asks for as `CallSchema` JSON, in order, to `emit`. Without an
/// expression the window goes to the store; with one, it applies to the calls that match.
pub fn calls(
    s: &dyn Store,
    req: &CallsQueryReq,
    expr: Option<&Expr>,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    let mut q = req.query()?;
    let Some(expr) = expr else {
        return s.calls(&req.project_id, &q, &mut |c| emit(call_json(&c)));
    };
    let page = std::mem::take(&mut q.page);
    filtered(|sink| s.calls(&req.project_id, &q, sink), |c| call_json(&c), Some(expr), page, emit)
}

/// Streams a project's feedback rows that match `expr`, oldest first, windowed by `page`.
pub fn feedback(
    s: &dyn Store,
    project: &str,
    expr: Option<&Expr>,
    page: Page,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<()> {
    filtered(|sink| s.feedback(project, sink), |f| f.to_json(), expr, page, emit)
}
