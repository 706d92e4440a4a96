//! Web UI sessions: signing in with a key, what the cookie allows, signing out with the
//! session's CSRF token, and a revoked key's sessions ending (within its key cache's bound on
//! each store).

use crate::helpers::*;

fn key_id(secret: &str) -> String {
    weft::domain::keys::hash_secret(secret)[..12].to_string()
}

#[tokio::test]
async fn signed_out_pages_are_the_sign_in_page() {
    let s = Server::start();
    for path in ["/", "/acme/proj/weave", "/acme/proj/weave/runs?sort=model"] {
        let r = s.ui_get(path, "").send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(set_cookie(&r, "weft_signin").is_some());
        let body = r.text().await.unwrap();
        assert!(body.contains("action=\"/ui/sign-in\""), "{path}: {body}");
        assert!(body.contains(&format!("name=\"next\" value=\"{}\"", path.replace('&', "&amp;"))), "{body}");
    }
    for export in ["/?format=csv", "/acme/proj/weave?format=jsonl"] {
        let r = s.ui_get(export, "").send().await.unwrap();
        assert_eq!(r.status(), 401, "{export}: an export asked for without a session is no HTML page");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    }
    let bogus = "weft_session=0000000000000000000000000000000000000000000000000000000000000000";
    let body = s.ui_get("/", bogus).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("action=\"/ui/sign-in\""), "an unknown token is no session");
}

#[tokio::test]
async fn a_session_sees_what_its_key_sees() {
    let s = Server::start();
    s.create_run("weave:///acme/proj/object/Ev:1", "weave:///acme/proj/object/M:1").await;
    let other = s.entity_key("other");
    let cookie = s.ui_sign_in(&other).await;
    let r = s.ui_get("/acme/proj/weave", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let projects = s.ui_get("/?format=jsonl", &cookie).send().await.unwrap().text().await.unwrap();
    assert_eq!(projects, "", "acme/proj is not listed for a key of entity other");

    let acme = s.entity_key("acme");
    let cookie = s.ui_sign_in(&acme).await;
    let r = s.ui_get("/acme/proj/weave", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let projects = s.ui_get("/?format=jsonl", &cookie).send().await.unwrap().text().await.unwrap();
    let row: serde_json::Value = serde_json::from_str(projects.trim()).unwrap();
    assert_eq!((row["project"].as_str(), row["runs"].as_u64()), (Some("acme/proj"), Some(1)));
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_strict() {
    let s = Server::start();
    let ui = Server::ui_client();
    let page = ui.get(format!("{}/", s.base())).send().await.unwrap();
    let csrf = set_cookie(&page, "weft_signin").unwrap();
    let sign_in = |key: String, token: String, cookie: String| {
        ui.post(format!("{}/ui/sign-in", s.base()))
            .header("cookie", format!("weft_signin={cookie}"))
            .form(&[("api_key", key), ("next", "//evil.example/x".into()), ("csrf", token)])
            .send()
    };
    // A wrong key, or a form whose token does not match its cookie, opens no session.
    let r = sign_in("wrong".into(), csrf.clone(), csrf.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "weft_session").is_none());
    let key = s.entity_key("acme");
    let r = sign_in(key.clone(), "forged".into(), csrf.clone()).await.unwrap();
    assert!(set_cookie(&r, "weft_session").is_none(), "a forged form token opens no session");

    let r = sign_in(key, csrf.clone(), csrf).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/", "a `next` off this site is not followed");
    let header = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("weft_session="))
        .unwrap();
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"), "{header}");
}

#[tokio::test]
async fn signing_out_needs_the_session_token_and_ends_the_session() {
    let s = Server::start();
    let key = s.entity_key("acme");
    let cookie = s.ui_sign_in(&key).await;
    let page = s.ui_get("/", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let ui = Server::ui_client();
    let out = |token: &str| {
        ui.post(format!("{}/ui/sign-out", s.base())).header("cookie", &cookie).form(&[("csrf", token)]).send()
    };
    assert_eq!(out("forged").await.unwrap().status(), 400);
    assert_eq!(s.ui_get("/acme/proj/weave", &cookie).send().await.unwrap().status(), 200);
    let r = out(&csrf).await.unwrap();
    assert_eq!(r.status(), 303);
    let body = s.ui_get("/acme/proj/weave", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("action=\"/ui/sign-in\""), "the ended session is refused");
    // A cross-site form post is refused before it reaches the route.
    let r = ui
        .post(format!("{}/ui/sign-out", s.base()))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn revoking_a_key_ends_its_sessions() {
    let s = Server::start();
    let key = s.entity_key("acme");
    let cookie = s.ui_sign_in(&key).await;
    assert_eq!(s.ui_get("/acme/proj/weave", &cookie).send().await.unwrap().status(), 200);
    let (ok, _, err) = weft(&s.data_dir(), &["keys", "revoke", &key_id(&key)]);
    assert!(ok, "{err}");
    let refused = refused_within_revocation_bound(|| async {
        let body = s.ui_get("/acme/proj/weave", &cookie).send().await.unwrap().text().await.unwrap();
        body.contains("action=\"/ui/sign-in\"")
    })
    .await;
    assert!(refused, "the revoked key's session is refused");
}
