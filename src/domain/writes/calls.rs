//! Writes of calls: starts and ends in whatever order they arrive, completed calls, upsert
//! batches, renames.

use serde_json::{Value, json};

use crate::domain::call::{Call, new_id, now};
use crate::domain::error::{Error, Result};
use crate::domain::store::{CallEndFields, Encoded, Insert, Store, Writer};
use crate::domain::trace::{CallComplete, CallEnd, CallStart, Ending, UpsertItem, object, parse_stored_time};

pub use super::complete::{
    CompleteFeed, FEED_WAIT, complete_batch, complete_read_whole, complete_streamed, feed_complete,
};

/// An op name that names nothing yet: a call whose end (or rename) arrived before its start.
const PENDING_OP: &str = "";

/// The call `s` starts, over `base` (an end that arrived first) if there is one.
fn started(s: &CallStart, base: Option<Call>, user: Option<&str>) -> Result<Call> {
    let id = s.id.clone().filter(|i| !i.is_empty()).unwrap_or_else(new_id);
    let trace_id = s.trace_id.clone().filter(|t| !t.is_empty()).unwrap_or_else(new_id);
    let started_at = parse_stored_time(&s.started_at, "started_at")?;
    // A rename that arrived before the start was sent after it: its name wins.
    let mut renamed = None;
    let mut call = match base {
        Some(mut call) => {
            if call.op_name == PENDING_OP {
                renamed = call.display_name.take();
            }
            call.id = id;
            call.trace_id = trace_id;
            call
        }
        None => Call::with_ids(&s.project_id, &s.op_name, started_at, id, trace_id),
    };
    call.parent_id = s.parent_id.clone();
    call.op_name = s.op_name.clone();
    call.display_name = renamed.or_else(|| s.display_name.clone());
    call.started_at = started_at;
    call.attributes = object(s.attributes.clone());
    call.inputs = object(s.inputs.clone());
    call.wb_user_id = user.map(String::from).or_else(|| s.wb_user_id.clone());
    call.thread_id = s.thread_id.clone();
    call.turn_id = s.turn_id.clone();
    call.wb_run_id = s.wb_run_id.clone();
    call.wb_run_step = s.wb_run_step;
    Ok(call)
}

/// A call made before its write job runs, with its fields as the store encoded them
/// ([`Store::encode_call`]): on the request's thread, so that the one writer thread only
/// inserts it.
pub struct Ready {
    call: Call,
    encoded: Encoded,
}

impl Ready {
    /// `call`, encoded by `store`.
    pub fn new(store: &dyn Store, call: Call) -> Ready {
        let encoded = store.encode_call(&call);
        Ready { call, encoded }
    }

    /// `call`, for the writer to encode.
    fn plain(call: Call) -> Ready {
        Ready { call, encoded: Encoded::default() }
    }

    /// The call's id.
    pub fn id(&self) -> &str {
        &self.call.id
    }

    /// Inserts the call as `how` says; returns whether it was inserted.
    pub fn insert(&self, w: &mut dyn Writer, how: Insert) -> Result<bool> {
        w.insert_encoded(&self.call, &self.encoded, how)
    }
}

/// Tells the writer which calls an upsert batch is about to look up (see
/// [`Writer::prefetch_calls`]).
pub fn prefetch_upserted(w: &mut dyn Writer, batch: &[UpsertItem]) -> Result<()> {
    let mut ids: Vec<(&str, String)> = Vec::with_capacity(batch.len());
    for item in batch {
        match item {
            UpsertItem::Start(s) => {
                if let Some(id) = s.start.id.as_ref().filter(|i| !i.is_empty()) {
                    ids.push((&s.start.project_id, id.clone()));
                }
            }
            UpsertItem::End(e) => ids.push((&e.end.project_id, e.end.id.clone())),
        }
    }
    prefetch_by_project(w, ids)
}

/// Tells the writer the calls `ids` names, a project at a time.
pub(super) fn prefetch_by_project(w: &mut dyn Writer, mut ids: Vec<(&str, String)>) -> Result<()> {
    ids.sort();
    for group in ids.chunk_by(|a, b| a.0 == b.0) {
        if let Some((project, _)) = group.first() {
            let wanted: Vec<String> = group.iter().map(|(_, id)| id.clone()).collect();
            w.prefetch_calls(project, &wanted)?;
        }
    }
    Ok(())
}

/// Records a call's start (merging into an end that arrived first); returns (id, trace id).
pub fn start(w: &mut dyn Writer, s: &CallStart, user: Option<&str>) -> Result<(String, String)> {
    start_ready(w, s, &Ready::plain(started(s, None, user)?), user)
}

/// The call a start makes when it is new, made ready before the job runs (see [`start_ready`]).
pub fn prepare_start(store: &dyn Store, s: &CallStart, user: Option<&str>) -> Result<Ready> {
    Ok(Ready::new(store, started(s, None, user)?))
}

/// [`start`], with the call it makes when new made by [`prepare_start`].
pub fn start_ready(
    w: &mut dyn Writer,
    s: &CallStart,
    new: &Ready,
    user: Option<&str>,
) -> Result<(String, String)> {
    let ids = || (new.call.id.clone(), new.call.trace_id.clone());
    let Some(id) = s.id.as_deref().filter(|i| !i.is_empty()) else {
        new.insert(w, Insert::Checked)?;
        return Ok(ids());
    };
    // A new call is inserted without reading anything; an existing one (an end that arrived
    // first, or a retried start) is merged.
    if new.insert(w, Insert::New)? {
        return Ok(ids());
    }
    let existing = w.call(&s.project_id, id)?;
    let merge = existing.is_some();
    let call = started(s, existing, user)?;
    if merge {
        w.update_call(&call)?;
    } else {
        // A deleted call keeps its id: the insert reports it as taken.
        w.insert_call(&call)?;
    }
    Ok((call.id, call.trace_id))
}

/// Records a call's end; an end that arrives before its start is kept until the start comes.
pub fn end(w: &mut dyn Writer, e: &CallEnd, user: Option<&str>) -> Result<()> {
    end_of(w, &e.project_id, &e.id, &e.ending(), user)
}

/// Records the end of call `id` (see [`end`]).
fn end_of(w: &mut dyn Writer, project: &str, id: &str, ending: &Ending, user: Option<&str>) -> Result<()> {
    let mut call = Call::with_ids(project, PENDING_OP, 0, id.to_string(), id.to_string());
    ended(&mut call, ending)?;
    let fields = CallEndFields {
        ended_at: call.ended_at.unwrap_or_default(),
        exception: call.exception.as_deref(),
        output: call.output.as_ref().unwrap_or(&Value::Null),
        summary: call.summary.as_ref().unwrap_or(&Value::Null),
        wb_run_step_end: call.wb_run_step_end,
    };
    if w.end_call(project, id, &fields)? {
        if ending.display_name.is_some() {
            rename(w, project, id, ending.display_name.clone())?;
        }
        return Ok(());
    }
    call.started_at = call.ended_at.unwrap_or_default();
    call.wb_user_id = user.map(String::from);
    w.insert_call(&call)
}

/// Sets the end fields of `call` from an end.
fn ended(call: &mut Call, e: &Ending) -> Result<()> {
    call.ended_at = Some(parse_stored_time(&e.ended_at, "ended_at")?);
    if e.display_name.is_some() {
        call.display_name = e.display_name.clone();
    }
    call.exception = e.exception.clone();
    call.output = Some(e.output.clone());
    call.summary = Some(object(e.summary.clone()));
    call.wb_run_step_end = e.wb_run_step_end;
    Ok(())
}

/// A call that has already ended, made ready to write by [`prepare_complete`]: its record,
/// and what writing it needs if it is stored already.
pub struct Completed {
    call: Ready,
    start: CallStart,
    ending: Ending,
    /// Whether the request gave attributes, inputs and a summary (and not `null`).
    had: (bool, bool, bool),
}

/// Makes the record of a call that has already ended (start and end at once), as
/// [`start_ended`] would, without the writer: its JSON fields (attributes, inputs, output,
/// summary: most of a call) are moved into the record, not copied. A batch's records are made
/// (and dropped) off the one writer thread, and encoded by `store`, so that the writer only
/// inserts them ([`write_complete`]).
pub fn prepare_complete(store: &dyn Store, c: CallComplete, user: Option<&str>) -> Result<Completed> {
    let mut done = completed(c, user)?;
    done.call.encoded = store.encode_call(&done.call.call);
    Ok(done)
}

/// [`prepare_complete`] without encoding the call.
fn completed(c: CallComplete, user: Option<&str>) -> Result<Completed> {
    let (start, ending) = c.into_parts();
    completed_parts(start, ending, user)
}

/// The record of a call started by `start` and ended by `ending`, their JSON fields moved
/// into it (see [`prepare_complete`]).
fn completed_parts(mut start: CallStart, mut ending: Ending, user: Option<&str>) -> Result<Completed> {
    let (attributes, inputs) = (start.attributes.take(), start.inputs.take());
    let (output, summary) = (std::mem::take(&mut ending.output), ending.summary.take());
    let had = (attributes.is_some(), inputs.is_some(), summary.is_some());
    let mut call = started(&start, None, user)?;
    ended(&mut call, &ending)?;
    call.attributes = object(attributes);
    call.inputs = object(inputs);
    call.output = Some(output);
    call.summary = Some(object(summary));
    Ok(Completed { call: Ready::plain(call), start, ending, had })
}

/// Writes a [`prepare_complete`]d call: one insert when new; a call stored already (an early
/// end or rename, or the same call sent again) gets its JSON fields back for [`start`] and
/// [`end_of`], as [`start_ended`] does.
pub fn write_complete(w: &mut dyn Writer, c: &mut Completed, user: Option<&str>) -> Result<()> {
    write_completed(w, c, user).map(drop)
}

/// [`write_complete`]; returns the call's (id, trace id), as [`start`] does.
fn write_completed(w: &mut dyn Writer, c: &mut Completed, user: Option<&str>) -> Result<(String, String)> {
    let ids = |c: &Completed| (c.call.call.id.clone(), c.call.call.trace_id.clone());
    let Some(id) = c.start.id.clone().filter(|i| !i.is_empty()) else {
        c.call.insert(w, Insert::Checked)?;
        return Ok(ids(c));
    };
    if c.call.insert(w, Insert::New)? {
        return Ok(ids(c));
    }
    let back = |v: &mut Value, had: bool| match std::mem::take(v) {
        Value::Object(m) if had => Some(m),
        _ => None,
    };
    let (call, s, ending) = (&mut c.call.call, &mut c.start, &mut c.ending);
    s.attributes = back(&mut call.attributes, c.had.0);
    s.inputs = back(&mut call.inputs, c.had.1);
    ending.output = call.output.take().unwrap_or_default();
    ending.summary = call.summary.as_mut().and_then(|v| back(v, c.had.2));
    let ids = start(w, s, user)?;
    end_of(w, &s.project_id, &id, ending, user)?;
    Ok(ids)
}

/// Records a call that has already ended (start and end at once): [`prepare_complete`], then
/// [`write_complete`], the writer encoding the call.
pub fn complete(w: &mut dyn Writer, c: CallComplete, user: Option<&str>) -> Result<()> {
    write_complete(w, &mut completed(c, user)?, user)
}

/// Records a start and then its call's end, as [`start`] and [`end`] one after the other
/// would, with one insert when the call is new; returns (id, trace id).
pub fn start_ended(
    w: &mut dyn Writer,
    s: &CallStart,
    ending: &Ending,
    user: Option<&str>,
) -> Result<(String, String)> {
    let mut call = started(s, None, user)?;
    ended(&mut call, ending)?;
    start_ended_ready(w, s, &Ready::plain(call), user, || ending.clone())
}

/// [`start_ended`], with the call made (started and ended) before the job ran; the ending is
/// made only if the call is stored already.
fn start_ended_ready(
    w: &mut dyn Writer,
    s: &CallStart,
    new: &Ready,
    user: Option<&str>,
    ending: impl FnOnce() -> Ending,
) -> Result<(String, String)> {
    let ids = || (new.call.id.clone(), new.call.trace_id.clone());
    let Some(id) = s.id.as_deref().filter(|i| !i.is_empty()) else {
        new.insert(w, Insert::Checked)?;
        return Ok(ids());
    };
    if new.insert(w, Insert::New)? {
        return Ok(ids());
    }
    let ids = start(w, s, user)?;
    end_of(w, &s.project_id, id, &ending(), user)?;
    Ok(ids)
}

/// Whether an upsert batch's end is the end of the start just before it (same project and
/// id), so that the two can be written as one completed call.
pub fn ends_start(s: &CallStart, e: &CallEnd) -> bool {
    s.id.as_deref().is_some_and(|id| !id.is_empty() && id == e.id) && s.project_id == e.project_id
}

/// Renames a call (`display_name`). A rename that arrives before its call's start (the SDKs
/// send starts in batches, and a rename at once) is kept, as an early end is, until the start
/// comes; a deleted call is a 404.
pub fn rename(w: &mut dyn Writer, project: &str, id: &str, display_name: Option<String>) -> Result<()> {
    if let Some(mut call) = w.call(project, id)? {
        call.display_name = display_name;
        return w.update_call(&call);
    }
    let mut pending = Call::with_ids(project, PENDING_OP, now(), id.to_string(), id.to_string());
    pending.display_name = display_name;
    if w.insert_new_call(&pending)? { Ok(()) } else { Err(Error::NotFound(format!("Call {id} not found"))) }
}

/// Tells the writer which calls a batch of [`prepare_complete`]d calls is about to look up
/// (see [`Writer::prefetch_calls`]): each one's id, to know whether it is new.
pub fn prefetch_completed(w: &mut dyn Writer, batch: &[Completed]) -> Result<()> {
    let ids: Vec<(&str, String)> = batch
        .iter()
        .filter(|c| c.start.id.as_ref().is_some_and(|i| !i.is_empty()))
        .map(|c| (c.call.call.project_id.as_str(), c.call.call.id.clone()))
        .collect();
    prefetch_by_project(w, ids)
}

/// An upsert batch made ready before its job runs ([`prepare_upsert`]), item by item: a start
/// followed by its own end as one completed call (its JSON fields moved, not copied), another
/// start with the call it makes when new, an end as it is. An error is kept for the writer to
/// meet in the batch's order.
pub struct PreparedUpsert(Vec<Upserted>);

// Every variant holds a call's start or end: boxing the largest would save little.
#[allow(clippy::large_enum_variant)]
enum Upserted {
    Completed(Result<Completed>),
    Start(CallStart, Result<Ready>),
    End(CallEnd),
}

/// Makes the calls of `batch`'s starts, encoded by `store`, for [`upsert_prepared`].
pub fn prepare_upsert(store: &dyn Store, batch: Vec<UpsertItem>, user: Option<&str>) -> PreparedUpsert {
    prepare_upsert_with(&|c| store.encode_call(c), batch, user)
}

/// [`prepare_upsert`], each call encoded by `encode`.
fn prepare_upsert_with(
    encode: &dyn Fn(&Call) -> Encoded,
    batch: Vec<UpsertItem>,
    user: Option<&str>,
) -> PreparedUpsert {
    let mut ready = Vec::with_capacity(batch.len());
    let mut items = batch.into_iter().peekable();
    while let Some(item) = items.next() {
        match item {
            UpsertItem::Start(s) => {
                let own_end =
                    matches!(items.peek(), Some(UpsertItem::End(e)) if ends_start(&s.start, &e.end));
                match items.next_if(|_| own_end) {
                    Some(UpsertItem::End(e)) => {
                        let e = e.end;
                        let ending = Ending {
                            ended_at: e.ended_at,
                            display_name: e.display_name,
                            exception: e.exception,
                            output: e.output,
                            summary: e.summary,
                            wb_run_step_end: e.wb_run_step_end,
                        };
                        let done = completed_parts(s.start, ending, user).map(|mut c| {
                            c.call.encoded = encode(&c.call.call);
                            c
                        });
                        ready.push(Upserted::Completed(done));
                    }
                    _ => {
                        let new = started(&s.start, None, user).map(|call| {
                            let encoded = encode(&call);
                            Ready { call, encoded }
                        });
                        ready.push(Upserted::Start(s.start, new));
                    }
                }
            }
            UpsertItem::End(e) => ready.push(Upserted::End(e.end)),
        }
    }
    PreparedUpsert(ready)
}

/// Applies an upsert batch in order, as one job; returns one answer per item: `{id,
/// trace_id}` for a start, `{}` for an end. A start followed by its own end (what the SDK
/// sends for a short call) is written once, as a completed call.
pub fn upsert_batch(w: &mut dyn Writer, batch: Vec<UpsertItem>, user: Option<&str>) -> Result<Vec<Value>> {
    upsert_prepared(w, &mut prepare_upsert_with(&|_| Encoded::default(), batch, user), user)
}

/// [`upsert_batch`] of a batch [`prepare_upsert`] made ready.
pub fn upsert_prepared(
    w: &mut dyn Writer,
    batch: &mut PreparedUpsert,
    user: Option<&str>,
) -> Result<Vec<Value>> {
    let mut ids: Vec<(&str, String)> = Vec::with_capacity(batch.0.len());
    for item in &batch.0 {
        match item {
            Upserted::Completed(Ok(c)) => {
                if let Some(id) = c.start.id.as_ref().filter(|i| !i.is_empty()) {
                    ids.push((&c.start.project_id, id.clone()));
                }
            }
            Upserted::Start(s, _) => {
                if let Some(id) = s.id.as_ref().filter(|i| !i.is_empty()) {
                    ids.push((&s.project_id, id.clone()));
                }
            }
            Upserted::End(e) => ids.push((&e.project_id, e.id.clone())),
            Upserted::Completed(Err(_)) => {}
        }
    }
    prefetch_by_project(w, ids)?;
    let mut res = Vec::with_capacity(batch.0.len() * 2);
    for item in &mut batch.0 {
        match item {
            Upserted::Completed(c) => {
                let c = c.as_mut().map_err(|e| e.clone())?;
                let (id, trace_id) = write_completed(w, c, user)?;
                res.push(json!({ "id": id, "trace_id": trace_id }));
                res.push(json!({}));
            }
            Upserted::Start(s, new) => {
                let new = new.as_ref().map_err(|e| e.clone())?;
                let (id, trace_id) = start_ready(w, s, new, user)?;
                res.push(json!({ "id": id, "trace_id": trace_id }));
            }
            Upserted::End(e) => {
                end(w, e, user)?;
                res.push(json!({}));
            }
        }
    }
    Ok(res)
}
