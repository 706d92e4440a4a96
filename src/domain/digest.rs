//! Weave-compatible digests: the canonical JSON of Python's `json.dumps(v, sort_keys=True)`,
//! hashed with SHA-256 into Weave's 43-character URL-safe form.

use std::fmt::Write as _;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Digest of bytes: SHA-256, URL-safe base64 with `-`→`X`, `_`→`Y`, no padding.
pub fn bytes_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash).replace('-', "X").replace('_', "Y")
}

/// Digest of a JSON value: [`bytes_digest`] of its [`canonical_json`].
pub fn value_digest(v: &Value) -> String {
    bytes_digest(canonical_json(v).as_bytes())
}

/// Digest of a table: hex SHA-256 over its row digests, concatenated.
pub fn table_digest<'a>(row_digests: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for d in row_digests {
        h.update(d.as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// SHA-256 of bytes, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// JSON as Python's `json.dumps(v, sort_keys=True)` writes it: `", "` and `": "` separators,
/// sorted keys, ASCII-only strings, floats in Python's `repr` form.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                write_float(out, n.as_f64().unwrap_or(0.0));
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_value(out, &m[k]);
            }
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-trip digits, in positional form for decimal
/// exponents from -4 to 15, else as `d.ddde±XX`.
fn write_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "1e16", "0e0".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected values were produced by Python 3.11's json.dumps(v, sort_keys=True).
    #[test]
    fn canonical_json_matches_python() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"a":[1.0,2.5,1e16,1.5e-7,-0.0,123456789012345678],"é":"ü\u2028😀\u007f\"\\\n"}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a": [1.0, 2.5, 1e+16, 1.5e-07, -0.0, 123456789012345678], "b": 1, "\u00e9": "\u00fc\u2028\ud83d\ude00\u007f\"\\\n"}"#
        );
        assert_eq!(value_digest(&v), "s6BybI0DEbFvB5U5n1FQ5V9eJY8EPujRisbOhBrokuc");
        for (v, text, digest) in [
            (json!({"x": 1}), r#"{"x": 1}"#, "YTYlqmU0Pbsbmr5qusZ3P1yRvWDT8vX34urmnh24sic"),
            (json!([]), "[]", "T1PNoYwrqgwDVLtfmj7L5e0Sq02OEbqHPC8RFhICuUU"),
            (json!({}), "{}", "RBNvo1WzZ4oRRq0W9XhknpT7T8If536DEMBg9hyqY4o"),
            (json!(null), "null", "dCNOmKYnSYX12vHzasLXiswzlGT5UHA7jAGYkvmCuQs"),
            (json!(0.1), "0.1", "FL5LRfGODYxntPcZtRRO7ohJfkE3CdEdhbCW2OI0YxA"),
            (json!(1e-5), "1e-05", "WpUw08bVXq1rqKYhb7jkON8jhlEoNwsuwU72IrtfLsk"),
            (json!(0.0001), "0.0001", "5Tmuusf9LtirqIVP7eqmVDaWL47hyCNBs5RpjwhbZJY"),
            (
                json!(12345678901234567890.0),
                "1.2345678901234567e+19",
                "20X4G6CFYMeZFnYIKdBOYpyGf03kyKSFO4LtbnRkUOc",
            ),
        ] {
            assert_eq!(canonical_json(&v), text);
            assert_eq!(value_digest(&v), digest);
        }
    }

    #[test]
    fn table_digest_is_hex_sha256_of_row_digests() {
        let rows = [json!({"x": 1}), json!({"x": 2})];
        let digests: Vec<String> = rows.iter().map(value_digest).collect();
        assert_eq!(digests[1], "JPVyYA4VDTIwE4OFqgAGyhuZO0a7Qn90bMaQyY2TJBM");
        assert_eq!(
            table_digest(digests.iter().map(String::as_str)),
            "ed8bd1f8cb829eeb6b3fef95a7cd8401f7e5af825c4c9aa144a1ceb9f32c3654"
        );
        assert_eq!(table_digest([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
