//! Streaming JSONL responses: a blocking task reads rows from the store and sends them in
//! chunks through a bounded channel, so memory stays flat however many rows match.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::domain::error::{Error, Result};
use crate::store::Store;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 32 * 1024;
/// Chunks in flight between the store and the socket.
const IN_FLIGHT: usize = 4;

/// Emits one row: given a writer of the row's JSON (without newline), returns `false` once
/// the client is gone.
pub type Emit<'a> = dyn FnMut(&dyn Fn(&mut Vec<u8>)) -> bool + 'a;

/// Streams the rows that `produce` emits as `application/jsonl`. `produce` runs on a blocking
/// thread and calls its sink once per row; the sink returns `false` once the client is gone.
/// An error before the first row becomes an error response; a later one aborts the body.
pub async fn jsonl<F>(store: Arc<dyn Store>, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Store, &mut Emit<'_>) -> Result<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Result<Bytes>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(CHUNK + 1024);
        let mut sent_first = false;
        let mut open = true;
        let result = produce(store.as_ref(), &mut |write_row| {
            write_row(&mut buf);
            buf.push(b'\n');
            // The first row goes out at once (time to first byte); later rows in chunks.
            if !sent_first || buf.len() >= CHUNK {
                sent_first = true;
                let chunk = Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 1024)));
                open = tx.blocking_send(Ok(chunk)).is_ok();
            }
            open
        });
        let last = match result {
            Ok(()) if buf.is_empty() => return,
            Ok(()) => Ok(Bytes::from(buf)),
            Err(e) => Err(e),
        };
        let _ = tx.blocking_send(last);
    });

    let first = match rx.recv().await {
        Some(Err(e)) => return Err(e.into()),
        other => other,
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map_err(|e: Error| std::io::Error::other(e.to_string())), rx))
    });
    let head = futures_util::stream::iter(first.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))));
    let body = Body::from_stream(futures_util::StreamExt::chain(head, rest));
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    Ok(response)
}
