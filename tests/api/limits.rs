//! Limits a user would expect: each answers with a documented 4xx and the server keeps serving.

use crate::helpers::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn raw_request(base: &str, request: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s
}

#[tokio::test]
async fn requests_beyond_the_bound_get_429_and_others_are_served_after() {
    let s = Server::start_with(tempfile::tempdir().unwrap(), &["--max-requests", "1"]);
    let auth = format!("Authorization: Bearer {}\r\n", s.key);
    // A request whose body never comes holds the only slot.
    let _holder = raw_request(
        &s.base,
        &format!(
            "POST /v2/acme/proj/evaluation_runs HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 100\r\n\r\n"
        ),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = s.get("/evaluation_runs").send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["reason"].is_string());
    drop(_holder);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get("/evaluation_runs").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn repeated_failed_authentication_is_slowed_down() {
    let s = Server::start();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let r = s.client.get(s.url("/evaluation_runs")).bearer_auth("wrong-key").send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..20].iter().all(|&c| c == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|&c| c == 429), "{statuses:?}");
    // The health check needs no credentials and keeps answering.
    assert_eq!(s.client.get(format!("{}/health", s.base)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_and_the_server_keeps_serving() {
    let s = Server::start();
    let huge = "x".repeat(200 * 1024);
    let mut conn = raw_request(&s.base, &format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n"));
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{}", &answer[..answer.len().min(80)]);
    assert_eq!(s.client.get(format!("{}/health", s.base)).send().await.unwrap().status(), 200);
}

/// Reads what the server sends until it closes the connection; returns it and how long it took.
fn read_until_closed(conn: &mut TcpStream) -> (String, Duration) {
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_disconnected_at_the_deadline() {
    let s = Server::start_with(tempfile::tempdir().unwrap(), &["--client-timeout", "1"]);
    let mut conn = raw_request(&s.base, "GET /health HTTP/1.1\r\nHost: x\r\n");
    let (answer, waited) = read_until_closed(&mut conn);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(8), "{waited:?}");
    // An idle keep-alive connection is closed at the same deadline.
    let mut idle = raw_request(&s.base, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (answer, waited) = read_until_closed(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(8), "{waited:?}");
    assert_eq!(s.client.get(format!("{}/health", s.base)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let s = Server::start_with(tempfile::tempdir().unwrap(), &["--client-timeout", "1"]);
    let auth = format!("Authorization: Bearer {}\r\n", s.key);
    let json = format!(
        "POST /v2/acme/proj/evaluation_runs HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 100\r\n\r\n{{\"evalu"
    );
    let multipart = format!(
        "POST /file/create HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1000\r\n\
         Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n\
         Content-Disposition: form-data; name=\"project_id\"\r\n\r\nacme/proj\r\n--b\r\n"
    );
    for request in [json, multipart] {
        let mut conn = raw_request(&s.base, &request);
        let (answer, waited) = read_until_closed(&mut conn);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(body["reason"], "The request body did not arrive in time");
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(8), "{waited:?}");
    }
    // Nothing was written, and the server goes on serving.
    assert_eq!(jsonl(s.get("/evaluation_runs")).await.len(), 0);
}

#[tokio::test]
async fn deep_json_long_names_and_long_refs_are_refused_and_nothing_is_written() {
    let s = Server::start();
    let (e, m) = ("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let body = format!(r#"{{"evaluation": "{e}", "model": "{m}", "x": {deep}}}"#);
    let resp = s.client.post(s.url("/evaluation_runs")).bearer_auth(&s.key).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 422);
    let detail: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(detail["detail"][0]["type"], "json_invalid", "{detail}");

    let long_project = "p".repeat(257);
    let url = format!("{}/v2/acme/{long_project}/evaluation_runs", s.base);
    let (status, body) = status_json(s.client.get(url).bearer_auth(&s.key)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], serde_json::json!(["path", "project"]));

    let long_ref = format!("weave:///acme/proj/object/{}:1", "E".repeat(5000));
    let (status, body) =
        status_json(s.post("/evaluation_runs", &serde_json::json!({"evaluation": long_ref, "model": m})))
            .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "Ref too long: at most 4096 bytes");
    // A name or ref just within the limits is accepted.
    let at_limit = format!("weave:///acme/proj/object/{}:1", "E".repeat(4096 - 28));
    assert_eq!(at_limit.len(), 4096);
    json_ok(s.post("/evaluation_runs", &serde_json::json!({"evaluation": at_limit, "model": m}))).await;
    let rows = jsonl(s.get("/evaluation_runs")).await;
    assert_eq!(rows.len(), 1, "only the run within the limits is stored");
}
