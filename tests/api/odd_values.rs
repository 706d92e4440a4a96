//! Values with quotes, backslashes, control characters and non-ASCII text are stored and
//! matched exactly, whatever the store (they travel as query parameters to ClickHouse).

use crate::helpers::*;

use serde_json::{Value, json};

const ODD: [&str; 6] = ["a'b", "c\\d", "e\tf\ng\rh", "i',j", "k\u{1}\u{8}\u{7f}l", "m\u{e9}\u{1f600}'\\'n"];

#[tokio::test]
async fn odd_ids_and_names_round_trip_and_filter_exactly() {
    let s = Server::start();
    for (i, id) in ODD.iter().enumerate() {
        let start = json!({"start": {"project_id": "acme/proj", "id": id, "trace_id": format!("t'{i}"),
            "op_name": format!("weave:///acme/proj/op/{id}:v"), "display_name": id,
            "started_at": format!("2026-01-01T00:00:0{i}Z"), "attributes": {}, "inputs": {"q": id}}});
        json_ok(post_v1(&s, "/call/start", &start)).await;
    }
    for id in ODD {
        let rows = jsonl(post_v1(
            &s,
            "/calls/stream_query",
            &json!({"project_id": "acme/proj", "filter": {"call_ids": [id]}}),
        ))
        .await;
        assert_eq!(rows.len(), 1, "{id:?}");
        assert_eq!(rows[0]["id"], id);
        assert_eq!(rows[0]["display_name"], id);
        assert_eq!(rows[0]["inputs"]["q"], id);
        let read = json_ok(post_v1(&s, "/call/read", &json!({"project_id": "acme/proj", "id": id}))).await;
        assert_eq!(read["call"]["id"], id);
    }
    let all = jsonl(post_v1(
        &s,
        "/calls/stream_query",
        &json!({"project_id": "acme/proj", "filter": {"call_ids": ODD, "op_names": [format!("weave:///acme/proj/op/{}:*", ODD[0])]}}),
    ))
    .await;
    assert_eq!(all.len(), 1, "the op prefix matches one op only");
    let deleted =
        json_ok(post_v1(&s, "/calls/delete", &json!({"project_id": "acme/proj", "call_ids": ODD}))).await;
    assert_eq!(deleted, json!({"num_deleted": 6}));
    let rest = jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": "acme/proj"}))).await;
    assert!(rest.is_empty(), "every odd call deleted: {rest:?}");
}

#[tokio::test]
async fn odd_run_filters_match_exactly() {
    let s = Server::start();
    let (e1, e2) = ("weave:///acme/proj/object/E'1:d", "weave:///acme/proj/object/E\\2:d");
    let m = "weave:///acme/proj/object/M\u{e9}:d";
    let r1 = s.create_run(e1, m).await;
    let r2 = s.create_run(e2, m).await;
    let ids = |rows: &[Value]| rows.iter().map(|r| r["evaluation_run_id"].clone()).collect::<Vec<_>>();
    let q = |k: &str, v: &str| format!("/evaluation_runs?{k}={}", urlencode(v));
    assert_eq!(ids(&jsonl(s.get(&q("evaluations", e1))).await), vec![json!(r1)]);
    assert_eq!(ids(&jsonl(s.get(&q("evaluations", e2))).await), vec![json!(r2)]);
    assert_eq!(ids(&jsonl(s.get(&q("models", m))).await), vec![json!(r1), json!(r2)]);
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Both stores keep the same times: 1900-01-01 to 2299-12-31 UTC (ClickHouse's `DateTime64`).
/// A start, an end or a price outside it is a 400 naming the field, and nothing is written.
#[tokio::test]
async fn times_outside_the_stored_range_are_refused_on_every_store() {
    let s = Server::start();
    let start = |id: &str, at: &str| {
        json!({"start": {"project_id": "acme/proj", "id": id, "trace_id": "t", "op_name": "op",
            "started_at": at, "attributes": {}, "inputs": {}}})
    };
    for (id, at) in [("c1", "1900-01-01T00:00:00Z"), ("c2", "2299-12-31T23:59:59.999999Z")] {
        json_ok(post_v1(&s, "/call/start", &start(id, at))).await;
    }
    for at in [
        "1899-12-31T23:59:59.999999Z",
        "0204-11-02T09:00:42.2+06:46",
        "1900-01-01T00:30:00+01:00",
        "2300-01-01T00:00:00Z",
    ] {
        let (status, body) = status_json(post_v1(&s, "/call/start", &start("bad", at))).await;
        assert_eq!(status, 400, "{at}: {body}");
        assert!(
            body["reason"]
                .as_str()
                .unwrap_or_default()
                .starts_with("started_at: time out of the stored range"),
            "{body}"
        );
    }
    let end = json!({"end": {"project_id": "acme/proj", "id": "c1", "ended_at": "2400-01-01T00:00:00Z",
        "output": null, "summary": {}}});
    let (status, body) = status_json(post_v1(&s, "/call/end", &end)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().starts_with("ended_at:"), "{body}");
    let price = json!({"project_id": "acme/proj", "costs": {"m": {"prompt_token_cost": 1.0,
        "completion_token_cost": 1.0, "effective_date": "1800-01-01T00:00:00Z"}}});
    let (status, body) = status_json(post_v1(&s, "/cost/create", &price)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().starts_with("effective_date:"), "{body}");
    let rows = jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": "acme/proj"}))).await;
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert!(rows[0]["ended_at"].is_null(), "the refused end wrote nothing");
    assert_eq!(rows[1]["started_at"], "2299-12-31T23:59:59.999999Z");
}
