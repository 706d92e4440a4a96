//! Call ids as the calls table stores them: an id that is a canonical UUID (36 characters,
//! lowercase hex, hyphens at 8-4-4-4-12, as the SDKs make them) as its 16 bytes, a BLOB; any
//! other id as the text sent, so that every id reads back byte for byte. The columns holding
//! call ids (`id`, `trace_id`, `parent_id`, `run_id`, `turn_id`) are bound through [`Id`] (or
//! [`list`] for `rarray`) and read through [`read`] or [`read_into`], everywhere.
//!
//! For canonical UUIDs the bytes order as the texts do, so `ORDER BY ..., id` and keyset
//! cursors over ids keep their order when the bound id is encoded the same way. SQLite orders
//! every TEXT before every BLOB: ids that are not UUIDs order before those that are.
//!
//! Two SQL functions do the same on every connection: `weft_id(x)` encodes (what the upgrade
//! to schema version 9 rewrites stored ids with) and `weft_id_text(x)` decodes (what orders
//! ids as text where no index gives the order).

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{FromSqlError, FromSqlResult, ToSqlOutput, Value, ValueRef};
use std::rc::Rc;

/// The SQL function encoding an id as it is stored.
pub(super) const ENCODE: &str = "weft_id";
/// The SQL function reading a stored id as its text.
pub(super) const DECODE: &str = "weft_id_text";

/// The length of a canonical UUID's text.
const TEXT_LEN: usize = 36;

/// The value of each byte as a lowercase hex digit, or [`NOT_HEX`].
const HEX: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};
const NOT_HEX: u8 = 0xff;

/// Where each of the 16 bytes of a canonical UUID starts in its text.
const BYTE_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The 16 bytes of a canonical UUID: 32 lowercase hex digits with hyphens at 8, 13, 18, 23.
fn uuid_bytes(id: &[u8]) -> Option<[u8; 16]> {
    let id: &[u8; TEXT_LEN] = id.try_into().ok()?;
    if id[8] != b'-' || id[13] != b'-' || id[18] != b'-' || id[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bad = 0u8;
    for (o, &at) in out.iter_mut().zip(BYTE_AT.iter()) {
        let (hi, lo) = (HEX[id[at] as usize], HEX[id[at + 1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    // A digit is at most 0x0f: a byte that is not one sets the high bits.
    if bad & 0xf0 != 0 { None } else { Some(out) }
}

/// The canonical text of a UUID's 16 bytes, written into `buf`.
fn uuid_text<'b>(bytes: &[u8; 16], buf: &'b mut [u8; TEXT_LEN]) -> &'b str {
    uuid::Uuid::from_bytes(*bytes).hyphenated().encode_lower(buf)
}

/// A call id as a statement binds it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Id<'a> {
    Uuid([u8; 16]),
    Text(&'a str),
}

impl<'a> Id<'a> {
    pub(super) fn new(id: &'a str) -> Self {
        match uuid_bytes(id.as_bytes()) {
            Some(b) => Id::Uuid(b),
            None => Id::Text(id),
        }
    }

    /// An optional id (NULL when absent).
    pub(super) fn opt(id: Option<&'a str>) -> Option<Self> {
        id.map(Id::new)
    }

    /// The id as an owned SQL value (for lists bound with `rarray`).
    pub(super) fn value(self) -> Value {
        match self {
            Id::Uuid(b) => Value::Blob(b.to_vec()),
            Id::Text(t) => Value::Text(t.to_string()),
        }
    }
}

impl rusqlite::ToSql for Id<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Id::Uuid(b) => ValueRef::Blob(b),
            Id::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// Ids as one value bound for `rarray(?)`, each encoded as [`Id`] encodes it.
pub(super) fn list<'v>(ids: impl IntoIterator<Item = &'v str>) -> Rc<Vec<Value>> {
    Rc::new(ids.into_iter().map(|id| Id::new(id).value()).collect())
}

/// A stored id's text: a 16-byte BLOB as its UUID, a TEXT as it is.
pub(super) fn read(v: ValueRef<'_>) -> FromSqlResult<String> {
    let mut buf = [0u8; TEXT_LEN];
    read_into(v, &mut buf).map(str::to_string)
}

/// A stored id's text, borrowed from the row or written into `buf`.
pub(super) fn read_into<'r>(v: ValueRef<'r>, buf: &'r mut [u8; TEXT_LEN]) -> FromSqlResult<&'r str> {
    match v {
        ValueRef::Blob(b) => {
            let bytes: &[u8; 16] = b
                .try_into()
                .map_err(|_| FromSqlError::InvalidBlobSize { expected_size: 16, blob_size: b.len() })?;
            Ok(uuid_text(bytes, buf))
        }
        other => other.as_str(),
    }
}

/// A stored id that may be NULL, as [`read_into`] reads it.
pub(super) fn read_opt_into<'r>(
    v: ValueRef<'r>,
    buf: &'r mut [u8; TEXT_LEN],
) -> FromSqlResult<Option<&'r str>> {
    match v {
        ValueRef::Null => Ok(None),
        other => read_into(other, buf).map(Some),
    }
}

/// A stored id as a row's column, for `Row::get`.
pub(super) struct StoredId(pub String);

impl rusqlite::types::FromSql for StoredId {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        read(v).map(StoredId)
    }
}

/// A function's argument returned as it is.
fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Registers [`ENCODE`] and [`DECODE`] on a connection.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags =
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(ENCODE, 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(t) => match uuid_bytes(t) {
                Some(b) => Value::Blob(b.to_vec()),
                None => owned(ValueRef::Text(t)),
            },
            other => owned(other),
        })
    })?;
    conn.create_scalar_function(DECODE, 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(b) if b.len() == 16 => {
                let mut buf = [0u8; TEXT_LEN];
                let bytes: &[u8; 16] = b.try_into().map_err(|_| rusqlite::Error::InvalidQuery)?;
                Value::Text(uuid_text(bytes, &mut buf).to_string())
            }
            other => owned(other),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_stored_as_bytes() {
        let v7 = crate::domain::call::new_id();
        assert!(matches!(Id::new(&v7), Id::Uuid(_)), "{v7}");
        for other in [
            v7.to_uppercase(),
            v7.replace('-', ""),
            format!("{{{v7}}}"),
            format!("{v7} "),
            v7.replacen('-', "_", 1),
            "run".into(),
            String::new(),
            "0190abcd-1234-7abc-8def-0123456789aG".into(),
            "é".repeat(18),
        ] {
            assert!(matches!(Id::new(&other), Id::Text(t) if t == other), "{other}");
        }
    }

    #[test]
    fn ids_read_back_byte_for_byte_and_order_as_their_texts() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (id)").unwrap();
        let mut ids: Vec<String> = (1..50u128)
            .map(|i| {
                uuid::Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)).to_string()
            })
            .collect();
        ids.push("00000000-0000-0000-0000-000000000000".into());
        ids.push("ffffffff-ffff-ffff-ffff-ffffffffffff".into());
        for id in &ids {
            conn.execute("INSERT INTO t VALUES (?1)", [Id::new(id)]).unwrap();
        }
        conn.execute("INSERT INTO t VALUES (?1)", [Id::new("Not-A-UUID")]).unwrap();
        let read: Vec<String> = conn
            .prepare("SELECT id FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok(r.get::<_, StoredId>(0)?.0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        ids.sort();
        assert_eq!(read[0], "Not-A-UUID", "text orders before blobs");
        assert_eq!(read[1..], ids[..]);
        let (blobs, as_text): (i64, String) = conn
            .query_row(
                "SELECT sum(typeof(id) = 'blob'), group_concat(weft_id_text(id), ',') FROM \
                 (SELECT id FROM t ORDER BY weft_id_text(id))",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(blobs, ids.len() as i64);
        let mut all = ids.clone();
        all.push("Not-A-UUID".into());
        all.sort();
        assert_eq!(as_text, all.join(","));
        let encoded: Vec<u8> = conn.query_row("SELECT weft_id(?1)", [&ids[0]], |r| r.get(0)).unwrap();
        assert!(matches!(Id::new(&ids[0]), Id::Uuid(b) if b[..] == encoded[..]));
    }
}
