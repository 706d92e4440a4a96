//! Streaming JSONL responses: a blocking task reads rows from the store and sends them in
//! chunks through a bounded channel, so memory stays flat however many rows match. A result
//! that fits in one chunk goes out as one plain body.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::domain::error::{Error, Result, bounded};
use crate::store::Store;

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

/// What the producing task sends.
enum Piece {
    /// Rows, with more to come.
    More(Bytes),
    /// The last rows (possibly none).
    Last(Bytes),
    /// The store failed.
    Failed(Error),
}

/// Streams the rows that `produce` emits as `application/jsonl`. `produce` runs on a blocking
/// thread and calls its sink once per row; the sink returns `false` once the client is gone,
/// or has not taken a chunk for `stall` (so a reader that stalls cannot hold a database
/// snapshot open). An error before the first chunk becomes an error response; a later one,
/// or a stall, aborts the body, so that a cut-off stream never looks complete.
pub async fn jsonl<F>(store: Arc<dyn Store>, stall: Duration, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let send = |piece| runtime.block_on(tx.send_timeout(piece, stall)).is_ok();
        let mut buf = chunk_buffer();
        let mut open = true;
        let result = produce(store.as_ref(), &mut |write_row| {
            write_row(&mut buf);
            buf.push(b'\n');
            if buf.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::replace(&mut buf, chunk_buffer()));
                open = send(Piece::More(chunk));
            }
            open
        });
        send(match result {
            Ok(()) => Piece::Last(Bytes::from(buf)),
            Err(e) => Piece::Failed(e),
        });
    });

    let mut response = match rx.recv().await {
        Some(Piece::Failed(e)) => return Err(e.into()),
        Some(Piece::Last(all)) => return Ok(jsonl_body(all)),
        None => return Ok(jsonl_body(Body::empty())),
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
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    Ok(response)
}
