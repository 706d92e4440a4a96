//! The one place request bodies are read into their types, and the rule every body meets: a
//! field weft does not read is refused (400, naming it), never dropped. A body type's fields
//! are its table of known fields: each one is either read (it changes the answer as Weave's
//! does) or typed [`OutputOnly`] (accepted and documented as not read: it would only shape the
//! answer, e.g. `include_storage_size`). Any other field is refused unless it asks for nothing (`null`,
//! `""`, `[]` or `{}`: what Weave's clients send for an absent value).

use serde::de::{
    Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Value, json};

use super::error::{Error, Issue, Result};

/// A field accepted and not read: it only shapes the answer in Weave (which columns, costs,
/// storage sizes...), and weft answers without it. Every use is listed in
/// `docs/differences.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOnly;

impl<'de> Deserialize<'de> for OutputOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Read as a value of any shape, so that nothing inside it counts as an unread field.
        Value::deserialize(d).map(|_| OutputOnly)
    }
}

/// An integer of a request body, read as Weave reads one: a JSON integer, or a number without
/// a fractional part (`3.0`) that fits. Anything else is the usual "expected i64" error.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    use serde::de::{Error as _, Unexpected};
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if let Some(u) = n.as_u64() {
        return Err(D::Error::invalid_value(Unexpected::Unsigned(u), &"i64"));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // The range of i64, exactly: -2^63 inclusive, 2^63 exclusive.
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        return Ok(f as i64);
    }
    Err(D::Error::invalid_type(Unexpected::Float(f), &"i64"))
}

/// An optional [`int`]: `null` or absent is `None` (with `#[serde(default)]`).
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Int(#[serde(deserialize_with = "int")] i64);
    Ok(Option::<Int>::deserialize(d)?.map(|Int(i)| i))
}

/// One step of a path into a body.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_ignored::Path<'_>, out: &mut Vec<Step>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            steps(parent, out);
            out.push(Step::Index(*index));
        }
        Path::Map { parent, key } => {
            steps(parent, out);
            out.push(Step::Key(key.clone()));
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            steps(parent, out)
        }
    }
}

fn show(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn lookup<'v>(v: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, step| match step {
        Step::Key(k) => cur.get(k),
        Step::Index(i) => cur.get(i),
    })
}

fn shape_error(e: impl std::fmt::Display) -> Error {
    Error::invalid(Issue {
        kind: "value_error",
        loc: vec![json!("body")],
        msg: e.to_string(),
        input: Value::Null,
        ctx: None,
    })
}

/// Reads `T` from `de`, then refuses the fields it did not read. `raw` gives the body as a
/// value, asked for only when some field was not read, to let those that ask for nothing pass
/// (`null`, `""`, `[]`, `{}`: a `null` is an absent field in Weave's API).
fn read<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    de: D,
    raw: impl FnOnce() -> Option<Value>,
) -> Result<T>
where
    D::Error: std::fmt::Display,
{
    let mut unread: Vec<Vec<Step>> = Vec::new();
    let value: T = serde_ignored::deserialize(de, |p| {
        let mut s = Vec::new();
        steps(&p, &mut s);
        unread.push(s);
    })
    .map_err(shape_error)?;
    if unread.is_empty() {
        return Ok(value);
    }
    let raw = raw().unwrap_or(Value::Null);
    // Nothing asked for: a `null`, an empty string, list or object.
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    let refused: Vec<String> =
        unread.iter().filter(|p| !lookup(&raw, p).is_none_or(empty)).map(|p| show(p)).collect();
    if refused.is_empty() {
        return Ok(value);
    }
    Err(Error::BadRequest(format!(
        "Unsupported field{} {}: weft does not implement {}, and refuses rather than ignores it",
        if refused.len() == 1 { "" } else { "s" },
        refused.join(", "),
        if refused.len() == 1 { "it" } else { "them" },
    )))
}

/// The module's rule for a body read field by field (the v2 API's, through
/// [`super::validate::Fields`]): a field of `body` not among `known` is refused (400, naming
/// it) unless it asks for nothing.
pub fn refuse_unread(body: &Value, known: &[&str]) -> Result<()> {
    let Some(obj) = body.as_object() else {
        return Ok(());
    };
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    let refused: Vec<&str> = obj
        .iter()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !empty(v))
        .map(|(k, _)| k.as_str())
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::BadRequest(format!(
        "Unsupported field{} {}: weft does not implement {}, and refuses rather than ignores it",
        if refused.len() == 1 { "" } else { "s" },
        refused.join(", "),
        if refused.len() == 1 { "it" } else { "them" },
    )))
}

/// Reads a body already parsed as JSON into `T` (see the module's rule); a mismatch is a 422.
pub fn from_value<T: DeserializeOwned>(body: Value) -> Result<T> {
    let copy = body.clone();
    read(body, move || Some(copy))
}

/// Reads a body's JSON text into `T` in one pass (see the module's rule); a mismatch is a 422.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = read(&mut de, || serde_json::from_slice(bytes).ok())?;
    de.end().map_err(shape_error)?;
    Ok(value)
}

/// Reads a request body's bytes into `T`, as the API answers bad input: invalid JSON is a 422
/// placing the error as Weave's server does, a mismatch a 422 naming the problem, an unread
/// field a 400 naming it.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // One pass into `T` when the body is good; the error path parses again for its report.
    match from_slice(json) {
        Err(Error::Validation(_)) => from_value(super::validate::parse_json_body(bytes)?),
        read => read,
    }
}

/// Reads a body's bytes (a byte order mark skipped) through `seed`, which may hand on what
/// it reads while the rest is read, without following every key of every value as
/// [`from_slice`] does to find unread fields: `seed` notes them itself, reading each struct
/// with [`struct_noting_unknown`]. Only a read that is `Ok` with nothing noted stands; for
/// any other, [`from_bytes`] gives the answer.
pub fn from_slice_noting<'de, S: DeserializeSeed<'de>>(bytes: &'de [u8], seed: S) -> Result<S::Value> {
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = seed.deserialize(&mut de).map_err(shape_error)?;
    de.end().map_err(shape_error)?;
    Ok(value)
}

/// Reads a `T` from `de`, setting `unknown` if the body names a field `T` does not know (or
/// gives the struct as a list). For a struct whose every field is read whole (strings,
/// numbers, JSON values, [`OutputOnly`]): only its own fields are watched, nothing inside
/// them, so a field of a nested struct that went unread would not be noted.
pub fn struct_noting_unknown<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    de: D,
    unknown: &mut bool,
) -> std::result::Result<T, D::Error> {
    T::deserialize(Noting { de, unknown })
}

/// The deserializer of a struct read by [`struct_noting_unknown`].
struct Noting<'u, D> {
    de: D,
    unknown: &'u mut bool,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Noting<'_, D> {
    type Error = D::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, D::Error> {
        self.de.deserialize_struct(name, fields, Fields { visitor, unknown: self.unknown })
    }

    /// Anything but a struct is not watched: noted, so that it is read again in full.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, D::Error> {
        *self.unknown = true;
        self.de.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The visitor of a struct read by [`struct_noting_unknown`]: its fields' values are watched.
struct Fields<'u, V> {
    visitor: V,
    unknown: &'u mut bool,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Fields<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<V::Value, A::Error> {
        self.visitor.visit_map(FieldValues { map, unknown: self.unknown })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<V::Value, A::Error> {
        *self.unknown = true;
        self.visitor.visit_seq(seq)
    }
}

/// A struct's fields, each value read through [`Field`].
struct FieldValues<'u, A> {
    map: A,
    unknown: &'u mut bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FieldValues<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, A::Error> {
        self.map.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> std::result::Result<S::Value, A::Error> {
        self.map.next_value_seed(Field { seed, unknown: &mut *self.unknown })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// One field's value: read as the struct reads it; a field the struct does not know is read
/// as ignored, which is noted.
struct Field<'u, S> {
    seed: S,
    unknown: &'u mut bool,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Field<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> std::result::Result<S::Value, D::Error> {
        self.seed.deserialize(FieldValue { de, unknown: self.unknown })
    }
}

/// The deserializer of one field's value ([`Field`]): the body's own, but for noting a value
/// read as ignored.
struct FieldValue<'u, D> {
    de: D,
    unknown: &'u mut bool,
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> std::result::Result<V::Value, D::Error> {
                self.de.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for FieldValue<'_, D> {
    type Error = D::Error;

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, D::Error> {
        *self.unknown = true;
        self.de.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }

    forward! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16(); deserialize_i32();
        deserialize_i64(); deserialize_i128(); deserialize_u8(); deserialize_u16(); deserialize_u32();
        deserialize_u64(); deserialize_u128(); deserialize_f32(); deserialize_f64(); deserialize_char();
        deserialize_str(); deserialize_string(); deserialize_bytes(); deserialize_byte_buf();
        deserialize_option(); deserialize_unit(); deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str); deserialize_seq();
        deserialize_tuple(len: usize); deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map(); deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: Option<i64>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Option<Inner>,
        items: Vec<Inner>,
        shape: Option<OutputOnly>,
    }

    #[test]
    fn unread_fields_are_refused_by_name() {
        let ok: Outer =
            from_slice(br#"{"inner": {"a": 1}, "items": [], "shape": {"x": [1]}, "gone": null}"#).unwrap();
        assert_eq!(ok.items.len(), 0);
        let Err(Error::BadRequest(msg)) =
            from_slice::<Outer>(br#"{"inner": {"a": 1, "b": 2}, "items": [{"a": 1}, {"c": true}]}"#)
        else {
            panic!("accepted")
        };
        assert!(msg.contains("inner.b") && msg.contains("items[1].c"), "{msg}");
        assert!(matches!(from_value::<Outer>(json!({"items": [], "z": 1})), Err(Error::BadRequest(_))));
        assert!(matches!(from_value::<Outer>(json!({"items": 3})), Err(Error::Validation(_))));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Flat {
        a: Option<i64>,
        v: Option<Value>,
        out: Option<OutputOnly>,
    }

    #[test]
    fn a_struct_read_noting_unknown_fields_notes_its_own_only() {
        let read = |text: &str| {
            let mut unknown = false;
            let mut de = serde_json::Deserializer::from_str(text);
            let flat = struct_noting_unknown::<Flat, _>(&mut de, &mut unknown).map(|f| f.a);
            (flat.ok().flatten(), unknown)
        };
        // Keys at any depth inside a field's value are the value's.
        assert_eq!(read(r#"{"a": 1, "v": {"x": {"y": [1, {"z": 2}]}}, "out": {"w": 1}}"#), (Some(1), false));
        assert_eq!(read(r#"{"a": 1, "b": null}"#), (Some(1), true));
        assert_eq!(read(r#"{"v": 1, "b": {"c": 1}, "a": 2}"#), (Some(2), true));
        // A struct given as a list is noted, to be read again in full.
        assert_eq!(read("[3, null, null]"), (Some(3), true));
        // What `from_slice` refuses, it notes.
        let text = r#"{"a": 1, "v": {"k": 1}, "zz": [1]}"#;
        assert!(matches!(from_slice::<Flat>(text.as_bytes()), Err(Error::BadRequest(_))));
        assert_eq!(read(text), (Some(1), true));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Window {
        #[serde(default, deserialize_with = "opt_int")]
        limit: Option<i64>,
    }

    #[test]
    fn integers_without_a_fraction_are_read_as_weave_reads_them() {
        let limit = |v: Value| from_value::<Window>(json!({ "limit": v })).map(|w| w.limit);
        assert_eq!(limit(json!(3)).unwrap(), Some(3));
        assert_eq!(limit(json!(3.0)).unwrap(), Some(3));
        assert_eq!(limit(json!(-2.0)).unwrap(), Some(-2));
        assert_eq!(limit(Value::Null).unwrap(), None);
        assert_eq!(from_value::<Window>(json!({})).unwrap().limit, None);
        for bad in [json!(3.5), json!(1e19), json!(u64::MAX), json!("3"), json!([3])] {
            assert!(matches!(limit(bad.clone()), Err(Error::Validation(_))), "{bad}");
        }
    }
}
