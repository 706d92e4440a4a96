//! Weave refs: `Ref::parse`, `check_ref` and `ref_name` on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft::domain::refs::{Ref, Target, check_ref, ref_name};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = Ref::parse(text);
    // check_ref accepts anything that is not a `weave:///` URI, and such a URI iff it parses.
    let checked = check_ref(text);
    if text.starts_with("weave:///") {
        assert_eq!(checked.is_ok(), parsed.is_ok(), "check_ref and Ref::parse disagree on {text:?}");
    } else {
        assert!(checked.is_ok(), "check_ref rejected a non-weave value {text:?}");
    }
    let name = ref_name(text);
    if let Ok(r) = &parsed {
        // A parsed ref always has an `entity/project` id.
        assert!(r.project_id.contains('/'));
        // Object and op refs always have a name.
        if matches!(r.target, Target::Object { .. } | Target::Op { .. }) {
            assert!(name.is_some(), "no ref_name for a parsed object ref {text:?}");
        }
    }
    if let Some(n) = name {
        assert!(!n.is_empty());
    }
    // The internal form goes through ref_name too.
    if let Some(rest) = text.strip_prefix("weave:///") {
        let _ = ref_name(&format!("weave-trace-internal:///{rest}"));
    }
});
