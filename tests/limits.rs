//! Limits a user would expect: each answers with a documented 4xx and the server keeps serving.

mod common;
use common::*;

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
