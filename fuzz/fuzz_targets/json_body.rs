//! JSON request bodies: `parse_json_body`, then every request validator and wire type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft::domain::eval_run::{CreateRun, FinishRun};
use weft::domain::prediction::CreatePrediction;
use weft::domain::score::CreateScore;
use weft::domain::call_query::CallsQueryReq;
use weft::domain::trace::{CallComplete, CallEnd, CallStart, UpsertItem, from_body, parse_time};
use weft::domain::validate::parse_json_body;

fn wire(v: &Value) {
    if let Ok(s) = from_body::<CallStart>(v.clone()) {
        let _ = parse_time(&s.started_at);
    }
    if let Ok(e) = from_body::<CallEnd>(v.clone()) {
        let _ = parse_time(&e.ending.ended_at);
    }
    if let Ok(c) = from_body::<CallComplete>(v.clone()) {
        let _ = parse_time(&c.start.started_at);
        let _ = parse_time(&c.ending.ended_at);
    }
    let _ = from_body::<UpsertItem>(v.clone());
    let _ = from_body::<Vec<UpsertItem>>(v.clone());
    if let Ok(q) = from_body::<CallsQueryReq>(v.clone()) {
        let _ = q.query();
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json_body(data) else { return };
    let _ = CreateRun::from_json(&body);
    let _ = FinishRun::from_json(&body);
    let _ = CreatePrediction::from_json(&body);
    let _ = CreateScore::from_json(&body);
    wire(&body);
    // The trace API nests calls one level down (`{"start": {...}}`, `{"end": {...}}`).
    if let Value::Object(m) = &body {
        for inner in m.values() {
            wire(inner);
        }
    }
});
