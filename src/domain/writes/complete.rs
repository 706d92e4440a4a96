//! `calls/complete` batches: one job, one transaction, fed its calls a chunk at a time as they
//! are made, so that the one writer thread inserts while the request's thread still reads and
//! makes the rest.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use super::calls::{Completed, prefetch_by_project, prefetch_completed, prepare_complete, write_complete};
use crate::domain::body;
use crate::domain::error::{Error, Result};
use crate::domain::store::{self, ReadHint, Store};
use crate::domain::trace::{CallComplete, CompleteBody, CompleteCalls};

/// Calls of a `calls/complete` batch sent to its job at a time ([`complete_batch`]): the
/// writer inserts one chunk while the request's thread makes the next.
const FEED_CHUNK: usize = 64;

/// Longest the job of a fed batch waits for its next chunk of calls ([`feed_complete`]): past
/// it, the job fails and what it wrote is undone, rather than hold the one writer thread.
pub const FEED_WAIT: Duration = Duration::from_secs(5);

/// What the job of a fed batch receives.
enum Feed {
    Calls(Vec<Completed>),
    End,
}

/// The request's end of a job that writes completed calls as they are made
/// ([`feed_complete`]). Dropped before [`CompleteFeed::finish`], it fails the job, which
/// undoes everything it wrote.
pub struct CompleteFeed {
    calls: Option<mpsc::Sender<Feed>>,
    /// The chunks written, handed back to be freed off the writer thread.
    written: tokio::sync::mpsc::UnboundedReceiver<Vec<Completed>>,
}

impl CompleteFeed {
    /// Sends a chunk of calls to the job; `false` if it takes no more (it failed). Frees the
    /// chunks it has written meanwhile.
    pub fn send(&mut self, calls: Vec<Completed>) -> bool {
        while let Ok(written) = self.written.try_recv() {
            drop(written);
        }
        let sent = self.calls.as_ref().is_some_and(|tx| tx.send(Feed::Calls(calls)).is_ok());
        if !sent {
            self.calls = None;
        }
        sent
    }

    /// Stops the feed unfinished: the job fails, undoing what it wrote.
    fn stop(&mut self) {
        self.calls = None;
    }

    /// Ends the feed: the job commits what it was sent.
    pub fn finish(&mut self) {
        if let Some(tx) = self.calls.take() {
            let _ = tx.send(Feed::End);
        }
    }

    /// Frees the chunks written as the job hands them back, until it has run (finished or
    /// stopped, the job ends; unfinished, it fails within its wait): freeing them after the
    /// commit would delay the answer.
    pub async fn free_written(&mut self) {
        while let Some(written) = self.written.recv().await {
            drop(written);
        }
    }
}

/// Queues one job that writes the completed calls it is fed ([`CompleteFeed`]), in one
/// transaction: the writer inserts while the request's thread still makes the calls, and the
/// batch is still written whole or not at all. `ids` are the (project, id) of the calls that
/// name their id, read ahead as [`prefetch_completed`] does. The job fails, undoing what it
/// wrote, when the feed is dropped unfinished, or when a chunk takes longer than `wait` to
/// come. Returns the feed and the job's outcome (`Ok` once durable).
pub fn feed_complete(
    store: &dyn Store,
    ids: Vec<(String, String)>,
    user: String,
    wait: Duration,
) -> (CompleteFeed, impl Future<Output = Result<()>> + Send + 'static) {
    feed(store, Some(ids), user, wait)
}

/// [`feed_complete`]; without `ids`, each chunk's calls are read ahead as it comes.
fn feed(
    store: &dyn Store,
    ids: Option<Vec<(String, String)>>,
    user: String,
    wait: Duration,
) -> (CompleteFeed, impl Future<Output = Result<()>> + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let (back, written) = tokio::sync::mpsc::unbounded_channel();
    let outcome = store::submit_hinted(store, ReadHint::default(), move |w| {
        let each_chunk = ids.is_none();
        if let Some(ids) = ids {
            prefetch_by_project(w, ids.iter().map(|(p, id)| (p.as_str(), id.clone())).collect())?;
        }
        loop {
            match rx.recv_timeout(wait) {
                Ok(Feed::Calls(mut calls)) => {
                    if each_chunk {
                        prefetch_completed(w, &calls)?;
                    }
                    for c in &mut calls {
                        write_complete(w, c, Some(&user))?;
                    }
                    let _ = back.send(calls);
                }
                Ok(Feed::End) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::Storage("a batch's calls did not come in time".into()));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Storage("a batch's calls stopped coming".into()));
                }
            }
        }
    });
    (CompleteFeed { calls: Some(tx), written }, outcome)
}

/// Records a `calls/complete` batch in one transaction, all or nothing: each call made and
/// encoded here ([`prepare_complete`]), then fed to one job ([`feed_complete`]) a chunk at a
/// time. The batch is made whole before its job is queued: a job waiting for its calls would
/// hold the one writer while other batches' threads share the cores, and their jobs would
/// wait behind it (a batch alone streams: [`complete_streamed`]). The answer is the error of
/// the first call that cannot be made, else the job's.
pub async fn complete_batch(store: &dyn Store, batch: Vec<CallComplete>, user: &str) -> Result<()> {
    let ids = batch
        .iter()
        .filter_map(|c| c.id.as_ref().filter(|i| !i.is_empty()).map(|i| (c.project_id.clone(), i.clone())))
        .collect();
    let mut made = Vec::with_capacity(batch.len().div_ceil(FEED_CHUNK));
    let mut chunk = Vec::with_capacity(FEED_CHUNK.min(batch.len()));
    for c in batch {
        chunk.push(prepare_complete(store, c, Some(user))?);
        if chunk.len() == FEED_CHUNK {
            made.push(std::mem::replace(&mut chunk, Vec::with_capacity(FEED_CHUNK)));
        }
    }
    made.push(chunk);
    let (mut feed, outcome) = feed_complete(store, ids, user.to_string(), FEED_WAIT);
    for chunk in made {
        if !feed.send(chunk) {
            break;
        }
    }
    feed.finish();
    feed.free_written().await;
    outcome.await
}

/// Smallest body [`complete_streamed`] reads while it writes: a smaller one (a few dozen calls
/// at most) is read whole, as the thread that would make its calls costs more than the
/// overlap saves.
const STREAM_MIN: usize = 32 * 1024;

/// What reading a batch as it was fed found ([`stream_calls`]).
enum Streamed<E> {
    /// The body read well, each call checked and made.
    Read,
    /// The answer is the one reading the body whole gives: it did not read as
    /// [`CompleteBody`] (or a field was not read), or its calls could not be made apart.
    Whole,
    /// The first call `check` refused.
    Refused(E),
    /// The first call that could not be made.
    Unmade(Error),
}

/// Records a `calls/complete` body (its bytes, `{"batch": [...]}`) in one transaction, all or
/// nothing, while it is read: its job is queued first, each call is checked (`check`, the
/// caller's: may the request write it) as soon as it is read, and handed a chunk at a time to
/// a thread of its own that makes the calls and feeds them to the job, so that reading,
/// making and inserting overlap. For when the caller knows of no other batch being written
/// (see [`complete_batch`]).
///
/// The answer is the one reading the body whole, checking every call, then making them
/// ([`complete_batch`]) gives, in that order: a body that does not read (its shape, or a field
/// not read) first, then the first call `check` refuses, then the first call that cannot be
/// made, else the job's. What is found early is kept until the whole body is read; the job is
/// stopped at once, undoing what it wrote. A body under [`STREAM_MIN`] bytes is read whole
/// ([`complete_read_whole`]).
pub async fn complete_streamed<E: From<Error>>(
    store: &dyn Store,
    bytes: &[u8],
    user: &str,
    mut check: impl FnMut(&CallComplete) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if bytes.len() < STREAM_MIN {
        return complete_read_whole(store, bytes, user, check).await;
    }
    let (mut feed, outcome) = feed(store, None, user.to_string(), FEED_WAIT);
    let streamed = stream_calls(store, bytes, user, &mut feed, &mut check);
    if let Streamed::Read = streamed {
        feed.free_written().await;
        return Ok(outcome.await?);
    }
    feed.stop();
    let _ = outcome.await;
    match streamed {
        Streamed::Read => Ok(()),
        Streamed::Refused(e) => Err(e),
        Streamed::Unmade(e) => Err(e.into()),
        // The answer reading it whole gives; should that read it after all, it is written as
        // a batch read whole is.
        Streamed::Whole => complete_whole(store, body::from_bytes(bytes)?, user, check).await,
    }
}

/// Records a `calls/complete` body (its bytes, `{"batch": [...]}`) read whole first: each call
/// checked (`check`, as in [`complete_streamed`]), then [`complete_batch`]. For a batch that is
/// not alone; the answers are [`complete_streamed`]'s.
pub async fn complete_read_whole<E: From<Error>>(
    store: &dyn Store,
    bytes: &[u8],
    user: &str,
    check: impl FnMut(&CallComplete) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut batch = Vec::new();
    let mut unknown = false;
    let read =
        body::from_slice_noting(bytes, CompleteCalls { each: &mut |c| batch.push(c), unknown: &mut unknown });
    let body = match read {
        Ok(()) if !unknown => CompleteBody { batch },
        // Read again, as the body rule reads, for its answer.
        _ => body::from_bytes(bytes)?,
    };
    complete_whole(store, body, user, check).await
}

/// [`complete_batch`] of `body`'s calls once `check` passed each.
async fn complete_whole<E: From<Error>>(
    store: &dyn Store,
    body: CompleteBody,
    user: &str,
    mut check: impl FnMut(&CallComplete) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    body.batch.iter().try_for_each(&mut check)?;
    Ok(complete_batch(store, body.batch, user).await?)
}

/// What the thread making a streamed batch's calls receives ([`make_fed`]).
enum Parsed {
    Calls(Vec<CallComplete>),
    /// The body read well and every call was checked: the feed may finish.
    End,
}

/// Reads `bytes` as a [`CompleteBody`], each call checked as it is read and handed on to
/// [`make_fed`] on a thread of its own, which makes it and feeds it to `feed` (see
/// [`complete_streamed`]). `feed` is finished only if everything read, checked and was made.
fn stream_calls<E>(
    store: &dyn Store,
    bytes: &[u8],
    user: &str,
    feed: &mut CompleteFeed,
    check: &mut impl FnMut(&CallComplete) -> std::result::Result<(), E>,
) -> Streamed<E> {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let Ok(maker) = std::thread::Builder::new()
            .name("weft-complete".into())
            .spawn_scoped(s, move || make_fed(store, user, &rx, feed))
        else {
            return Streamed::Whole;
        };
        let mut tx = Some(tx);
        let mut refused = None;
        let mut parsed = Vec::with_capacity(FEED_CHUNK);
        let mut each = |c: CallComplete| {
            if refused.is_some() {
                return;
            }
            if let Err(e) = check(&c) {
                refused = Some(e);
                // The maker stops the feed: the job fails at once, undoing what it wrote.
                tx = None;
                return;
            }
            parsed.push(c);
            if parsed.len() == FEED_CHUNK {
                let calls = std::mem::replace(&mut parsed, Vec::with_capacity(FEED_CHUNK));
                if let Some(to) = &tx {
                    let _ = to.send(Parsed::Calls(calls));
                }
            }
        };
        let mut unknown = false;
        let read = body::from_slice_noting(bytes, CompleteCalls { each: &mut each, unknown: &mut unknown });
        let read = if unknown { Err(()) } else { read.map_err(drop) };
        if read.is_ok()
            && refused.is_none()
            && let Some(to) = tx.take()
        {
            if !parsed.is_empty() {
                let _ = to.send(Parsed::Calls(parsed));
            }
            let _ = to.send(Parsed::End);
        }
        drop(tx);
        let unmade =
            maker.join().unwrap_or_else(|_| Some(Error::Storage("making a batch's calls failed".into())));
        match (read, refused, unmade) {
            (Err(_), _, _) => Streamed::Whole,
            (Ok(()), Some(e), _) => Streamed::Refused(e),
            (Ok(()), None, Some(e)) => Streamed::Unmade(e),
            (Ok(()), None, None) => Streamed::Read,
        }
    })
}

/// Makes the calls `parsed` hands on and feeds them to `feed` a chunk at a time, until told
/// the body ended well (then the feed is finished) or the sender goes (the feed is stopped).
/// Returns the error of the first call that could not be made; after it, none is made and
/// the feed is stopped. A job that failed takes no more, but the calls are still made: one
/// that cannot be made is the answer, as when the batch is made whole first.
fn make_fed(
    store: &dyn Store,
    user: &str,
    parsed: &mpsc::Receiver<Parsed>,
    feed: &mut CompleteFeed,
) -> Option<Error> {
    let mut unmade = None;
    let mut taken = true;
    loop {
        match parsed.recv() {
            Ok(Parsed::Calls(calls)) => {
                if unmade.is_some() {
                    continue;
                }
                let mut made = Vec::with_capacity(calls.len());
                for c in calls {
                    match prepare_complete(store, c, Some(user)) {
                        Ok(done) => made.push(done),
                        Err(e) => {
                            unmade = Some(e);
                            feed.stop();
                            break;
                        }
                    }
                }
                if unmade.is_none() && taken {
                    taken = feed.send(made);
                }
            }
            Ok(Parsed::End) => {
                if unmade.is_none() {
                    feed.finish();
                }
                return unmade;
            }
            Err(mpsc::RecvError) => {
                feed.stop();
                return unmade;
            }
        }
    }
}
