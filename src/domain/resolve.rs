//! Reading what refs point at (`refs/read_batch`): objects, ops, tables and calls, followed
//! along their paths, through the refs that values hold.
//!
//! Values are written by clients, so the refs inside them may form cycles or long chains. Every
//! walk here is bounded: one top-level ref follows at most [`MAX_REF_HOPS`] refs in all, nested
//! ones included, and a ref met again while it is being read is a cycle (400). A batch's answer
//! holds each distinct value once, serialized, and at most [`MAX_BATCH_BYTES`] of them.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use super::call_query::call_json;
use super::error::{Error, Result};
use super::object::Version;
use super::page::Page;
use super::refs::{Edge, Ref, Target};
use super::store::Store;

/// Most refs one top-level ref may lead to following, nested refs included.
pub const MAX_REF_HOPS: usize = 32;
/// Most bytes of distinct values (as JSON) one batch may answer; a batch past it is a 413.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// The values of `refs` as JSON text, in order. A ref named several times is read once and
/// its text shared, so the answer's memory is that of its distinct values.
pub fn read_batch(s: &dyn Store, refs: &[Ref]) -> Result<Vec<Bytes>> {
    let mut done: HashMap<&Ref, Bytes> = HashMap::new();
    let mut held = 0usize;
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        if let Some(text) = done.get(r) {
            out.push(text.clone());
            continue;
        }
        let value = Walk { store: s, hops: 0, reading: Vec::new() }.read(r)?;
        let text = Bytes::from(serde_json::to_vec(&value).map_err(|e| Error::Storage(e.to_string()))?);
        drop(value);
        held += text.len();
        if held > MAX_BATCH_BYTES {
            return Err(Error::TooLarge(format!(
                "The values of these refs are over {} MiB together; read them in smaller batches",
                MAX_BATCH_BYTES >> 20
            )));
        }
        done.insert(r, text.clone());
        out.push(text);
    }
    Ok(out)
}

/// The value one ref points at (see [`read_batch`] for the bounds).
pub fn read(s: &dyn Store, r: &Ref) -> Result<Value> {
    Walk { store: s, hops: 0, reading: Vec::new() }.read(r)
}

/// One top-level ref's reading: the refs followed so far, and those being read (outermost
/// first), to tell a cycle.
struct Walk<'a> {
    store: &'a dyn Store,
    hops: usize,
    reading: Vec<Ref>,
}

impl Walk<'_> {
    fn read(&mut self, r: &Ref) -> Result<Value> {
        if self.reading.contains(r) {
            return Err(Error::BadRequest(format!("Ref cycle: {} refers back to itself", show(r))));
        }
        self.reading.push(r.clone());
        let value = self.read_path(r);
        self.reading.pop();
        value
    }

    /// Follows a ref found inside a value.
    fn follow(&mut self, outer: &Ref, inner: &Ref) -> Result<Value> {
        if inner.project_id != outer.project_id {
            return Err(Error::BadRequest("Refs may not cross projects".into()));
        }
        self.hops += 1;
        if self.hops > MAX_REF_HOPS {
            return Err(Error::BadRequest(format!(
                "Too many nested refs: reading {} follows more than {MAX_REF_HOPS}",
                show(&self.reading[0])
            )));
        }
        self.read(inner)
    }

    fn read_path(&mut self, r: &Ref) -> Result<Value> {
        let s = self.store;
        let not_found = || not_found(r);
        let mut cur = match &r.target {
            Target::Object { name, digest } | Target::Op { name, digest } => {
                s.object(&r.project_id, name, &Version::parse(digest))?.ok_or_else(not_found)?.0.val
            }
            Target::Table { digest } => {
                let rows =
                    s.table_rows(&r.project_id, digest, None, Page::default())?.ok_or_else(not_found)?;
                Value::Array(rows.into_iter().map(|row| row.val).collect())
            }
            Target::Call { id } => call_json(&s.call(&r.project_id, id)?.ok_or_else(not_found)?),
        };
        for edge in &r.path {
            // A value that is itself a ref is followed before stepping into it, except for a
            // table ref, which an `id` edge reads a row of.
            while let Some(text) = cur.as_str().filter(|t| t.starts_with("weave:///")) {
                let inner = Ref::parse(text)?;
                if matches!((&inner.target, edge), (Target::Table { .. }, Edge::Id(_))) {
                    break;
                }
                cur = self.follow(r, &inner)?;
            }
            cur = match edge {
                Edge::Key(k) | Edge::Attr(k) => {
                    cur.as_object_mut().and_then(|m| m.remove(k.as_str())).ok_or_else(not_found)?
                }
                Edge::Index(i) => cur
                    .as_array_mut()
                    .and_then(|items| (*i < items.len()).then(|| items.swap_remove(*i)))
                    .ok_or_else(not_found)?,
                Edge::Id(row) => {
                    let table = cur.as_str().map(Ref::parse).transpose()?;
                    let Some(Ref { target: Target::Table { digest }, project_id, .. }) = table else {
                        return Err(not_found());
                    };
                    if project_id != r.project_id {
                        return Err(Error::BadRequest("Refs may not cross projects".into()));
                    }
                    let rows =
                        s.table_rows(&project_id, &digest, Some(std::slice::from_ref(row)), Page::default())?;
                    rows.and_then(|mut v| v.pop()).map(|row| row.val).ok_or_else(not_found)?
                }
            };
        }
        Ok(cur)
    }
}

fn not_found(r: &Ref) -> Error {
    Error::NotFound(match &r.target {
        Target::Object { name, digest } | Target::Op { name, digest } => {
            format!("Obj {name}:{digest} not found")
        }
        Target::Table { digest } => format!("Table {digest} not found"),
        Target::Call { id } => format!("Call {id} not found"),
    })
}

/// A ref as text for an error message, cut short if long.
fn show(r: &Ref) -> String {
    let head = match &r.target {
        Target::Object { name, digest } => format!("object/{name}:{digest}"),
        Target::Op { name, digest } => format!("op/{name}:{digest}"),
        Target::Table { digest } => format!("table/{digest}"),
        Target::Call { id } => format!("call/{id}"),
    };
    let mut text = format!("weave:///{}/{head}", r.project_id);
    for edge in &r.path {
        let (kind, value) = match edge {
            Edge::Key(k) => ("key", k.clone()),
            Edge::Attr(a) => ("attr", a.clone()),
            Edge::Id(i) => ("id", i.clone()),
            Edge::Index(i) => ("index", i.to_string()),
        };
        text.push_str(&format!("/{kind}/{value}"));
    }
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
