//! Streaming JSONL responses: a blocking task reads rows from the store and sends them in
//! chunks through a bounded channel, so memory stays flat however many rows match. A result
//! that fits in one chunk goes out as one plain body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::AppState;
use super::auth::Principal;
use super::error::ApiError;
use crate::domain::error::{Error, Result, bounded};
use crate::domain::store::Store;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the store and the socket.
const IN_FLIGHT: usize = 4;
/// Emits one row: given a writer of the row's JSON (without newline), returns `false` once
/// the client is gone.
pub type Emit<'a> = dyn FnMut(&dyn Fn(&mut Vec<u8>)) -> bool + 'a;

/// An empty buffer for the next chunk, with room for the row that takes it past [`CHUNK`].
fn chunk_buffer() -> Vec<u8> {
    Vec::with_capacity(CHUNK + CHUNK / 4)
}

/// A whole JSONL result as one plain body.
pub fn jsonl_body(rows: impl IntoResponse) -> Response {
    let mut response = rows.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    response
}

/// Streams one API key may have open at once by default.
pub const MAX_STREAMS_PER_KEY: usize = 16;
/// How long a stream over its key's cap waits for one of the key's streams to end before
/// it is refused with 429.
const STREAM_WAIT: Duration = Duration::from_secs(1);

/// Streams open per API key. A stream holds a database read connection (and its snapshot)
/// until its client has taken it all, so one key's unread streams could otherwise take every
/// connection and stall every other key; past its cap, a key's new streams get 429.
pub struct KeyStreams {
    cap: usize,
    per_key: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl KeyStreams {
    /// At most `cap` (at least 1) streams per key.
    pub fn new(cap: usize) -> Self {
        KeyStreams { cap: cap.max(1), per_key: Mutex::default() }
    }

    /// A place for one more stream of `key_id`, held until the stream's reads end.
    async fn enter(&self, key_id: &str) -> Result<OwnedSemaphorePermit> {
        let slots = {
            let mut map = self.per_key.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key_id) {
                Some(slots) => slots.clone(),
                None => map
                    .entry(key_id.to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.cap)))
                    .clone(),
            }
        };
        // Most streams find a place at once, without arming a timer.
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(STREAM_WAIT, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Error::TooMany(format!(
                "Too many streams open with this API key (at most {}); finish reading one, then retry",
                self.cap
            ))),
        }
    }
}

/// What the producing task sends.
enum Piece {
    /// Rows, with more to come.
    More(Bytes),
    /// The last rows (possibly none).
    Last(Bytes),
    /// The store failed.
    Failed(Error),
}

/// How rows are framed in a streamed body.
struct Framing {
    /// Written before the first row.
    head: Vec<u8>,
    /// Written between two rows (one byte: pushed, not copied, on every row).
    between: Option<u8>,
    /// Written after each row.
    after: Option<u8>,
    /// Written after the last row.
    tail: &'static [u8],
    content_type: &'static str,
}

/// Streams the rows that `produce` emits as `application/jsonl`. `produce` runs on a blocking
/// thread and calls its sink once per row; the sink returns `false` once the client is gone,
/// or has not taken a chunk for `stall` (so a reader that stalls cannot hold a database
/// snapshot open). An error before the first chunk becomes an error response; a later one,
/// or a stall, aborts the body, so that a cut-off stream never looks complete.
///
/// Each key may have [`KeyStreams`]' cap of streams producing at once (429 past it).
pub async fn jsonl<F>(state: &AppState, who: &Principal, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<()> + Send + 'static,
{
    let framing = Framing {
        head: Vec::new(),
        between: None,
        after: Some(b'\n'),
        tail: b"",
        content_type: "application/jsonl",
    };
    stream_rows(state, who, framing, move |s, emit| produce(s, emit).map(|()| Vec::new())).await
}

/// Streams the rows that `produce` emits as one JSON object `{"<field>": [rows...], ...}`,
/// the object's other members (`,"name":value...}` as JSON text) being what `produce`
/// returns once the rows are sent: what is known only after the rows are counted, or known
/// before and kept small, follows them.
pub async fn json_list_then<F>(
    state: &AppState,
    who: &Principal,
    field: &str,
    produce: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<Vec<u8>> + Send + 'static,
{
    let mut head = serde_json::to_vec(&serde_json::json!({ field: [] })).unwrap_or_default();
    head.truncate(head.len().saturating_sub(2));
    let framing =
        Framing { head, between: Some(b','), after: None, tail: b"]", content_type: "application/json" };
    stream_rows(state, who, framing, produce).await
}

/// Streams the rows that `produce` emits as one JSON object `{"<field>": [rows...]}`, as
/// [`jsonl`] streams lines: however many rows there are, memory holds a few chunks of them.
pub async fn json_list<F>(
    state: &AppState,
    who: &Principal,
    field: &str,
    produce: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<()> + Send + 'static,
{
    json_list_then(state, who, field, move |s, emit| produce(s, emit).map(|()| b"}".to_vec())).await
}

async fn stream_rows<F>(
    state: &AppState,
    who: &Principal,
    framing: Framing,
    produce: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<Vec<u8>> + Send + 'static,
{
    let slot = state.streams.enter(who.user_id()).await?;
    let (store, stall) = (state.store.clone(), state.deadlines.stall);
    let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    let Framing { head, between, after, tail, content_type } = framing;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let send = |piece| runtime.block_on(tx.send_timeout(piece, stall)).is_ok();
        let mut buf = chunk_buffer();
        buf.extend_from_slice(&head);
        let (mut open, mut first) = (true, true);
        let result = produce(store.as_ref(), &mut |write_row| {
            if let Some(b) = between.filter(|_| !first) {
                buf.push(b);
            }
            first = false;
            write_row(&mut buf);
            if let Some(b) = after {
                buf.push(b);
            }
            if buf.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::replace(&mut buf, chunk_buffer()));
                open = send(Piece::More(chunk));
            }
            open
        });
        send(match result {
            Ok(rest) => {
                buf.extend_from_slice(tail);
                buf.extend_from_slice(&rest);
                Piece::Last(Bytes::from(buf))
            }
            Err(e) => Piece::Failed(e),
        });
    });

    let mut response = match rx.recv().await {
        Some(Piece::Failed(e)) => return Err(e.into()),
        Some(Piece::Last(all)) => all.into_response(),
        None => return Err(Error::Storage("the stream's producer ended without an answer".into()).into()),
        Some(Piece::More(first)) => {
            // The producer gone without its last piece means the stream was cut off.
            let rest = futures_util::stream::unfold(Some(rx), |rx| async move {
                let mut rx = rx?;
                match rx.recv().await {
                    Some(Piece::More(b)) => Some((Ok(b), Some(rx))),
                    Some(Piece::Last(b)) => Some((Ok(b), None)),
                    Some(Piece::Failed(e)) => {
                        Some((Err(std::io::Error::other(bounded(&e.to_string()).into_owned())), None))
                    }
                    None => Some((Err(std::io::Error::other("the stream was cut off")), None)),
                }
            });
            let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) });
            Body::from_stream(futures_util::StreamExt::chain(head, rest)).into_response()
        }
    };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
