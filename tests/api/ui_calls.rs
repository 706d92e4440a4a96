//! The web UI's call page and the SDK's call links: a call's tree, escaped, ending on parent
//! cycles, and `/r/call/{id}` landing on the run page for runs.

use serde_json::{Value, json};

use crate::helpers::*;

fn call(id: &str, parent: Option<&str>, op: &str, name: Option<&str>, output: Value) -> Value {
    json!({"project_id": "acme/proj", "id": id, "trace_id": "t", "parent_id": parent, "op_name": op,
        "display_name": name, "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01.5Z",
        "attributes": {}, "inputs": {"q": "what?"}, "output": output, "summary": {}})
}

async fn complete(s: &Server, batch: Vec<Value>) {
    json_ok(
        s.client
            .post(s.url("/calls/complete"))
            .basic_auth("api", Some(&s.key))
            .json(&json!({ "batch": batch })),
    )
    .await;
}

#[tokio::test]
async fn a_call_page_shows_its_tree_escaped() {
    let s = Server::start();
    complete(
        &s,
        vec![
            call("root", None, "weave:///acme/proj/op/pipeline:abc", None, json!("done")),
            call(
                "kid",
                Some("root"),
                "weave:///acme/proj/op/retrieve:abc",
                Some("<script>alert(1)</script>"),
                json!({"docs": ["<b>x</b>"]}),
            ),
            call("grandkid", Some("kid"), "weave:///acme/proj/op/embed:abc", None, json!([0.5])),
            // Parent links that loop, which a client can write: the page still ends.
            call("loop1", Some("loop2"), "op", None, json!(1)),
            call("loop2", Some("loop1"), "op", None, json!(2)),
        ],
    )
    .await;
    let cookie = s.ui_sign_in(&s.key).await;
    let (status, page) = status_text(s.ui_get("/acme/proj/weave/calls/root", &cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>pipeline</h1>"), "{page}");
    for shown in ["<code>retrieve</code>", ">embed</a>", "/acme/proj/weave/calls/grandkid", "1.5 s"] {
        assert!(page.contains(shown), "{shown} missing: {page}");
    }
    assert!(!page.contains("<script>alert"), "a display name is escaped");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"), "outputs are escaped");

    let (status, page) = status_text(s.ui_get("/acme/proj/weave/calls/loop1", &cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(
        page.matches("/acme/proj/weave/calls/loop2").count(),
        2,
        "loop2 is shown once (and as the parent)"
    );
    let (status, _) = status_text(s.ui_get("/acme/proj/weave/calls/nope", &cookie)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sdk_call_links_land_on_the_run_or_the_call() {
    let s = Server::start();
    let run = s.create_run("weave:///acme/proj/object/Ev:1", "weave:///acme/proj/object/M:1").await;
    complete(&s, vec![call("plain", None, "op", None, json!(1))]).await;
    let cookie = s.ui_sign_in(&s.key).await;
    let r = s.ui_get(&format!("/acme/proj/r/call/{run}"), &cookie).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/acme/proj/weave/runs/{run}").as_str());
    let r = s.ui_get("/acme/proj/r/call/plain", &cookie).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/acme/proj/weave/calls/plain");
    let r = s.ui_get("/other/proj/r/call/plain", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 404, "no such call in that project");
    let scoped = s.ui_sign_in(&s.entity_key("acme")).await;
    let r = s.ui_get("/other/proj/r/call/plain", &scoped).send().await.unwrap();
    assert_eq!(r.status(), 403, "another entity's key would be needed");
}
