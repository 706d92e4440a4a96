//! What the official TypeScript SDK needs of weft beyond what the Python SDK does: a rename
//! sent before the batch holding its call's start, a name sent with a call's end, a refused
//! upload answered after its body is read, a default entity for every key, and the output of
//! its `predict_and_score` calls (`model_output`).

use crate::helpers::*;

use serde_json::{Value, json};
use std::io::{Read, Write};

fn start(id: &str, display_name: Option<&str>) -> Value {
    json!({"mode": "start", "req": {"start": {"project_id": "acme/proj", "id": id, "trace_id": id,
        "op_name": "weave:///acme/proj/op/add:a1", "display_name": display_name,
        "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {"a": 1}}}})
}

fn end(id: &str, display_name: Option<&str>) -> Value {
    let mut end = json!({"project_id": "acme/proj", "id": id, "ended_at": "2026-01-01T00:00:01Z",
        "output": 2, "summary": {}});
    if let Some(name) = display_name {
        end["display_name"] = json!(name);
    }
    json!({"mode": "end", "req": {"end": end}})
}

async fn rename(s: &Server, id: &str, name: &str) -> u16 {
    let body = json!({"project_id": "acme/proj", "call_id": id, "display_name": name});
    status_json(post_v1(s, "/call/update", &body)).await.0
}

async fn read(s: &Server, id: &str) -> Value {
    let v = json_ok(post_v1(s, "/call/read", &json!({"project_id": "acme/proj", "id": id}))).await;
    v["call"].clone()
}

async fn upsert(s: &Server, batch: Vec<Value>) {
    json_ok(post_v1(s, "/call/upsert_batch", &json!({ "batch": batch }))).await;
}

#[tokio::test]
async fn a_rename_that_arrives_before_its_calls_start_is_applied_by_the_start() {
    let s = Server::start();
    // `call.setDisplayName()` right after an op returns: the rename, then the SDK's batch.
    assert_eq!(rename(&s, "c1", "renamed").await, 200);
    upsert(&s, vec![start("c1", None), end("c1", None)]).await;
    let c1 = read(&s, "c1").await;
    assert_eq!(c1["display_name"], "renamed");
    assert_eq!(c1["op_name"], "weave:///acme/proj/op/add:a1");
    assert_eq!(c1["output"], 2);
    assert_eq!(c1["inputs"], json!({"a": 1}));

    // The rename was sent after the start: it wins over the start's name. The end may come
    // between them, in a batch of its own.
    assert_eq!(rename(&s, "c2", "later").await, 200);
    upsert(&s, vec![end("c2", None)]).await;
    upsert(&s, vec![start("c2", Some("at start"))]).await;
    let c2 = read(&s, "c2").await;
    assert_eq!((c2["display_name"].clone(), c2["output"].clone()), (json!("later"), json!(2)));

    // A call that exists is renamed as before; a deleted one is still a 404.
    assert_eq!(rename(&s, "c1", "again").await, 200);
    assert_eq!(read(&s, "c1").await["display_name"], "again");
    json_ok(post_v1(&s, "/calls/delete", &json!({"project_id": "acme/proj", "call_ids": ["c1"]}))).await;
    assert_eq!(rename(&s, "c1", "gone").await, 404);
}

#[tokio::test]
async fn a_name_sent_with_a_calls_end_renames_it() {
    let s = Server::start();
    // In one batch with its start, in a batch of its own, and before its start.
    upsert(&s, vec![start("a", Some("first")), end("a", Some("a-end"))]).await;
    upsert(&s, vec![start("b", Some("first"))]).await;
    upsert(&s, vec![end("b", Some("b-end"))]).await;
    upsert(&s, vec![end("c", Some("c-end"))]).await;
    upsert(&s, vec![start("c", Some("first"))]).await;
    // An end without a name keeps the start's.
    upsert(&s, vec![start("d", Some("kept")), end("d", None)]).await;
    for (id, name) in [("a", "a-end"), ("b", "b-end"), ("c", "c-end"), ("d", "kept")] {
        assert_eq!(read(&s, id).await["display_name"], name, "call {id}");
    }
}

/// Sends a `file/create` of `size` bytes with `key`, writing the whole body before reading the
/// answer, as Node's `fetch` does; returns the answer's head and body, or the write's error.
fn upload(base: &str, key: &str, size: usize) -> Result<String, std::io::Error> {
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let boundary = "weftboundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"project_id\"\r\n\r\nacme/proj\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + size + tail.len();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
    write!(
        conn,
        "POST /file/create HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\r\n{head}"
    )?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        conn.write_all(&chunk[..n])?;
        left -= n;
    }
    conn.write_all(tail.as_bytes())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The head and the short JSON body; the connection stays open (keep-alive).
    while !String::from_utf8_lossy(&answer).contains("\"}") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_refused_upload_is_read_before_its_401_so_the_client_sees_it() {
    let s = Server::start();
    let base = s.base.clone();
    // Larger than any socket buffer: unread, it would stand between the client and the answer.
    let answer = tokio::task::spawn_blocking(move || upload(&base, "not-a-key", 8 << 20))
        .await
        .unwrap()
        .expect("the whole body is sent, then the answer read");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("Invalid API key"), "{answer}");
    // A valid key's upload of the same size is stored.
    let (key, base) = (s.key.clone(), s.base.clone());
    let answer = tokio::task::spawn_blocking(move || upload(&base, &key, 8 << 20)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(300)]);
}

async fn default_entity(s: &Server, key: &str) -> Value {
    let q = json!({"query": "query DefaultEntity { viewer { username defaultEntity { name } } }"});
    let req = s.client.post(format!("{}/graphql", s.base)).basic_auth("api", Some(key)).json(&q);
    json_ok(req).await["data"]["viewer"]["defaultEntity"]["name"].clone()
}

#[tokio::test]
async fn every_key_has_a_default_entity() {
    let s = Server::start();
    assert_eq!(default_entity(&s, &s.key).await, "admin", "an admin key, by default");
    let scoped = {
        let (ok, out, err) = weft(s.dir.path(), &["keys", "create", "--entity", "team", "--entity", "acme"]);
        assert!(ok, "{err}");
        out.trim().to_string()
    };
    assert_eq!(default_entity(&s, &scoped).await, "team", "a scoped key: its first entity");

    let configured = Server::start_with(tempfile::tempdir().unwrap(), &["--default-entity", "lab"]);
    assert_eq!(default_entity(&configured, &configured.key).await, "lab");
    let (ok, _, err) = weft(s.dir.path(), &["serve", "--default-entity", "a/b"]);
    assert!(!ok && err.contains("entity"), "{err}");
}

#[tokio::test]
async fn a_typescript_predict_and_score_lists_its_model_output() {
    let s = Server::start();
    let pas = |id: &str, out: Value| {
        json!({"project_id": "acme/proj", "id": id, "trace_id": "t", "parent_id": "run",
            "op_name": "weave:///acme/proj/op/Evaluation.predictAndScore:p1",
            "started_at": "2026-01-01T00:00:01Z", "ended_at": "2026-01-01T00:00:02Z",
            "attributes": {}, "inputs": {"self": "weave:///acme/proj/object/Ev:e", "example": {"q": id}},
            "output": out, "summary": {}})
    };
    let root = json!({"start": {"project_id": "acme/proj", "id": "run", "trace_id": "t",
        "op_name": "weave:///acme/proj/op/Evaluation.evaluate:e1", "started_at": "2026-01-01T00:00:00Z",
        "attributes": {}, "inputs": {"self": "weave:///acme/proj/object/Ev:e",
        "model": "weave:///acme/proj/op/adder:m"}}});
    json_ok(s.post("/call/start", &root)).await;
    let batch = json!([
        pas(
            "p1",
            json!({"model_success": true, "model_output": "2", "scores": {"exact": true}, "model_latency": 0.1})
        ),
        pas(
            "p2",
            json!({"model_success": true, "model_output": "5", "scores": {"exact": false}, "model_latency": 0.1})
        ),
    ]);
    json_ok(s.post("/calls/complete", &json!({ "batch": batch }))).await;
    let preds = jsonl(s.get("/predictions?evaluation_run_id=run")).await;
    let outputs: Vec<&Value> = preds.iter().map(|p| &p["output"]).collect();
    assert_eq!(outputs, [&json!("2"), &json!("5")]);
    let scores = jsonl(s.get("/scores?evaluation_run_id=run")).await;
    assert_eq!(scores.len(), 2, "{scores:?}");
}
