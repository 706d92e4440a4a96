//! Packed JSON columns: a call's `attributes` and `inputs` stored as zstd frames compressed
//! with a dictionary trained on the project's own calls, which holds what they repeat (keys,
//! refs with their digests, op names), so that a value of a few hundred bytes packs to about a
//! quarter.
//!
//! A project's calls are written as JSON text until [`TRAIN_AFTER`] of them have been written
//! by this process without a dictionary; then the writer trains one on the project's latest
//! text rows, stores it in `json_dicts`, packs those rows with it, and packs every later
//! value. Either form reads back through the SQL function [`UNPACK`] (a text passes as it is):
//! every statement that reads these columns, or looks into them, names them through it. Rows
//! written before a project had a dictionary (all of a store of an older version, say) stay
//! text until rewritten.
//!
//! A packed value is a BLOB: [`FORMAT`], the dictionary's id and the text's length (LEB128),
//! then the zstd frame without its magic number, content size, checksum or dictionary id.
//!
//! Most calls are packed before their write job is queued, on the request's thread
//! ([`encode`]), with the project's committed dictionary as [`Dicts`] holds it; the writer
//! then only inserts them. [`Dicts`] holds only dictionaries of committed transactions (the
//! writer adds them once committed), so a value packed there never names a dictionary an undone
//! job made. A call encoded while its project had no committed dictionary (or none known yet)
//! reaches the writer as text, which counts it and packs it as before.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use zstd::bulk::Decompressor;
use zstd::dict::EncoderDictionary;
use zstd::zstd_safe::{CCtx, CParameter};

use crate::domain::call::Call;
use crate::store::sqlite::rows::json_text;

/// The columns stored packed.
pub(super) const PACKED_COLUMNS: [&str; 2] = ["attributes", "inputs"];
/// The SQL function reading a packed column as its JSON text.
pub(super) const UNPACK: &str = "weft_unpack";
/// First byte of a packed value: a zstd frame of a dictionary of `json_dicts`.
const FORMAT: u8 = 1;
/// The magic number each zstd frame starts with, which packed values leave out.
const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();
/// Compression level: small values gain next to nothing from a higher one.
const LEVEL: i32 = 1;
/// Largest dictionary trained.
const DICT_BYTES: usize = 16 * 1024;
/// Calls of a project written without a dictionary before one is trained, and how many of
/// its latest text rows it is trained on.
pub(super) const TRAIN_AFTER: usize = 1_000;
/// [`TRAIN_AFTER`], unless the environment variable `WEFT_SQLITE_PACK_AFTER` gives another
/// count (at least 1). The test script sets it low, so that the suites' projects are packed.
fn train_after() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("WEFT_SQLITE_PACK_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(TRAIN_AFTER)
    })
}
/// How far back from the newest row the training samples are looked for.
const SAMPLE_WINDOW: i64 = 100_000;
/// Largest text a packed value may claim to hold.
const MAX_TEXT: usize = 1 << 30;
/// Most dictionaries whose decompressor a connection keeps, and past how many projects the
/// writer drops the compressors of committed ones.
const MAX_CODERS: usize = 64;

/// Bumped whenever the writer forgets a dictionary an undone job made: its id may be taken
/// again by another one, so every connection drops the decompressors it holds (the writer's
/// may hold that dictionary's; readers never saw it, and merely start afresh).
static FORGOTTEN: AtomicU64 = AtomicU64::new(0);

/// `column` as a statement reads it: through [`UNPACK`] if it is a packed one.
pub(super) fn read(column: &str) -> String {
    if PACKED_COLUMNS.contains(&column) { format!("{UNPACK}({column})") } else { column.to_string() }
}

fn user_error(message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into().into())
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// Registers [`UNPACK`] on a connection; each connection keeps its own decompressors.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // A connection runs one statement step at a time: the lock is never waited for.
    let unpacker = std::sync::Mutex::new(Unpacker::default());
    conn.create_scalar_function(
        UNPACK,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| match ctx.get_raw(0) {
            ValueRef::Blob(b) if b.first() == Some(&FORMAT) => {
                // SAFETY: the connection is used only to read a dictionary, within this call.
                let conn = unsafe { ctx.get_connection()? };
                let mut unpacker = unpacker.lock().unwrap_or_else(|p| p.into_inner());
                unpacker.unpack(&conn, b).map(Value::Text)
            }
            ValueRef::Text(t) => Ok(Value::Text(String::from_utf8_lossy(t).into_owned())),
            ValueRef::Blob(b) => Ok(Value::Blob(b.to_vec())),
            ValueRef::Integer(n) => Ok(Value::Integer(n)),
            ValueRef::Real(x) => Ok(Value::Real(x)),
            ValueRef::Null => Ok(Value::Null),
        },
    )
}

/// The decompressors of one connection, by dictionary id.
#[derive(Default)]
struct Unpacker {
    decoders: HashMap<i64, Decompressor<'static>>,
    /// [`FORGOTTEN`] when `decoders` were last valid.
    seen: u64,
}

impl Unpacker {
    fn unpack(&mut self, conn: &Connection, packed: &[u8]) -> rusqlite::Result<String> {
        let corrupt = || user_error("a packed JSON value is corrupt");
        let mut rest = &packed[1..];
        let dict = take_varint(&mut rest).and_then(|n| i64::try_from(n).ok()).ok_or_else(corrupt)?;
        let len = take_varint(&mut rest).and_then(|n| usize::try_from(n).ok()).ok_or_else(corrupt)?;
        if len > MAX_TEXT {
            return Err(corrupt());
        }
        let forgotten = FORGOTTEN.load(Ordering::Acquire);
        if forgotten != self.seen {
            self.decoders.clear();
            self.seen = forgotten;
        }
        if !self.decoders.contains_key(&dict) {
            let bytes: Vec<u8> = conn
                .query_row("SELECT dict FROM json_dicts WHERE id = ?1", [dict], |r| r.get(0))
                .optional()?
                .ok_or_else(|| {
                    user_error(format!("packed JSON names dictionary {dict}, which is missing"))
                })?;
            let decoder = Decompressor::with_dictionary(&bytes).map_err(|e| user_error(e.to_string()))?;
            if self.decoders.len() >= MAX_CODERS {
                self.decoders.clear();
            }
            self.decoders.insert(dict, decoder);
        }
        let Some(decoder) = self.decoders.get_mut(&dict) else {
            return Err(corrupt());
        };
        let mut frame = Vec::with_capacity(MAGIC.len() + rest.len());
        frame.extend_from_slice(&MAGIC);
        frame.extend_from_slice(rest);
        let text = decoder.decompress(&frame, len).map_err(|_| corrupt())?;
        if text.len() != len {
            return Err(corrupt());
        }
        String::from_utf8(text).map_err(|_| corrupt())
    }
}

/// A value of a packed column as written: its JSON text, or packed.
pub(super) enum Packed<'a> {
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

impl Packed<'_> {
    /// The same value, borrowed.
    fn borrowed(&self) -> Packed<'_> {
        match self {
            Packed::Text(t) => Packed::Text(Cow::Borrowed(t)),
            Packed::Blob(b) => Packed::Blob(Cow::Borrowed(b)),
        }
    }
}

impl ToSql for Packed<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Packed::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Packed::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// A dictionary ready to pack with: its id and its prepared tables, shared by every thread
/// that packs with it (each with a compression context of its own, [`pack_with`]).
pub(super) struct Dict {
    id: i64,
    prepared: EncoderDictionary<'static>,
}

impl Dict {
    fn new(id: i64, bytes: &[u8]) -> Arc<Dict> {
        Arc::new(Dict { id, prepared: EncoderDictionary::copy(bytes, LEVEL) })
    }
}

/// The committed dictionaries of projects, by project: what calls are packed with before
/// their job is queued. Only the writer adds to it, once the dictionary's transaction has
/// committed (or when it reads one from `json_dicts`); a project missing is packed by the
/// writer.
#[derive(Default)]
pub(super) struct Dicts(RwLock<HashMap<String, Arc<Dict>>>);

impl Dicts {
    fn get(&self, project: &str) -> Option<Arc<Dict>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(project).cloned()
    }

    fn publish(&self, project: &str, dict: &Arc<Dict>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CODERS && !map.contains_key(project) {
            // Dropped ones come back as the writer meets their projects again.
            map.clear();
        }
        map.insert(project.to_string(), dict.clone());
    }
}

/// A call's JSON fields encoded before its write job is queued ([`encode`]): `attributes` and
/// `inputs` packed with the project's committed dictionary when it has one (`packed`), else
/// as text for the writer to count and pack; `output` and `summary` as text.
pub(super) struct EncodedCall {
    project: String,
    id: String,
    /// Whether `attributes` and `inputs` were packed (or left as text, as not shrinking) with a
    /// committed dictionary: the writer then writes them as they are.
    packed: bool,
    attributes: Packed<'static>,
    inputs: Packed<'static>,
    output: Option<String>,
    summary: Option<String>,
}

impl EncodedCall {
    /// Whether this is the encoding of `c`.
    pub(super) fn is_of(&self, c: &Call) -> bool {
        self.id == c.id && self.project == c.project_id
    }

    pub(super) fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }

    pub(super) fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }
}

/// Encodes `c` for its write, packing with the committed dictionary of its project if
/// `dicts` holds one. Never reads the database; a value that would not pack stays text.
pub(super) fn encode(dicts: &Dicts, c: &Call) -> EncodedCall {
    let [attributes, inputs] = [json_text(&c.attributes), json_text(&c.inputs)];
    let dict = dicts.get(&c.project_id);
    let pack = |text: String| -> Packed<'static> {
        match &dict {
            Some(d) => pack_with(d, Cow::Owned(text)),
            None => Packed::Text(Cow::Owned(text)),
        }
    };
    EncodedCall {
        project: c.project_id.clone(),
        id: c.id.clone(),
        packed: dict.is_some(),
        attributes: pack(attributes),
        inputs: pack(inputs),
        output: c.output.as_ref().map(json_text),
        summary: c.summary.as_ref().map(json_text),
    }
}

/// Where a dictionary the writer uses was made: in a committed transaction, or in the
/// current batch or job, which may yet be undone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    Committed,
    Batch,
    Job,
}

/// A project's dictionary as the writer knows it.
struct ProjectDict {
    /// The dictionary, and where it was made; `None` while the project has none.
    dict: Option<(Arc<Dict>, Made)>,
    /// Calls written as text by this process since the project was last without one.
    plain: usize,
}

/// The writer's dictionaries, by project: packs the values it writes that were not packed
/// before (see [`Packer::columns`]), trains a project's dictionary when the time comes, and
/// hands committed dictionaries to [`Dicts`].
pub(super) struct Packer {
    projects: HashMap<String, ProjectDict>,
    committed: Arc<Dicts>,
}

impl Packer {
    /// A packer adding the dictionaries it knows to be committed to `committed`.
    pub(super) fn new(committed: Arc<Dicts>) -> Packer {
        Packer { projects: HashMap::new(), committed }
    }

    /// A call's packed columns as they are written, in [`PACKED_COLUMNS`] order: as
    /// `encoded` has them when they were packed before the job, else packed here
    /// ([`Packer::pack`]).
    pub(super) fn columns<'a>(
        &mut self,
        conn: &Connection,
        c: &'a Call,
        encoded: Option<&'a EncodedCall>,
    ) -> rusqlite::Result<[Packed<'a>; 2]> {
        match encoded.map(|e| (e.packed, &e.attributes, &e.inputs)) {
            Some((true, a, i)) => Ok([a.borrowed(), i.borrowed()]),
            Some((false, Packed::Text(a), Packed::Text(i))) => {
                self.pack(conn, &c.project_id, [Cow::Borrowed(&**a), Cow::Borrowed(&**i)])
            }
            _ => self.pack(
                conn,
                &c.project_id,
                [Cow::Owned(json_text(&c.attributes)), Cow::Owned(json_text(&c.inputs))],
            ),
        }
    }

    /// The JSON texts of a call's packed columns as they are written, in
    /// [`PACKED_COLUMNS`] order: packed with the project's dictionary, which is trained
    /// first if the project has written enough calls without one.
    pub(super) fn pack<'a>(
        &mut self,
        conn: &Connection,
        project: &str,
        texts: [Cow<'a, str>; 2],
    ) -> rusqlite::Result<[Packed<'a>; 2]> {
        if !self.projects.contains_key(project) {
            if self.projects.len() >= MAX_CODERS {
                // Compressors of committed dictionaries are read again when needed; a count of
                // calls written without one, or a dictionary that may yet be undone, is kept.
                self.projects.retain(|_, p| p.dict.as_ref().is_none_or(|d| d.1 != Made::Committed));
            }
            if let Some(d) = self.committed.get(project) {
                let dict = Some((d, Made::Committed));
                self.projects.insert(project.to_string(), ProjectDict { dict, plain: 0 });
            }
        }
        if !self.projects.contains_key(project) {
            let stored: Option<(i64, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT id, dict FROM json_dicts WHERE project_id = ?1 ORDER BY id DESC LIMIT 1",
                )?
                .query_row([project], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let dict = stored.map(|(id, bytes)| {
                let d = Dict::new(id, &bytes);
                self.committed.publish(project, &d);
                (d, Made::Committed)
            });
            self.projects.insert(project.to_string(), ProjectDict { dict, plain: 0 });
        }
        let Some(entry) = self.projects.get_mut(project) else {
            return Ok(texts.map(Packed::Text));
        };
        if entry.dict.is_none() {
            entry.plain += 1;
            if entry.plain > train_after() {
                entry.plain = 0;
                entry.dict = train(conn, project)?;
            }
        }
        match &entry.dict {
            Some((d, _)) => Ok(texts.map(|t| pack_with(d, t))),
            None => Ok(texts.map(Packed::Text)),
        }
    }

    /// A job ended: a dictionary it made is kept with the batch, or forgotten with the job.
    pub(super) fn end_job(&mut self, kept: bool) {
        self.settle(Made::Job, kept.then_some(Made::Batch));
    }

    /// The batch committed, or was rolled back: its dictionaries are kept, or forgotten.
    pub(super) fn end_batch(&mut self, committed: bool) {
        self.settle(Made::Job, committed.then_some(Made::Committed));
        self.settle(Made::Batch, committed.then_some(Made::Committed));
    }

    fn settle(&mut self, made: Made, to: Option<Made>) {
        for (project, p) in &mut self.projects {
            if let Some(d) = &mut p.dict
                && d.1 == made
            {
                match to {
                    Some(to) => {
                        d.1 = to;
                        if to == Made::Committed {
                            self.committed.publish(project, &d.0);
                        }
                    }
                    None => {
                        p.dict = None;
                        FORGOTTEN.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
        }
    }
}

thread_local! {
    /// This thread's compression context, set for frames without content size, checksum or
    /// dictionary id; it references a dictionary only while it packs with it.
    static CONTEXT: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
}

/// `text` packed with `dict`, or as it is if packing does not make it smaller (or fails).
fn pack_with<'a>(dict: &Dict, text: Cow<'a, str>) -> Packed<'a> {
    let packed = CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        let cctx = match &mut *context {
            Some(cctx) => cctx,
            None => {
                let mut cctx = CCtx::create();
                for p in [
                    CParameter::ContentSizeFlag(false),
                    CParameter::ChecksumFlag(false),
                    CParameter::DictIdFlag(false),
                ] {
                    cctx.set_parameter(p).ok()?;
                }
                context.insert(cctx)
            }
        };
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(text.len()) + 24);
        out.push(FORMAT);
        push_varint(&mut out, dict.id as u64);
        push_varint(&mut out, text.len() as u64);
        let header = out.len();
        let mut cursor = std::io::Cursor::new(&mut out);
        cursor.set_position(header as u64);
        let framed = cctx
            .ref_cdict(dict.prepared.as_cdict())
            .and_then(|_| cctx.compress2(&mut cursor, text.as_bytes()));
        // The context never keeps a dictionary that may be dropped.
        let _ = cctx.disable_dictionary();
        framed.ok()?;
        (out.get(header..header + MAGIC.len()) == Some(&MAGIC[..])).then(|| {
            out.drain(header..header + MAGIC.len());
            out
        })
    });
    match packed {
        Some(out) if out.len() < text.len() => Packed::Blob(Cow::Owned(out)),
        _ => Packed::Text(text),
    }
}

/// Trains a dictionary on the project's latest text rows, stores it, and packs those rows
/// with it; `None` if there is too little to train on.
fn train(conn: &Connection, project: &str) -> rusqlite::Result<Option<(Arc<Dict>, Made)>> {
    let mut rows: Vec<(i64, String, String)> = Vec::with_capacity(train_after());
    {
        let mut stmt = conn.prepare_cached(
            "SELECT rowid, attributes, inputs FROM calls NOT INDEXED \
             WHERE rowid > (SELECT max(rowid) FROM calls) - ?2 \
             AND project_id = (SELECT id FROM projects WHERE name = ?1) \
             AND typeof(attributes) = 'text' AND typeof(inputs) = 'text' ORDER BY rowid DESC LIMIT ?3",
        )?;
        let mut found = stmt.query(params![project, SAMPLE_WINDOW, train_after() as i64])?;
        while let Some(r) = found.next()? {
            rows.push((r.get(0)?, r.get(1)?, r.get(2)?));
        }
    }
    let samples: Vec<&[u8]> = rows.iter().flat_map(|(_, a, i)| [a.as_bytes(), i.as_bytes()]).collect();
    let Ok(dict) = zstd::dict::from_samples(&samples, DICT_BYTES) else {
        return Ok(None);
    };
    conn.prepare_cached("INSERT INTO json_dicts (project_id, dict) VALUES (?1, ?2)")?
        .execute(params![project, dict])?;
    let d = Dict::new(conn.last_insert_rowid(), &dict);
    // Each row is taken out and written again packed, at the end of the table, oldest first:
    // a row shrunk in place would leave its page part empty (SQLite merges only pages under
    // a third full), while the pages a row leaves go to the freelist, or are merged, and the
    // next rows written fill them. Nothing keeps a call's rowid.
    let mut take = conn.prepare_cached("DELETE FROM calls WHERE rowid = ?1 RETURNING *")?;
    let columns: Vec<String> = take.column_names().map(|c| c.to_string()).collect();
    let at = |name: &str| columns.iter().position(|c| c == name);
    let (Some(attributes), Some(inputs)) = (at("attributes"), at("inputs")) else {
        return Err(user_error("the calls table has no packed columns"));
    };
    let values: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let mut put = conn.prepare_cached(&format!("INSERT INTO calls VALUES ({})", values.join(", ")))?;
    for (rowid, a, i) in rows.into_iter().rev() {
        let Some(mut row) = take
            .query_row([rowid], |r| {
                (0..columns.len()).map(|n| r.get::<_, Value>(n)).collect::<rusqlite::Result<Vec<_>>>()
            })
            .optional()?
        else {
            continue;
        };
        for (n, text) in [(attributes, a), (inputs, i)] {
            row[n] = match pack_with(&d, Cow::Owned(text)) {
                Packed::Blob(b) => Value::Blob(b.into_owned()),
                Packed::Text(t) => Value::Text(t.into_owned()),
            };
        }
        put.execute(rusqlite::params_from_iter(row))?;
    }
    Ok(Some((d, Made::Job)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::call::Call;
    use crate::domain::call_query::{CallQuery, Sort, SortField};
    use crate::domain::error::Error;
    use crate::domain::store::{Encoded, Insert, Store, write};
    use crate::store::sqlite::SqliteStore;

    /// `n` calls of project `e/p` with refs in their attributes and inputs, as a client would
    /// write them.
    fn calls(n: usize, from: usize) -> Vec<Call> {
        (from..from + n)
            .map(|i| {
                let mut c = Call::new("e/p", "weave:///e/p/op/Model.predict:Xq2Vf9", i as i64 + 1);
                c.attributes = json!({"weave": {"prediction": "true", "model": format!("weave:///e/p/object/M{}:Ab3", i % 7)}});
                c.inputs = json!({"self": "weave:///e/p/object/Eval:Zz9", "n": i, "q": format!("What is {i}?")});
                c
            })
            .collect()
    }

    fn stored(store: &SqliteStore, sort: Vec<Sort>) -> Vec<Call> {
        let mut found = Vec::new();
        store
            .calls("e/p", &CallQuery { sort, ..Default::default() }, &mut |c| {
                found.push(c);
                true
            })
            .unwrap();
        found
    }

    fn packed_rows(store: &SqliteStore) -> i64 {
        let conn = store.reader().unwrap();
        conn.query_row(
            "SELECT count(*) FROM calls WHERE typeof(attributes) = 'blob' AND typeof(inputs) = 'blob'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_project_s_calls_are_packed_once_it_has_enough_and_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let written = calls(TRAIN_AFTER + 50, 0);
        let w = written.clone();
        write(&store, move |w2| w.iter().try_for_each(|c| w2.insert_call(c))).unwrap();
        // The rows it was trained on are packed too.
        assert_eq!(packed_rows(&store), (TRAIN_AFTER + 50) as i64);
        assert_eq!(stored(&store, Vec::new()), written);
        // Sorts and filters look into the packed text.
        let by_n = Sort { field: SortField::Json("inputs", vec!["n".into()]), descending: true };
        let sorted = stored(&store, vec![by_n]);
        assert_eq!(sorted.first().map(|c| &c.id), written.last().map(|c| &c.id));
        let q = CallQuery { input_refs: vec!["weave:///e/p/object/Eval:Zz9".into()], ..Default::default() };
        let mut n = 0;
        store
            .calls("e/p", &q, &mut |_| {
                n += 1;
                true
            })
            .unwrap();
        assert_eq!(n, written.len());
        // A store opened again packs with the stored dictionary.
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let more = calls(10, TRAIN_AFTER + 50);
        let m = more.clone();
        write(&store, move |w| m.iter().try_for_each(|c| w.insert_call(c))).unwrap();
        assert_eq!(packed_rows(&store), (TRAIN_AFTER + 60) as i64);
        let dicts: i64 =
            store.reader().unwrap().query_row("SELECT count(*) FROM json_dicts", [], |r| r.get(0)).unwrap();
        assert_eq!(dicts, 1);
        assert_eq!(stored(&store, Vec::new()), [written, more].concat());
    }

    #[test]
    fn training_leaves_no_part_empty_pages_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Rows large enough that a page holds few: shrinking them in place would leave each
        // page of the trained rows mostly empty.
        let written: Vec<Call> = calls(3 * TRAIN_AFTER, 0)
            .into_iter()
            .map(|mut c| {
                c.inputs["q"] = json!(format!("{} {}", c.inputs["q"], "a long question ".repeat(20)));
                c
            })
            .collect();
        let w = written.clone();
        write(&store, move |w2| w.iter().try_for_each(|c| w2.insert_call(c))).unwrap();
        assert_eq!(stored(&store, Vec::new()), written);
        let conn = store.reader().unwrap();
        let used = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row(
                "SELECT p.page_count - f.freelist_count FROM pragma_page_count p, pragma_freelist_count f",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let copy = dir.path().join("copy.db");
        conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()]).unwrap();
        let compact = used(&rusqlite::Connection::open(&copy).unwrap());
        // The pages the trained rows left were filled again by the rows written after.
        let (used, free): (i64, i64) = conn
            .query_row("SELECT ?1, freelist_count FROM pragma_freelist_count", [used(&conn)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(used * 100 <= compact * 110, "{used} pages used, {compact} once vacuumed");
        assert!(free * 100 <= compact * 5, "{free} pages free of {used}");
    }

    #[test]
    fn the_id_of_an_undone_dictionary_taken_again_reads_with_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let lost = calls(TRAIN_AFTER + 5, 0);
        let failed = write(&store, move |w| {
            lost.iter().try_for_each(|c| w.insert_call(c))?;
            // The writer reads a value packed with the dictionary being undone.
            let read = w.call("e/p", &lost[TRAIN_AFTER + 2].id)?;
            assert_eq!(read.as_ref(), Some(&lost[TRAIN_AFTER + 2]));
            Err::<(), _>(Error::Storage("undone".into()))
        });
        assert!(failed.is_err());
        // Other calls, another dictionary under the same id.
        let kept: Vec<Call> = (0..TRAIN_AFTER + 5)
            .map(|i| {
                let mut c = Call::new("e/p", "Other.op", i as i64);
                c.attributes = json!({"other": {"k": format!("v{}", i % 5), "flag": i % 2 == 0}});
                c.inputs = json!({"text": format!("something else entirely, number {i}")});
                c
            })
            .collect();
        let k = kept.clone();
        let read = write(&store, move |w| {
            k.iter().try_for_each(|c| w.insert_call(c))?;
            w.call("e/p", &k[TRAIN_AFTER + 2].id)
        })
        .unwrap();
        assert_eq!(read.as_ref(), Some(&kept[TRAIN_AFTER + 2]));
        assert_eq!(stored(&store, Vec::new()), kept);
    }

    #[test]
    fn a_dictionary_made_by_a_failed_job_is_forgotten_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let lost = calls(TRAIN_AFTER + 5, 0);
        let failed = write(&store, move |w| {
            lost.iter().try_for_each(|c| w.insert_call(c))?;
            Err::<(), _>(Error::Storage("undone".into()))
        });
        assert!(failed.is_err());
        let kept = calls(20, 0);
        let k = kept.clone();
        write(&store, move |w| k.iter().try_for_each(|c| w.insert_call(c))).unwrap();
        assert_eq!(packed_rows(&store), 0);
        assert_eq!(stored(&store, Vec::new()), kept);
    }

    /// Writes `calls` as encoded before the job, as the routes do.
    fn write_encoded(store: &SqliteStore, calls: &[Call], fails: bool) -> Vec<bool> {
        let encoded: Vec<Encoded> = calls.iter().map(|c| store.encode_call(c)).collect();
        let was_packed = encoded.iter().map(|e| e.get::<EncodedCall>().is_some_and(|e| e.packed)).collect();
        let calls = calls.to_vec();
        let written = write(store, move |w| {
            for (c, e) in calls.iter().zip(&encoded) {
                assert!(w.insert_encoded(c, e, Insert::New)?);
            }
            if fails { Err(Error::Storage("undone".into())) } else { Ok(()) }
        });
        assert_eq!(written.is_ok(), !fails);
        was_packed
    }

    #[test]
    fn calls_encoded_before_their_job_pack_with_committed_dictionaries_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // A dictionary made by a job that is undone is never packed with.
        let lost = calls(TRAIN_AFTER + 5, 0);
        assert!(write_encoded(&store, &lost, true).iter().all(|p| !p));
        let few = calls(3, 0);
        assert!(write_encoded(&store, &few, false).iter().all(|p| !p));
        assert_eq!(packed_rows(&store), 0);
        // Text until the writer trains one; the calls after it in that job it packs itself.
        let first = calls(TRAIN_AFTER + 5, 3);
        assert!(write_encoded(&store, &first, false).iter().all(|p| !p));
        assert_eq!(packed_rows(&store), (TRAIN_AFTER + 8) as i64);
        // Once committed, calls are packed before their job, and read back as written.
        let more = calls(20, TRAIN_AFTER + 8);
        assert!(write_encoded(&store, &more, false).iter().all(|p| *p));
        assert_eq!(packed_rows(&store), (TRAIN_AFTER + 28) as i64);
        assert_eq!(stored(&store, Vec::new()), [few, first, more].concat());
        // An encoding of another call is not used for this one.
        let (a, b) = (calls(1, 5000).remove(0), calls(1, 6000).remove(0));
        let wrong = store.encode_call(&b);
        let c = a.clone();
        write(&store, move |w| w.insert_encoded(&c, &wrong, Insert::Checked)).unwrap();
        assert_eq!(store.call("e/p", &a.id).unwrap(), Some(a));
    }

    #[test]
    fn varints_read_back() {
        for n in [0u64, 1, 127, 128, 300, 1 << 20, u64::MAX] {
            let mut out = Vec::new();
            push_varint(&mut out, n);
            let mut rest = &out[..];
            assert_eq!(take_varint(&mut rest), Some(n));
            assert!(rest.is_empty());
        }
        assert_eq!(take_varint(&mut &[0x80u8][..]), None);
    }
}
