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

/// Result type of the domain and the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
