//! The one place request bodies are read into their types, and the rule every body meets: a
//! field weft does not read is refused (400, naming it), never dropped. A body type's fields
//! are its table of known fields: each one is either read (it changes the answer as Weave's
//! does) or typed [`OutputOnly`] (accepted and documented as not read: it would only shape the
//! answer, e.g. `include_storage_size`). Any other field is refused unless it asks for nothing (`null`,
//! `""`, `[]` or `{}`: what Weave's clients send for an absent value).

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
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
