//! Streaming JSONL responses: a blocking task reads rows from the store and sends them in
//! chunks through a bounded channel, so memory stays flat however many rows match. A result
//! that fits in one chunk goes out as one plain body.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::domain::error::{Error, Result};
use crate::store::Store;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the store and the socket.
const IN_FLIGHT: usize = 4;
/// Longest a stream waits for a client to take the next chunk before it gives up, so a
/// reader that stalls cannot hold a database snapshot open.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Emits one row: given a writer of the row's JSON (without newline), returns `false` once
/// the client is gone.
pub type Emit<'a> = dyn FnMut(&dyn Fn(&mut Vec<u8>)) -> bool + 'a;

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
/// thread and calls its sink once per row; the sink returns `false` once the client is gone.
/// An error before the first chunk becomes an error response; a later one aborts the body.
pub async fn jsonl<F>(store: Arc<dyn Store>, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let send = |piece| runtime.block_on(tx.send_timeout(piece, STALL)).is_ok();
        let mut buf = Vec::new();
        let mut open = true;
        let result = produce(store.as_ref(), &mut |write_row| {
            write_row(&mut buf);
            buf.push(b'\n');
            if buf.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + CHUNK / 4)));
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
        Some(Piece::Last(all)) => all.into_response(),
        None => Body::empty().into_response(),
        Some(Piece::More(first)) => {
            let rest = futures_util::stream::unfold(rx, |mut rx| async move {
                match rx.recv().await? {
                    Piece::More(b) => Some((Ok(b), rx)),
                    Piece::Last(b) => Some((Ok(b), rx)),
                    Piece::Failed(e) => Some((Err(std::io::Error::other(e.to_string())), rx)),
                }
            });
            let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) });
            Body::from_stream(futures_util::StreamExt::chain(head, rest)).into_response()
        }
    };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    Ok(response)
}
