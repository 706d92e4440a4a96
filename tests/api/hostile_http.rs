//! Requests a hostile web page or client can send: redirects that would leave the server,
//! cross-site form posts, oversized request heads. Each is refused with a documented status,
//! and what the official client sends still works.

use crate::helpers::*;

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

/// Requests with a JSON body, most of which write: (method, URL, body).
fn write_requests(s: &Server, run: &str) -> Vec<(reqwest::Method, String, String)> {
    let post = reqwest::Method::POST;
    let v1 = |p: &str| format!("{}{p}", s.base);
    vec![
        (post.clone(), s.url("/evaluation_runs"), json!({"evaluation": "E", "model": "M"}).to_string()),
        (post.clone(), s.url(&format!("/evaluation_runs/{run}/finish")), json!({"summary": {}}).to_string()),
        (reqwest::Method::DELETE, s.url("/evaluation_runs"), json!([run]).to_string()),
        (
            post.clone(),
            v1("/calls/delete"),
            json!({"project_id": "acme/proj", "call_ids": [run]}).to_string(),
        ),
        (post.clone(), v1("/obj/delete"), json!({"project_id": "acme/proj", "object_id": "o"}).to_string()),
        (post.clone(), v1("/calls/query"), json!({"project_id": "acme/proj"}).to_string()),
        (post.clone(), v1("/graphql"), json!({"query": "{ viewer { username } }"}).to_string()),
        (post, v1("/feedback/batch/create"), json!({"batch": []}).to_string()),
    ]
}

#[tokio::test]
async fn json_bodies_are_read_only_with_a_json_content_type_or_none() {
    let s = Server::start();
    let run = s.create_run("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1").await;
    for ctype in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonl",
        "application/json-seq",
        "application/+json",
        "*/*",
        "",
    ] {
        for (method, url, body) in write_requests(&s, &run) {
            let req = s.client.request(method.clone(), &url).basic_auth("api", Some(&s.key));
            let (status, answer) = status_json(req.header("content-type", ctype).body(body)).await;
            assert_eq!(status, 415, "{method} {url} as {ctype:?}: {answer}");
            let reason = answer["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("application/json"), "{answer}");
        }
    }
    // The run was neither finished nor deleted, and no other run was created.
    let rows = jsonl(s.get("/evaluation_runs")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "running");

    // A JSON Content-Type, or none (what the official client sends), is read as JSON.
    for ctype in [
        None,
        Some("application/json"),
        Some("APPLICATION/JSON"),
        Some("Application/JSON; charset=UTF-8"),
        Some("application/json;charset=utf-8"),
        Some("application/vnd.weft.run+json"),
        Some("text/x.weft+json ; q=1"),
    ] {
        let mut req = s.client.post(s.url("/evaluation_runs")).basic_auth("api", Some(&s.key));
        if let Some(ctype) = ctype {
            req = req.header("content-type", ctype);
        }
        let v = json_ok(req.body(json!({"evaluation": "E", "model": "M"}).to_string())).await;
        let run = v["evaluation_run_id"].as_str().unwrap();
        let mut req = s.client.post(format!("{}/calls/query", s.base)).basic_auth("api", Some(&s.key));
        if let Some(ctype) = ctype {
            req = req.header("content-type", ctype);
        }
        let found =
            json_ok(req.body(json!({"project_id": "acme/proj", "filter": {"call_ids": [run]}}).to_string()))
                .await;
        assert_eq!(found["calls"].as_array().map(Vec::len), Some(1), "{ctype:?}: {found}");
    }
    // File uploads are multipart by design.
    let form = reqwest::multipart::Form::new()
        .text("project_id", "acme/proj")
        .part("file", reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("f.txt"));
    let created = json_ok(
        s.client.post(format!("{}/file/create", s.base)).basic_auth("api", Some(&s.key)).multipart(form),
    )
    .await;
    assert!(created["digest"].is_string(), "{created}");
}

#[tokio::test]
async fn writes_a_browser_marks_as_cross_site_get_403_and_change_nothing() {
    let s = Server::start();
    let run = s.create_run("weave:///acme/proj/object/E:1", "weave:///acme/proj/object/M:1").await;
    let host = s.base.trim_start_matches("http://").to_string();
    let other_port = format!("http://{}:1", host.split(':').next().unwrap());
    let foreign: Vec<(&str, String)> = vec![
        ("sec-fetch-site", "cross-site".into()),
        ("sec-fetch-site", "Cross-Site".into()),
        ("origin", "http://evil.example".into()),
        ("origin", "null".into()),
        ("origin", format!("https://{host}.evil.example")),
        ("origin", other_port),
        ("origin", format!("file://{host}")),
    ];
    for (name, value) in &foreign {
        // No Content-Type at all: what a browser's fetch of a Blob may send.
        for (method, url, body) in write_requests(&s, &run) {
            let req = s.client.request(method.clone(), &url).basic_auth("api", Some(&s.key));
            let (status, answer) = status_json(req.header(*name, value).body(body)).await;
            assert_eq!(status, 403, "{method} {url} with {name}: {value}: {answer}");
            assert!(answer["detail"].as_str().is_some_and(|d| d.contains("Cross-site")), "{answer}");
        }
        let put =
            s.client.put(s.url("/evaluation_runs")).basic_auth("api", Some(&s.key)).header(*name, value);
        assert_eq!(put.send().await.unwrap().status(), 403, "PUT with {name}: {value}");
        let patch =
            s.client.patch(s.url("/evaluation_runs")).basic_auth("api", Some(&s.key)).header(*name, value);
        assert_eq!(patch.send().await.unwrap().status(), 403, "PATCH with {name}: {value}");
        // Reads are not affected.
        let read = s.get("/evaluation_runs").header(*name, value);
        assert_eq!(read.send().await.unwrap().status(), 200, "GET with {name}: {value}");
    }
    let rows = jsonl(s.get("/evaluation_runs")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "running");

    // The server's own origin, same-site and same-origin fetches, and no such header pass.
    let own = format!("http://{host}");
    for (name, value) in [
        ("origin", own.as_str()),
        ("origin", &own.to_uppercase()),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "none"),
        ("x-nothing", "1"),
    ] {
        let req = s.post("/evaluation_runs", &json!({"evaluation": "E", "model": "M"})).header(name, value);
        json_ok(req).await;
    }
    let finish =
        s.post(&format!("/evaluation_runs/{run}/finish"), &json!({"summary": {}})).header("origin", &own);
    json_ok(finish).await;
    assert_eq!(jsonl(s.get("/evaluation_runs")).await.len(), 7);
}

/// A `GET /health` (closing the connection after it) whose head is exactly `size` bytes.
fn head_of(size: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ";
    let end = "\r\n\r\n";
    let fill = size - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(fill)).into_bytes()
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok())
}

#[tokio::test]
async fn request_heads_are_bounded_at_64_kib_and_the_server_keeps_serving() {
    let s = Server::start();
    for size in [63 * 1024, 64 * 1024] {
        let answer = raw(&s.base, &head_of(size));
        assert_eq!(status_of(&answer), Some(200), "{size}: {}", &answer[..answer.len().min(80)]);
    }
    for size in [64 * 1024 + 1, 70_000, 100_000] {
        let answer = raw(&s.base, &head_of(size));
        assert_eq!(status_of(&answer), Some(431), "{size}: {}", &answer[..answer.len().min(80)]);
    }
    // Far larger heads are refused before they are parsed (431, or the connection closed).
    let answer = raw(&s.base, &head_of(200 * 1024));
    assert!(answer.is_empty() || status_of(&answer) == Some(431), "{}", &answer[..answer.len().min(80)]);
    // Many headers adding up past the bound count too.
    let many: String = (0..90).map(|i| format!("X-H{i}: {}\r\n", "b".repeat(800))).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{many}\r\n");
    let answer = raw(&s.base, request.as_bytes());
    assert_eq!(status_of(&answer), Some(431), "{}", &answer[..answer.len().min(80)]);
    assert_eq!(s.client.get(format!("{}/health", s.base)).send().await.unwrap().status(), 200);
}
