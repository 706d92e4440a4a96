//! Windows over ordered results (`limit` / `offset`).

/// A window over an ordered result: skip `offset` rows, then return at most `limit` (all if `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Most rows to return; `None` for all.
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: u64,
}
