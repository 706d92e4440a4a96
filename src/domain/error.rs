//! Typed errors of the domain and the store; the HTTP layer maps them to status codes in one place.

use serde_json::Value;

/// One validation problem, shaped like a pydantic / FastAPI error entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Error type, e.g. `missing`, `int_parsing`, `string_type`.
    pub kind: &'static str,
    /// Location: `["query", "limit"]`, `["body", "evaluation"]`, ...
    pub loc: Vec<Value>,
    /// Human-readable message.
    pub msg: String,
    /// The offending input.
    pub input: Value,
    /// Extra context (e.g. `{"ge": 0}`), if any.
    pub ctx: Option<Value>,
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Input failed validation (422).
    #[error("validation failed")]
    Validation(Vec<Issue>),
    /// Input the validator accepts but the domain rejects, e.g. a malformed ref (400).
    #[error("{0}")]
    BadRequest(String),
    /// The named thing does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored, e.g. a digest mismatch (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is too large: body size or number of ids (413).
    #[error("{0}")]
    TooLarge(String),
    /// The request body did not arrive in time (408).
    #[error("{0}")]
    Timeout(String),
    /// Too many requests at once, or too many failed attempts (429).
    #[error("{0}")]
    TooMany(String),
    /// The request body is of a media type the endpoint does not take (415).
    #[error("{0}")]
    UnsupportedMedia(String),
    /// The server is too busy to serve the request now, e.g. no read connection was freed
    /// in time; the client may retry (503).
    #[error("{0}")]
    Unavailable(String),
    /// The storage failed; details are logged, not sent (500).
    #[error("storage error: {0}")]
    Storage(String),
    /// The storage has no space left or is read-only (507).
    #[error("storage unavailable: {0}")]
    StorageFull(String),
}

impl Error {
    /// A validation error with a single issue.
    pub fn invalid(issue: Issue) -> Self {
        Error::Validation(vec![issue])
    }
}

/// Most characters of an error's detail written to the log.
pub const LOGGED_DETAIL_CHARS: usize = 500;

/// An error's detail as logged: its first [`LOGGED_DETAIL_CHARS`] characters, then how long it
/// was, so that a failed statement spelt out in the error (or a huge value in it) never makes
/// a log line of its size.
pub fn bounded(detail: &str) -> std::borrow::Cow<'_, str> {
    match detail.char_indices().nth(LOGGED_DETAIL_CHARS) {
        None => std::borrow::Cow::Borrowed(detail),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}… ({} bytes)", &detail[..cut], detail.len())),
    }
}

/// Result type of the domain and the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_details_are_bounded() {
        assert_eq!(bounded("short"), "short");
        let exact = "é".repeat(LOGGED_DETAIL_CHARS);
        assert_eq!(bounded(&exact), exact);
        let long = format!("near \"{}\": syntax error", "?,".repeat(100_000));
        let shown = bounded(&long);
        assert!(shown.chars().count() < LOGGED_DETAIL_CHARS + 30, "{}", shown.len());
        assert!(shown.starts_with("near \"?,?,") && shown.ends_with(&format!("… ({} bytes)", long.len())));
        let wide = "€".repeat(1000);
        assert!(bounded(&wide).starts_with(&"€".repeat(LOGGED_DETAIL_CHARS)));
    }
}
