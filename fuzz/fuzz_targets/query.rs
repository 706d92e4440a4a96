//! Query strings: `Query::parse` with array parameters (`list`) and counts (`opt_count`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft::domain::validate::{MAX_IDS, Query};

const LISTS: [&[&str]; 4] = [
    &["evaluations", "evaluation_refs"],
    &["models", "model_refs"],
    &["evaluation_run_ids"],
    &["prediction_ids", "score_ids"],
];

fuzz_target!(|data: &[u8]| {
    // The first byte chooses between an absent and a present query string.
    let Some((&first, rest)) = data.split_first() else { return };
    let raw = String::from_utf8_lossy(rest);
    let q = Query::parse((first & 1 == 1).then_some(raw.as_ref()));
    for names in LISTS {
        if let Ok(values) = q.list(names) {
            assert!(values.len() <= MAX_IDS);
            assert!(values.iter().all(|v| !v.is_empty() && !v.contains(',')));
        }
    }
    for name in ["limit", "offset", "", "x"] {
        if let Ok(Some(n)) = q.opt_count(name) {
            assert!(n <= i64::MAX as u64);
        }
        let _ = q.has(name);
        let _ = q.get(name);
    }
});
