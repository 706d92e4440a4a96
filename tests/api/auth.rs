//! Authentication, key management through the CLI, restarts and graceful shutdown.

use crate::helpers::*;

use serde_json::{Value, json};

const EVAL: &str = "weave:///acme/proj/object/Ev:abc";
const MODEL: &str = "weave:///acme/proj/object/M:def";

/// URL of `path` under `/v2/{entity}/proj`.
fn entity_url(s: &Server, entity: &str, path: &str) -> String {
    format!("{}/v2/{entity}/proj{path}", s.base)
}

/// Sends a request and returns (status, `www-authenticate` header, JSON or text body).
async fn send(req: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_string());
    let text = resp.text().await.expect("body");
    (status, challenge, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Creates a key scoped to `entity` with the CLI; returns its secret.
fn create_entity_key(s: &Server, entity: &str) -> String {
    let (ok, stdout, stderr) = weft(&s.data_dir(), &["keys", "create", "--entity", entity]);
    assert!(ok, "keys create failed: {stderr}");
    stdout.trim().to_string()
}

/// The `keys list` line of the key scoped to `entity`.
fn listed_line(s: &Server, entity: &str) -> String {
    let (ok, stdout, stderr) = weft(&s.data_dir(), &["keys", "list"]);
    assert!(ok, "keys list failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(entity)).collect();
    assert_eq!(lines.len(), 1, "one key scoped to {entity}: {stdout}");
    lines[0].to_string()
}

#[tokio::test]
async fn missing_credentials_are_401_with_a_challenge() {
    let s = Server::start();
    let (status, challenge, body) = send(s.client.get(s.url("/evaluation_runs"))).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Not authenticated"}));
    assert!(challenge.is_some_and(|c| !c.is_empty()), "401 carries www-authenticate");
}

#[tokio::test]
async fn a_wrong_key_is_401() {
    let s = Server::start();
    let wrong = "x".repeat(40);
    let (status, challenge, body) =
        send(s.client.get(s.url("/evaluation_runs")).basic_auth("api", Some(&wrong))).await;
    assert_eq!(status, 401);
    assert!(challenge.is_some(), "401 carries www-authenticate");
    assert!(body["detail"].is_string(), "{body}");
    let (status, _, _) = send(s.client.get(s.url("/evaluation_runs")).bearer_auth(&wrong)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn basic_auth_accepts_any_user_name_with_the_key_as_password() {
    let s = Server::start();
    for user in ["api", "someone-else", ""] {
        let (status, _, body) =
            send(s.client.get(s.url("/evaluation_runs")).basic_auth(user, Some(&s.key))).await;
        assert_eq!(status, 200, "user {user:?}: {body}");
    }
}

#[tokio::test]
async fn bearer_auth_with_the_key_is_accepted() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let (status, _, body) =
        send(s.client.get(s.url(&format!("/evaluation_runs/{run}"))).bearer_auth(&s.key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["evaluation_run_id"], json!(run));
}

#[tokio::test]
async fn malformed_basic_credentials_are_401() {
    let s = Server::start();
    for header in ["Basic !!!not-base64!!!", "Basic", "Basic bm9jb2xvbg=="] {
        let (status, challenge, body) =
            send(s.client.get(s.url("/evaluation_runs")).header("authorization", header)).await;
        assert_eq!(status, 401, "{header}: {body}");
        assert!(challenge.is_some(), "{header}");
    }
    let (_, _, body) =
        send(s.client.get(s.url("/evaluation_runs")).header("authorization", "Basic !!!not-base64!!!")).await;
    assert_eq!(body, json!({"detail": "Not authenticated"}));
}

#[tokio::test]
async fn the_first_start_prints_an_admin_key_that_works_on_any_entity() {
    let s = Server::start();
    assert_eq!(s.key.len(), 40, "key: {:?}", s.key);
    assert!(s.key.bytes().all(|b| b.is_ascii_alphanumeric()));
    for entity in ["acme", "other"] {
        let (status, _, body) =
            send(s.client.get(entity_url(&s, entity, "/evaluation_runs")).basic_auth("api", Some(&s.key)))
                .await;
        assert_eq!(status, 200, "{entity}: {body}");
    }
}

#[tokio::test]
async fn an_entity_key_works_on_its_entity_and_is_forbidden_elsewhere() {
    let s = Server::start();
    let secret = create_entity_key(&s, "acme");
    assert_eq!(secret.len(), 40, "secret: {secret:?}");
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(secret, s.key);

    let create = json!({"evaluation": EVAL, "model": MODEL}).to_string();
    let (status, _, body) = send(
        s.client
            .post(entity_url(&s, "acme", "/evaluation_runs"))
            .basic_auth("api", Some(&secret))
            .header("content-type", "application/json")
            .body(create.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["evaluation_run_id"].is_string());

    let (status, _, body) = send(
        s.client
            .post(entity_url(&s, "other", "/evaluation_runs"))
            .basic_auth("api", Some(&secret))
            .header("content-type", "application/json")
            .body(create),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.is_object(), "403 has a JSON body: {body}");
    let (status, _, body) =
        send(s.client.get(entity_url(&s, "other", "/evaluation_runs")).basic_auth("api", Some(&secret)))
            .await;
    assert_eq!(status, 403);
    assert!(body.is_object(), "403 has a JSON body: {body}");

    // Nothing was written on the forbidden entity.
    let (status, _, body) =
        send(s.client.get(entity_url(&s, "other", "/evaluation_runs")).basic_auth("api", Some(&s.key))).await;
    assert_eq!((status, body), (200, json!("")));
}

#[tokio::test]
async fn keys_list_shows_id_and_scope_but_never_the_secret() {
    let s = Server::start();
    let secret = create_entity_key(&s, "acme");
    let (ok, stdout, _) = weft(&s.data_dir(), &["keys", "list"]);
    assert!(ok);
    assert!(!stdout.contains(&secret), "the secret is not listed: {stdout}");
    assert!(!stdout.contains(&s.key), "the admin secret is not listed: {stdout}");
    assert_eq!(stdout.lines().count(), 2, "the admin key and the new one: {stdout}");
    let line = listed_line(&s, "acme");
    let id = line.split_whitespace().next().expect("id");
    assert!(!id.is_empty() && !secret.contains(id), "id {id} is not part of the secret");
    assert!(stdout.lines().any(|l| l.contains("admin")), "{stdout}");
}

#[tokio::test]
async fn a_revoked_key_fails_within_the_revocation_bound() {
    let s = Server::start();
    let secret = create_entity_key(&s, "acme");
    let (status, _, _) = send(s.client.get(s.url("/evaluation_runs")).basic_auth("api", Some(&secret))).await;
    assert_eq!(status, 200);

    let line = listed_line(&s, "acme");
    let id = line.split_whitespace().next().expect("id").to_string();
    let (ok, _, stderr) = weft(&s.data_dir(), &["keys", "revoke", &id]);
    assert!(ok, "revoke failed: {stderr}");

    let refused = refused_within_revocation_bound(|| async {
        let (status, challenge, _) =
            send(s.client.get(s.url("/evaluation_runs")).basic_auth("api", Some(&secret))).await;
        status == 401 && challenge.is_some()
    })
    .await;
    assert!(refused, "the revoked key is refused");
    // The admin key is unaffected.
    let (status, _, _) = send(s.get("/evaluation_runs")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_revoked_admin_key_fails_within_the_revocation_bound() {
    let s = Server::start();
    let (ok, stdout, stderr) = weft(&s.data_dir(), &["keys", "create", "--admin"]);
    assert!(ok, "keys create --admin failed: {stderr}");
    let secret = stdout.trim().to_string();
    assert_eq!(secret.len(), 40, "secret: {secret:?}");
    let (status, _, _) = send(s.client.get(s.url("/evaluation_runs")).bearer_auth(&secret)).await;
    assert_eq!(status, 200);

    let (ok, listing, _) = weft(&s.data_dir(), &["keys", "list"]);
    assert!(ok);
    assert_eq!(listing.lines().count(), 2, "{listing}");
    let id = listing.lines().last().and_then(|l| l.split_whitespace().next()).expect("id").to_string();
    let (ok, _, stderr) = weft(&s.data_dir(), &["keys", "revoke", &id]);
    assert!(ok, "revoke failed: {stderr}");

    let refused = refused_within_revocation_bound(|| async {
        let (status, challenge, _) = send(s.client.get(s.url("/evaluation_runs")).bearer_auth(&secret)).await;
        status == 401 && challenge.is_some()
    })
    .await;
    assert!(refused, "the revoked admin key is refused");
    let (status, _, _) = send(s.get("/evaluation_runs")).await;
    assert_eq!(status, 200, "the first admin key is unaffected");
    // Revoking it again is an error.
    let (ok, _, _) = weft(&s.data_dir(), &["keys", "revoke", &id]);
    assert!(!ok);
}

#[tokio::test]
async fn keys_create_without_a_scope_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, stdout, _) = weft(dir.path(), &["keys", "create"]);
    assert!(!ok, "keys create needs --entity or --admin");
    assert!(stdout.trim().is_empty(), "no secret printed: {stdout}");
}

#[tokio::test]
async fn a_restart_prints_no_new_key_and_the_old_key_still_works() {
    let mut s = Server::start();
    let key = s.key.clone();
    assert!(!key.is_empty());
    let run = s.create_run(EVAL, MODEL).await;
    assert!(s.terminate());
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().expect("tempdir"));
    drop(s);

    let mut s2 = Server::start_in(dir);
    assert_eq!(s2.key, "", "no new key is printed on a second start");
    s2.key = key;
    let got = json_ok(s2.get(&format!("/evaluation_runs/{run}"))).await;
    assert_eq!(got["evaluation_run_id"], json!(run));
    let (ok, stdout, _) = weft(&s2.data_dir(), &["keys", "list"]);
    assert!(ok);
    assert_eq!(stdout.lines().count(), 1, "still only the first admin key: {stdout}");
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_keeps_every_acknowledged_run() {
    let mut s = Server::start();
    let key = s.key.clone();
    let mut runs = Vec::new();
    for _ in 0..20 {
        runs.push(s.create_run(EVAL, MODEL).await);
    }
    let finished = runs[0].clone();
    json_ok(s.post(&format!("/evaluation_runs/{finished}/finish"), &json!({"summary": {"x": 1}}))).await;
    assert!(s.terminate(), "SIGTERM gives a clean exit");
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().expect("tempdir"));
    drop(s);

    let mut s2 = Server::start_in(dir);
    s2.key = key;
    let rows = jsonl(s2.get("/evaluation_runs")).await;
    let ids: Vec<String> =
        rows.iter().map(|r| r["evaluation_run_id"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids, runs);
    assert_eq!(rows[0]["status"], json!("completed"));
    assert_eq!(rows[0]["summary"]["x"], json!(1));
}

#[tokio::test]
async fn health_and_openapi_need_no_credentials() {
    let s = Server::start();
    let resp = s.client.get(format!("{}/health", s.base)).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let resp = s.client.get(format!("{}/openapi.json", s.base)).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.expect("JSON");
    assert!(doc["paths"].is_object(), "an OpenAPI document");
}

#[tokio::test]
async fn every_v2_route_rejects_missing_credentials() {
    let s = Server::start();
    let routes = [
        ("GET", "/evaluation_runs"),
        ("POST", "/evaluation_runs"),
        ("DELETE", "/evaluation_runs?evaluation_run_ids=x"),
        ("GET", "/evaluation_runs/x"),
        ("POST", "/evaluation_runs/x/finish"),
        ("GET", "/predictions"),
        ("POST", "/predictions"),
        ("DELETE", "/predictions?prediction_ids=x"),
        ("GET", "/predictions/x"),
        ("POST", "/predictions/x/finish"),
        ("GET", "/scores"),
        ("POST", "/scores"),
        ("DELETE", "/scores?score_ids=x"),
        ("GET", "/scores/x"),
    ];
    for (method, path) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = s.client.request(method.clone(), s.url(path));
        if method == reqwest::Method::POST {
            req = req.header("content-type", "application/json").body("{}");
        }
        let (status, challenge, body) = send(req).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(body, json!({"detail": "Not authenticated"}), "{method} {path}");
        assert!(challenge.is_some(), "{method} {path} carries www-authenticate");
    }
    // Nothing was written by the rejected requests.
    assert!(jsonl(s.get("/evaluation_runs")).await.is_empty());
    assert!(jsonl(s.get("/predictions")).await.is_empty());
}
