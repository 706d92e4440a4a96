//! Digests: canonical JSON and value digests of arbitrary JSON, and Python's JSON errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft::domain::digest::{canonical_json, value_digest};
use weft::domain::pyjson::python_error;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = serde_json::from_str::<Value>(&text);
    let py = python_error(&text);
    if let Some((pos, _)) = py {
        assert!(pos <= text.chars().count(), "error position past the end of {text:?}");
    }
    match &parsed {
        Ok(v) => {
            // What serde_json accepts, Python's json accepts too (NaN and Infinity aside).
            if !text.contains("NaN") && !text.contains("Infinity") {
                assert_eq!(py, None, "python_error rejects JSON serde_json accepts: {text:?}");
            }
            let canonical = canonical_json(v);
            assert!(canonical.is_ascii(), "canonical JSON is not ASCII: {canonical:?}");
            // The canonical form is JSON that reads back to the same value.
            let back: Value = serde_json::from_str(&canonical)
                .unwrap_or_else(|e| panic!("canonical JSON {canonical:?} does not parse: {e}"));
            assert_eq!(&back, v, "canonical JSON {canonical:?} changes the value");
            assert_eq!(canonical_json(&back), canonical, "canonical JSON is not stable");
            let d = value_digest(v);
            assert_eq!(d.len(), 43);
            assert!(d.bytes().all(|b| b.is_ascii_alphanumeric()), "digest {d:?}");
        }
        Err(_) => {}
    }
});
