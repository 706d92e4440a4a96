//! Requests a hostile web page or client can send: redirects that would leave the server,
//! cross-site form posts, oversized request heads. Each is refused with a documented status,
//! and what the official client sends still works.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

/// Sends `request` as is on a new connection and returns everything the server answers until
/// it closes the connection.
fn raw(base: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may refuse before it has read everything; what it answers is what counts.
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET path` with `Connection: close`; returns (status, Location header, body).
fn get_raw(base: &str, path: &str) -> (u16, Option<String>, String) {
    let answer = raw(base, format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let location = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("location")))
        .map(|(_, v)| v.trim().to_string());
    (status, location, body.to_string())
}

#[tokio::test]
async fn trailing_slash_redirects_never_leave_the_server() {
    let s = Server::start();
    for path in [
        "//evil.example/",
        "//evil.example/?next=1",
        "/\\evil.example/",
        "/\\\\/",
        "///evil.example/",
        "////evil.example//",
        "/%2F/evil.example/",
        "/%2f%2fevil.example/",
        "/%5C/evil.example/",
        "/%5cevil.example/",
        "/%09/evil.example/",
        "//",
    ] {
        let (status, location, body) = get_raw(&s.base, path);
        assert_eq!((status, location), (404, None), "{path}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"detail": "Not Found"}), "{path}");
    }
    // A trailing slash on a path of this server is still redirected, query kept.
    let (status, location, _) = get_raw(&s.base, "/v2/acme/p/evaluation_runs/?limit=1&offset=2");
    assert_eq!(status, 307);
    assert_eq!(location.as_deref(), Some("/v2/acme/p/evaluation_runs?limit=1&offset=2"));
    let (status, location, _) = get_raw(&s.base, "/health//");
    assert_eq!((status, location.as_deref()), (307, Some("/health")));
    let (status, location, _) = get_raw(&s.base, "/a%2Fb/");
    assert_eq!((status, location.as_deref()), (307, Some("/a%2Fb")));
}
