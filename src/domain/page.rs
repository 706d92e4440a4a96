//! Windows over ordered results (`limit` / `offset`), and the one rule for reading them from a
//! request: both must be integers of at least 0 (a 422 naming the field otherwise), a limit too
//! large for the store means "all rows". The v2 API takes them from the query string, the v1
//! API from the JSON body; the rule is the same, only the error's location differs.

use serde_json::json;

use super::error::{Error, Issue, Result};
use super::validate::Query;

/// A window over an ordered result: skip `offset` rows, then return at most `limit` (all if `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Most rows to return; `None` for all.
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: u64,
}

impl Page {
    /// The window of a v2 list request (`?limit=&offset=`), every bad value reported at once.
    pub fn from_query(q: &Query) -> Result<Page> {
        both(q.opt_count("limit"), q.opt_count("offset"))
    }

    /// The window of a v1 request body (`"limit"`, `"offset"`).
    pub fn from_body(limit: Option<i64>, offset: Option<i64>) -> Result<Page> {
        both(body_count("limit", limit), body_count("offset", offset))
    }
}

fn both(limit: Result<Option<u64>>, offset: Result<Option<u64>>) -> Result<Page> {
    match (limit, offset) {
        (Ok(limit), Ok(offset)) => Ok(Page { limit, offset: offset.unwrap_or(0) }),
        (Err(Error::Validation(mut a)), Err(Error::Validation(b))) => {
            a.extend(b);
            Err(Error::Validation(a))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

fn body_count(name: &str, v: Option<i64>) -> Result<Option<u64>> {
    match v {
        Some(n) if n < 0 => Err(Error::invalid(Issue {
            kind: "greater_than_equal",
            loc: vec![json!("body"), json!(name)],
            msg: "Input should be greater than or equal to 0".into(),
            input: json!(n),
            ctx: Some(json!({"ge": 0})),
        })),
        other => Ok(other.map(|n| n as u64)),
    }
}

/// Applies a window to rows that are filtered after they are read (by a query expression the
/// store cannot run): skips the first `offset` rows that match, then lets `limit` through.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    page: Page,
    skipped: u64,
    sent: u64,
}

impl Window {
    /// The window `page` over the matching rows.
    pub fn new(page: Page) -> Self {
        Window { page, skipped: 0, sent: 0 }
    }

    /// Whether the window has all its rows: no more are wanted.
    pub fn full(&self) -> bool {
        self.page.limit.is_some_and(|l| self.sent >= l)
    }

    /// Counts a matching row; `true` if it falls inside the window (and is to be sent).
    pub fn admit(&mut self) -> bool {
        if self.full() {
            return false;
        }
        if self.skipped < self.page.offset {
            self.skipped += 1;
            return false;
        }
        self.sent += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_skips_then_takes() {
        let mut w = Window::new(Page { limit: Some(2), offset: 1 });
        let taken: Vec<bool> = (0..5).map(|_| w.admit()).collect();
        assert_eq!(taken, [false, true, true, false, false]);
        assert!(w.full());
        let mut all = Window::new(Page::default());
        assert!((0..3).all(|_| all.admit()) && !all.full());
    }

    #[test]
    fn negative_body_counts_are_422s_naming_each_field() {
        assert_eq!(Page::from_body(Some(3), None).unwrap(), Page { limit: Some(3), offset: 0 });
        let Err(Error::Validation(issues)) = Page::from_body(Some(-1), Some(-2)) else {
            panic!("negative counts accepted")
        };
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[1].loc, [json!("body"), json!("offset")]);
    }
}
