//! `calls/complete` batches written while their body is still being read (a batch alone):
//! bad input gets the answer reading the body whole gives, in the same order (the body's
//! shape, then unread fields, then the calls' projects, then a call that cannot be made), and
//! a refused batch writes nothing, however far into it the problem is.

use serde_json::{Value, json};

use crate::helpers::*;

const P: &str = "acme/proj";

fn call(i: usize) -> Value {
    json!({"project_id": P, "id": format!("c{i}"), "trace_id": "t", "op_name": "op",
        "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z", "attributes": {"a": {"b": 1}},
        "inputs": {"i": i}, "output": i, "summary": {"s": {"t": [1]}}})
}

/// 300 calls, with `edit` applied: well past the first chunks the writer gets.
fn batch(edit: impl FnOnce(&mut Vec<Value>)) -> Vec<Value> {
    let mut calls: Vec<Value> = (0..300).map(call).collect();
    edit(&mut calls);
    calls
}

async fn stored(s: &Server) -> usize {
    jsonl(post_v1(s, "/calls/stream_query", &json!({"project_id": P}))).await.len()
}

async fn send(s: &Server, body: String) -> (u16, Value) {
    let req = s.client.post(s.url("/calls/complete")).basic_auth("api", Some(&s.key));
    status_json(req.header("content-type", "application/json").body(body)).await
}

async fn send_batch(s: &Server, calls: Vec<Value>) -> (u16, Value) {
    send(s, json!({"batch": calls}).to_string()).await
}

#[tokio::test]
async fn bad_input_in_a_streamed_batch_is_answered_in_the_order_of_a_batch_read_whole() {
    let s = Server::start();
    let reason = |v: &Value| v["reason"].as_str().unwrap_or_default().to_string();
    let mismatch = |c: &mut Value| c["project_id"] = json!("acme/other");
    let unmade = |c: &mut Value| c["started_at"] = json!("not a time");

    // A call that cannot be made comes first, a project that is not the path's later: the
    // project is the answer.
    let (status, err) = send_batch(
        &s,
        batch(|b| {
            unmade(&mut b[100]);
            mismatch(&mut b[250]);
        }),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(reason(&err).contains("acme/other does not match the path"), "{err}");

    // A project that is not the path's, then an unread field: the field.
    let (status, err) = send_batch(
        &s,
        batch(|b| {
            mismatch(&mut b[100]);
            b[250]["bogus"] = json!({"x": 1});
        }),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(reason(&err).contains("batch[250].bogus"), "{err}");
    assert!(!reason(&err).contains("match"), "{err}");

    // An unread field, then a value of the wrong type: the shape (422).
    let (status, err) = send_batch(
        &s,
        batch(|b| {
            b[100]["bogus"] = json!(1);
            b[250]["op_name"] = json!(5);
        }),
    )
    .await;
    assert_eq!(status, 422, "{err}");

    // Any of those, then JSON cut short: the JSON's error.
    let mut body = json!({"batch": batch(|b| {
        mismatch(&mut b[10]);
        unmade(&mut b[20]);
        b[30]["bogus"] = json!(1);
    })})
    .to_string();
    body.truncate(body.len() - 10);
    let (status, err) = send(&s, body).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["detail"][0]["type"], "json_invalid", "{err}");

    // A field the body does not know, outside the batch: named.
    let body = json!({"batch": batch(|_| {}), "extra": [1]}).to_string();
    let (status, err) = send(&s, body).await;
    assert_eq!(status, 400, "{err}");
    assert!(reason(&err).contains("extra"), "{err}");

    // A call that cannot be made, late: its error.
    let (status, err) = send_batch(&s, batch(|b| unmade(&mut b[299]))).await;
    assert_eq!(status, 422, "{err}");

    // No batch, or a batch that is not one: the shape.
    for body in ["{}", r#"{"batch": null}"#, r#"{"batch": 3}"#, ""] {
        let (status, err) = send(&s, body.to_string()).await;
        assert_eq!(status, 422, "{body}: {err}");
    }
    assert_eq!(stored(&s).await, 0, "no refused batch wrote anything");

    // Unknown fields that ask for nothing pass, in a call or beside the batch: written whole.
    let body = json!({"batch": batch(|b| b[100]["bogus"] = Value::Null), "extra": {}}).to_string();
    let (status, err) = send(&s, body).await;
    assert_eq!(status, 200, "{err}");
    assert_eq!(stored(&s).await, 300);
    // As does a body with a byte order mark.
    let mut body = "\u{feff}".to_string();
    body.push_str(&json!({"batch": [call(1000)]}).to_string());
    let (status, err) = send(&s, body).await;
    assert_eq!(status, 200, "{err}");
    assert_eq!(stored(&s).await, 301);
    // A body serde reads as the struct's fields in a list is read so whole too (and written).
    let body = json!([[call(1001)]]).to_string();
    let (status, err) = send(&s, body).await;
    assert_eq!(status, 200, "{err}");
    assert_eq!(stored(&s).await, 302);
}
