//! Validation of request bodies and query strings, reporting problems the way FastAPI does.

use serde_json::{Map, Value, json};

use super::error::{Error, Issue, Result};

/// Most ids accepted in one request, in one list or filter.
pub const MAX_IDS: usize = 1000;

/// The one cap on the ids a request names for one-by-one work (deletes, ref reads): past
/// [`MAX_IDS`], a 413 naming the parameter.
pub fn check_ids<T>(name: &str, ids: &[T]) -> Result<()> {
    if ids.len() > MAX_IDS {
        return Err(Error::TooLarge(format!("Too many {name}: at most {MAX_IDS} allowed")));
    }
    Ok(())
}

/// Most `op_names` of a calls filter: each call is tested against every `:*` prefix, so the
/// work of a query grows with calls × names. (The id lists of a calls or objects filter have
/// no cap of their own: they are bound as one value and looked up by set or index.)
pub const MAX_OP_NAMES: usize = 10_000;

fn issue(kind: &'static str, loc: Vec<Value>, msg: &str, input: Value) -> Issue {
    Issue { kind, loc, msg: msg.to_string(), input, ctx: None }
}

/// Parses a JSON request body; an empty body is a `missing` 422, malformed JSON a
/// `json_invalid` 422 at the position and with the message Python's `json` module gives.
pub fn parse_json_body(bytes: &[u8]) -> Result<Value> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.is_empty() {
        return Err(Error::invalid(issue("missing", vec![json!("body")], "Field required", Value::Null)));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(bad) => {
                let pos = String::from_utf8_lossy(&bytes[..bad.valid_up_to()]).chars().count();
                let mut i =
                    issue("json_invalid", vec![json!("body"), json!(pos)], "JSON decode error", json!({}));
                i.ctx = Some(json!({ "error": "Invalid UTF-8" }));
                return Error::invalid(i);
            }
        };
        let (pos, msg) = match super::pyjson::python_error(&text) {
            Some((pos, msg)) => (pos, msg.to_string()),
            // Python would accept it (NaN, Infinity, lone surrogates); JSON does not.
            None => (char_offset(&text, e.line(), e.column()), "Expecting value".to_string()),
        };
        let mut i = issue("json_invalid", vec![json!("body"), json!(pos)], "JSON decode error", json!({}));
        i.ctx = Some(json!({ "error": msg }));
        Error::invalid(i)
    })
}

/// Converts serde_json's 1-based line/column to a 0-based character offset.
fn char_offset(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (n, l) in text.split('\n').enumerate() {
        if n + 1 == line {
            return offset + column.saturating_sub(1).min(l.chars().count());
        }
        offset += l.chars().count() + 1;
    }
    offset
}

/// Reads the fields of a JSON object body, collecting every problem before failing.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    whole: &'a Value,
    loc: Vec<Value>,
    issues: Vec<Issue>,
}

impl<'a> Fields<'a> {
    /// Starts reading `body`, which must be a JSON object (`loc` is where it sits).
    pub fn of(body: &'a Value, loc: &[&str]) -> Result<Self> {
        let loc: Vec<Value> = loc.iter().map(|s| json!(s)).collect();
        match body {
            Value::Object(obj) => Ok(Fields { obj, whole: body, loc, issues: Vec::new() }),
            other => Err(Error::invalid(issue(
                "model_attributes_type",
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                other.clone(),
            ))),
        }
    }

    fn at(&self, name: &str) -> Vec<Value> {
        let mut loc = self.loc.clone();
        loc.push(json!(name));
        loc
    }

    fn missing(&mut self, name: &str) {
        let loc = self.at(name);
        self.issues.push(issue("missing", loc, "Field required", self.whole.clone()));
    }

    fn wrong(&mut self, name: &str, kind: &'static str, msg: &str, input: &Value) {
        let loc = self.at(name);
        self.issues.push(issue(kind, loc, msg, input.clone()));
    }

    /// A required string field.
    pub fn req_str(&mut self, name: &str) -> String {
        match self.obj.get(name) {
            None => {
                self.missing(name);
                String::new()
            }
            Some(v) => self.string(name, v).unwrap_or_default(),
        }
    }

    /// An optional string field; `null` and absence are both `None`.
    pub fn opt_str(&mut self, name: &str) -> Option<String> {
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => self.string(name, v),
        }
    }

    fn string(&mut self, name: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong(name, "string_type", "Input should be a valid string", other);
                None
            }
        }
    }

    /// An optional object field; `null` and absence are both `None`.
    pub fn opt_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                let other = other.clone();
                self.wrong(name, "dict_type", "Input should be a valid dictionary", &other);
                None
            }
        }
    }

    /// A required object field (`null` is not one).
    pub fn req_object(&mut self, name: &str) -> Map<String, Value> {
        match self.obj.get(name) {
            None => {
                self.missing(name);
                return Map::new();
            }
            Some(Value::Null) => {
                self.wrong(name, "dict_type", "Input should be a valid dictionary", &Value::Null);
                return Map::new();
            }
            Some(_) => {}
        }
        self.opt_object(name).unwrap_or_default()
    }

    /// A required field of any JSON type (`null` included).
    pub fn req_any(&mut self, name: &str) -> Value {
        match self.obj.get(name) {
            None => {
                self.missing(name);
                Value::Null
            }
            Some(v) => v.clone(),
        }
    }

    /// A required number, as pydantic's lax `float` reads it: a JSON number, a bool, or a
    /// numeric string.
    pub fn req_number(&mut self, name: &str) -> f64 {
        let Some(v) = self.obj.get(name) else {
            self.missing(name);
            return 0.0;
        };
        let parsed = match v {
            Value::Number(n) => n.as_f64().ok_or(("float_type", "Input should be a valid number")),
            Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or((
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            )),
            _ => Err(("float_type", "Input should be a valid number")),
        };
        parsed.unwrap_or_else(|(kind, msg)| {
            let v = v.clone();
            self.wrong(name, kind, msg, &v);
            0.0
        })
    }

    /// An optional field of any JSON type.
    pub fn opt_any(&mut self, name: &str) -> Value {
        self.obj.get(name).cloned().unwrap_or(Value::Null)
    }

    /// An optional list of strings; `null` and absence are both empty.
    pub fn opt_str_list(&mut self, name: &str) -> Vec<String> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            let mut loc = self.at(name);
                            loc.push(json!(i));
                            self.issues.push(issue(
                                "string_type",
                                loc,
                                "Input should be a valid string",
                                other.clone(),
                            ));
                        }
                    }
                }
                out
            }
            Some(other) => {
                let other = other.clone();
                self.wrong(name, "list_type", "Input should be a valid list", &other);
                Vec::new()
            }
        }
    }

    /// An optional integer: a JSON integer, or a number without a fraction (as pydantic reads
    /// one); absence is `None`, `null` a 422 like any other value that is not an integer.
    pub fn opt_int(&mut self, name: &str) -> Option<i64> {
        let v = self.obj.get(name)?;
        let parsed = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)),
            _ => None,
        };
        if parsed.is_none() {
            let v = v.clone();
            let (kind, msg) = match v {
                Value::Number(_) => {
                    ("int_from_float", "Input should be a valid integer, got a number with a fractional part")
                }
                _ => ("int_type", "Input should be a valid integer"),
            };
            self.wrong(name, kind, msg, &v);
        }
        parsed
    }

    /// An optional boolean (a JSON `true` or `false`); absence and `null` are `default`.
    pub fn opt_bool(&mut self, name: &str, default: bool) -> bool {
        match self.obj.get(name) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                let other = other.clone();
                self.wrong(name, "bool_type", "Input should be a valid boolean", &other);
                default
            }
        }
    }

    /// A required list of objects (`list[dict]`): each item not an object is a 422 at its index.
    pub fn req_object_list(&mut self, name: &str) -> Vec<Value> {
        match self.obj.get(name) {
            None => {
                self.missing(name);
                Vec::new()
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_object() {
                        let mut loc = self.at(name);
                        loc.push(json!(i));
                        self.issues.push(issue(
                            "dict_type",
                            loc,
                            "Input should be a valid dictionary",
                            item.clone(),
                        ));
                    }
                }
                items.clone()
            }
            Some(other) => {
                let other = other.clone();
                self.wrong(name, "list_type", "Input should be a valid list", &other);
                Vec::new()
            }
        }
    }

    /// An optional list of records (a pydantic `list[Model] | None` whose model has only
    /// required string fields): each item must be an object holding every field of `fields` as
    /// a string; each problem is a 422 at the item's index (and field). The items are kept with
    /// those fields only. `null` and absence are both `None`.
    pub fn opt_records(&mut self, name: &str, fields: &[&str]) -> Option<Vec<Map<String, Value>>> {
        let items = match self.obj.get(name) {
            None | Some(Value::Null) => return None,
            Some(Value::Array(items)) => items,
            Some(other) => {
                let other = other.clone();
                self.wrong(name, "list_type", "Input should be a valid list", &other);
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut loc = self.at(name);
            loc.push(json!(i));
            let Value::Object(m) = item else {
                self.issues.push(issue(
                    "model_type",
                    loc,
                    "Input should be a valid dictionary or instance of a model",
                    item.clone(),
                ));
                continue;
            };
            let mut record = Map::new();
            for field in fields {
                let mut at = loc.clone();
                at.push(json!(field));
                match m.get(*field) {
                    Some(Value::String(s)) => {
                        record.insert((*field).to_string(), json!(s));
                    }
                    None => self.issues.push(issue("missing", at, "Field required", item.clone())),
                    Some(other) => self.issues.push(issue(
                        "string_type",
                        at,
                        "Input should be a valid string",
                        other.clone(),
                    )),
                }
            }
            out.push(record);
        }
        Some(out)
    }

    /// Ends reading: every collected problem becomes one 422.
    pub fn finish(self) -> Result<()> {
        if self.issues.is_empty() { Ok(()) } else { Err(Error::Validation(self.issues)) }
    }
}

/// The decoded pairs of a URL query string.
pub struct Query {
    /// The query string as received.
    raw: String,
    pairs: Vec<(Part, Part)>,
}

/// A key or value of a [`Query`]: a span of the raw string when it has no escapes, else
/// its decoded text.
enum Part {
    Raw(std::ops::Range<usize>),
    Decoded(String),
}

impl Query {
    /// Decodes a raw query string (`a=1&b=2`); `None` is an empty query.
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or("");
        let mut pairs = Vec::new();
        let mut at = 0;
        for piece in raw.split('&') {
            let start = at;
            at += piece.len() + 1;
            if piece.is_empty() {
                continue;
            }
            // A fold without early exit, which the compiler turns into wide compares.
            let escaped = piece.bytes().fold(false, |e, b| e | (b == b'%') | (b == b'+'));
            if escaped {
                let (k, v) = form_urlencoded::parse(piece.as_bytes()).into_owned().next().unwrap_or_default();
                pairs.push((Part::Decoded(k), Part::Decoded(v)));
            } else {
                // Unescaped pieces (ids, plain refs) are kept as spans: no copy per pair.
                let eq = piece.find('=').unwrap_or(piece.len());
                let value = (start + eq + 1).min(start + piece.len());
                pairs.push((Part::Raw(start..start + eq), Part::Raw(value..start + piece.len())));
            }
        }
        Query { raw: raw.to_string(), pairs }
    }

    fn text<'a>(&'a self, part: &'a Part) -> &'a str {
        match part {
            Part::Raw(span) => self.raw.get(span.clone()).unwrap_or_default(),
            Part::Decoded(text) => text,
        }
    }

    /// The decoded (key, value) pairs, in order.
    fn pairs(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (self.text(k), self.text(v)))
    }

    /// All values of an array parameter under any of `names`, repeated keys and comma-joined
    /// values alike; empty strings are dropped. More than [`MAX_IDS`] values is a 413.
    pub fn list(&self, names: &[&str]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (k, v) in self.pairs() {
            if names.contains(&k) {
                out.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
            }
        }
        if out.len() > MAX_IDS {
            return Err(Error::TooLarge(format!(
                "Too many values for {}: {} given, at most {MAX_IDS} allowed",
                names[0],
                out.len()
            )));
        }
        Ok(out)
    }

    /// Whether the parameter appears at all.
    pub fn has(&self, name: &str) -> bool {
        self.pairs().any(|(k, _)| k == name)
    }

    /// The last value of a scalar parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs().rev().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// A non-negative integer parameter; absent or empty is `None`. Values too large for the
    /// store are clamped (a limit that large means "all rows").
    pub fn opt_count(&self, name: &str) -> Result<Option<u64>> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let loc = vec![json!("query"), json!(name)];
        match parse_int(raw) {
            None => Err(Error::invalid(issue(
                "int_parsing",
                loc,
                "Input should be a valid integer, unable to parse string as an integer",
                json!(raw),
            ))),
            Some((true, _)) => {
                let mut i = issue(
                    "greater_than_equal",
                    loc,
                    "Input should be greater than or equal to 0",
                    json!(raw),
                );
                i.ctx = Some(json!({ "ge": 0 }));
                Err(Error::invalid(i))
            }
            Some((false, n)) => Ok(Some(n.min(i64::MAX as u64))),
        }
    }
}

/// Parses an integer the way pydantic does from a string: surrounding whitespace, a sign,
/// `_` between digits and trailing `.0` are allowed. Returns (negative, magnitude saturated).
fn parse_int(raw: &str) -> Option<(bool, u64)> {
    let s = raw.trim();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let s = match s.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
        Some(_) => return None,
        None => s,
    };
    if s.is_empty() || s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => n = n.saturating_mul(10).saturating_add(u64::from(b - b'0')),
            b'_' => {}
            _ => return None,
        }
    }
    Some((neg && n != 0, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_pydantic() {
        assert_eq!(parse_int(" 42 "), Some((false, 42)));
        assert_eq!(parse_int("1_000"), Some((false, 1000)));
        assert_eq!(parse_int("3.00"), Some((false, 3)));
        assert_eq!(parse_int("-0"), Some((false, 0)));
        assert_eq!(parse_int("-5"), Some((true, 5)));
        assert_eq!(parse_int("99999999999999999999999"), Some((false, u64::MAX)));
        for bad in ["", "abc", "1.5", "1e3", "_1", "1__0", "0x10", "."] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists_split_commas_and_repeat_keys() {
        let q = Query::parse(Some("models=a&models=b,c&model_refs=d&other=x&models="));
        assert_eq!(q.list(&["models", "model_refs"]).unwrap(), ["a", "b", "c", "d"]);
        let many = (0..1001).map(|i| format!("ids={i}")).collect::<Vec<_>>().join("&");
        assert!(matches!(Query::parse(Some(&many)).list(&["ids"]), Err(Error::TooLarge(_))));
    }

    #[test]
    fn queries_decode_as_form_urlencoding_does() {
        for raw in [
            "a=1&b=2",
            "evaluation_run_ids=0190a1b2-c3d4&evaluation_run_ids=0190a1b2-c3d5",
            "models=weave%3A%2F%2F%2Fe%2Fp%2Fobject%2FM%3Aabc&limit=10",
            "q=a+b&r=%E2%9C%93&s=%zz&t=%FF",
            "&&x&=y&z=&k==v&",
            "",
        ] {
            let expected: Vec<(String, String)> =
                form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
            let q = Query::parse(Some(raw));
            let pairs: Vec<(String, String)> = q.pairs().map(|(k, v)| (k.into(), v.into())).collect();
            assert_eq!(pairs, expected, "{raw}");
        }
        assert!(Query::parse(None).pairs().next().is_none());
    }

    #[test]
    fn json_error_position_is_a_char_offset() {
        let Err(Error::Validation(issues)) = parse_json_body(b"{\"a\": ") else { panic!() };
        assert_eq!(issues[0].loc, vec![json!("body"), json!(6)]);
        assert_eq!(issues[0].kind, "json_invalid");
    }
}
