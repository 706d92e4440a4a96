//! Small points of the wire format where weft answers as Weave's server does.

use crate::helpers::*;

use serde_json::json;

async fn raw(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn malformed_json_is_located_as_python_does() {
    let s = Server::start();
    for (body, pos, msg) in [
        (r#"{"evaluation":"a","model":"b""#, 29, "Expecting ',' delimiter"),
        (r#"{"evaluation":"a",}"#, 18, "Expecting property name enclosed in double quotes"),
        (r#"{"evaluation":"é",}"#, 18, "Expecting property name enclosed in double quotes"),
        ("   ", 3, "Expecting value"),
    ] {
        let (status, text) = raw(s.post_raw("/evaluation_runs", body)).await;
        assert_eq!(status, 422, "{body}");
        let expected = json!({"detail": [{"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error",
            "input": {}, "ctx": {"error": msg}}]});
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), expected, "{body}");
    }
    // A UTF-8 byte order mark is skipped.
    let (status, text) = raw(s
        .client
        .post(s.url("/evaluation_runs"))
        .basic_auth("api", Some(&s.key))
        .body(b"\xEF\xBB\xBF{}".to_vec()))
    .await;
    assert_eq!(status, 422);
    assert!(text.contains("\"missing\""), "{text}");
}

#[tokio::test]
async fn malformed_weave_uris_are_400() {
    let s = Server::start();
    let (status, text) =
        raw(s.post("/evaluation_runs", &json!({"evaluation": "weave:///x", "model": "m"}))).await;
    assert_eq!((status, text.as_str()), (400, r#"{"reason":"Invalid URI: weave:///x"}"#));
    // Plain strings are not refs and are accepted, as in Weave.
    let (status, _) =
        raw(s.post("/evaluation_runs", &json!({"evaluation": "hello", "model": "world"}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn score_validation_reports_every_field() {
    let s = Server::start();
    let (status, body) = status_json(s.post("/scores", &json!({"prediction_id": 1, "scorer": 2}))).await;
    assert_eq!(status, 422);
    let kinds: Vec<&str> =
        body["detail"].as_array().unwrap().iter().map(|d| d["type"].as_str().unwrap()).collect();
    // Any value is a scorer's output; only a missing one is refused.
    assert_eq!(kinds, ["string_type", "string_type", "missing"]);
}

#[tokio::test]
async fn a_trailing_slash_redirects_to_the_route() {
    let s = Server::start();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = client.get(format!("{}/v2/acme/proj/evaluation_runs/?limit=1", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()["location"], "/v2/acme/proj/evaluation_runs?limit=1");
}

#[tokio::test]
async fn a_display_name_replaces_the_trace_name_in_derived_summaries() {
    let s = Server::start();
    let start = json!({"start": {"project_id": "acme/proj", "id": "c1", "trace_id": "t", "op_name": "weave:///acme/proj/op/f:1",
        "display_name": "my f", "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {}}});
    json_ok(s.client.post(format!("{}/call/start", s.base)).basic_auth("api", Some(&s.key)).json(&start))
        .await;
    let calls = jsonl(
        s.client
            .post(format!("{}/calls/stream_query", s.base))
            .basic_auth("api", Some(&s.key))
            .json(&json!({"project_id": "acme/proj"})),
    )
    .await;
    assert_eq!(calls[0]["summary"]["weave"], json!({"status": "running", "display_name": "my f"}));
}
