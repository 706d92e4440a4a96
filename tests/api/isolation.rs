//! A key scoped to entity `acme` can neither read, list, finish, delete nor write anything of
//! entity `other`, through any endpoint, and learns nothing about what `other` holds: every
//! attempt is the same 403 whether the target exists or not.

use crate::helpers::*;

use serde_json::{Value, json};

/// What `other/proj` holds, written with the admin key.
struct Theirs {
    run: String,
    prediction: String,
    score: String,
    object_digest: String,
    table: String,
}

async fn seed_other(s: &Server) -> Theirs {
    let v2 = |p: &str| format!("{}/v2/other/proj{p}", s.base);
    let post = |url: String, body: Value| s.client.post(url).basic_auth("api", Some(&s.key)).json(&body);
    let run = json_ok(post(v2("/evaluation_runs"), json!({"evaluation": "e", "model": "m"}))).await;
    let run = run["evaluation_run_id"].as_str().unwrap().to_string();
    let p = json_ok(post(
        v2("/predictions"),
        json!({"model": "m", "inputs": {}, "output": 1, "evaluation_run_id": run}),
    ))
    .await;
    let prediction = p["prediction_id"].as_str().unwrap().to_string();
    let sc =
        json_ok(post(v2("/scores"), json!({"prediction_id": prediction, "scorer": "s", "value": 1}))).await;
    let o = json_ok(post(
        format!("{}/obj/create", s.base),
        json!({"obj": {"project_id": "other/proj", "object_id": "Secret", "val": {"x": 1}}}),
    ))
    .await;
    let t = json_ok(post(
        format!("{}/table/create", s.base),
        json!({"table": {"project_id": "other/proj", "rows": [{"a": 1}]}}),
    ))
    .await;
    Theirs {
        run,
        prediction,
        score: sc["score_id"].as_str().unwrap().to_string(),
        object_digest: o["digest"].as_str().unwrap().to_string(),
        table: t["digest"].as_str().unwrap().to_string(),
    }
}

/// Every operation of the API aimed at `other/proj`, naming `ids` (existing or not).
fn attempts(t: &Theirs) -> Vec<(&'static str, String, Value)> {
    let run = &t.run;
    let (pred, score, digest, table) = (&t.prediction, &t.score, &t.object_digest, &t.table);
    let p = "other/proj";
    vec![
        ("GET", "/v2/other/proj/evaluation_runs".into(), Value::Null),
        ("GET", format!("/v2/other/proj/evaluation_runs?evaluation_run_ids={run}"), Value::Null),
        ("GET", format!("/v2/other/proj/evaluation_runs/{run}"), Value::Null),
        ("POST", "/v2/other/proj/evaluation_runs".into(), json!({"evaluation": "e", "model": "m"})),
        ("POST", format!("/v2/other/proj/evaluation_runs/{run}/finish"), json!({"summary": {}})),
        ("DELETE", format!("/v2/other/proj/evaluation_runs?evaluation_run_ids={run}"), Value::Null),
        ("GET", format!("/v2/other/proj/predictions?evaluation_run_id={run}"), Value::Null),
        ("GET", format!("/v2/other/proj/predictions/{pred}"), Value::Null),
        ("POST", "/v2/other/proj/predictions".into(), json!({"model": "m", "inputs": {}, "output": 1})),
        ("POST", format!("/v2/other/proj/predictions/{pred}/finish"), Value::Null),
        ("DELETE", format!("/v2/other/proj/predictions?prediction_ids={pred}"), Value::Null),
        ("GET", "/v2/other/proj/scores".into(), Value::Null),
        ("GET", format!("/v2/other/proj/scores/{score}"), Value::Null),
        ("POST", "/v2/other/proj/scores".into(), json!({"prediction_id": pred, "scorer": "s", "value": 1})),
        ("DELETE", format!("/v2/other/proj/scores?score_ids={score}"), Value::Null),
        (
            "POST",
            "/v2/other/proj/call/start".into(),
            json!({"start": {"project_id": p, "op_name": "x",
            "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {}}}),
        ),
        (
            "POST",
            "/v2/other/proj/call/end".into(),
            json!({"end": {"project_id": p, "id": run,
            "ended_at": "2026-01-01T00:00:00Z", "summary": {}}}),
        ),
        ("POST", "/v2/other/proj/calls/complete".into(), json!({"batch": []})),
        // The v1 API: the project is in the body, or in refs.
        (
            "POST",
            "/call/start".into(),
            json!({"start": {"project_id": p, "op_name": "x",
            "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {}}}),
        ),
        (
            "POST",
            "/call/end".into(),
            json!({"end": {"project_id": p, "id": run, "ended_at": "2026-01-01T00:00:00Z", "summary": {}}}),
        ),
        (
            "POST",
            "/call/upsert_batch".into(),
            json!({"batch": [{"mode": "end", "req": {"end": {"project_id": p, "id": run,
            "ended_at": "2026-01-01T00:00:00Z", "summary": {}}}}]}),
        ),
        ("POST", "/call/read".into(), json!({"project_id": p, "id": run})),
        ("POST", "/call/update".into(), json!({"project_id": p, "call_id": run, "display_name": "x"})),
        ("POST", "/calls/query".into(), json!({"project_id": p})),
        ("POST", "/calls/stream_query".into(), json!({"project_id": p, "filter": {"call_ids": [run]}})),
        ("POST", "/calls/query_stats".into(), json!({"project_id": p})),
        ("POST", "/calls/delete".into(), json!({"project_id": p, "call_ids": [run]})),
        // A body naming other's project under acme's path is refused for the body's project.
        (
            "POST",
            "/v2/acme/proj/calls/complete".into(),
            json!({"batch": [{"project_id": p, "id": run, "trace_id": run, "op_name": "x",
                "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z",
                "attributes": {}, "inputs": {}, "summary": {}}]}),
        ),
        ("POST", "/obj/create".into(), json!({"obj": {"project_id": p, "object_id": "Secret", "val": 2}})),
        ("POST", "/obj/read".into(), json!({"project_id": p, "object_id": "Secret", "digest": digest})),
        ("POST", "/objs/query".into(), json!({"project_id": p})),
        ("POST", "/obj/delete".into(), json!({"project_id": p, "object_id": "Secret"})),
        ("POST", "/table/create".into(), json!({"table": {"project_id": p, "rows": []}})),
        ("POST", "/table/create_from_digests".into(), json!({"project_id": p, "row_digests": []})),
        (
            "POST",
            "/table/update".into(),
            json!({"project_id": p, "base_digest": table, "updates": [{"append": {"row": {"a": 2}}}]}),
        ),
        ("POST", "/table/query".into(), json!({"project_id": p, "digest": table})),
        ("POST", "/table/query_stats".into(), json!({"project_id": p, "digest": table})),
        (
            "POST",
            "/refs/read_batch".into(),
            json!({"refs": [format!("weave:///other/proj/object/Secret:{digest}")]}),
        ),
        ("POST", "/refs/read_batch".into(), json!({"refs": [format!("weave:///other/proj/table/{table}")]})),
        ("POST", "/file/content".into(), json!({"project_id": p, "digest": digest})),
        (
            "POST",
            "/feedback/create".into(),
            json!({"project_id": p, "weave_ref": format!("weave:///other/proj/call/{run}"),
            "feedback_type": "note", "payload": {}}),
        ),
        (
            "POST",
            "/feedback/batch/create".into(),
            json!({"batch": [{"project_id": p, "weave_ref": "weave:///other/proj/call/x",
            "feedback_type": "note", "payload": {}}]}),
        ),
        ("POST", "/feedback/query".into(), json!({"project_id": p})),
        (
            "POST",
            "/graphql".into(),
            json!({"query": "query P($name: String!, $entityName: String!) { project(name: $name, entityName: $entityName) { name } }",
            "variables": {"name": "proj", "entityName": "other"}}),
        ),
    ]
}

async fn attempt(s: &Server, key: &str, method: &str, path: &str, body: &Value) -> (u16, String) {
    let url = format!("{}{path}", s.base);
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.client.request(m, url).basic_auth("api", Some(key));
    if !body.is_null() {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_key_of_one_entity_gets_403_everywhere_in_another_and_learns_nothing() {
    let s = Server::start();
    let theirs = seed_other(&s).await;
    let nothing = Theirs {
        run: "00000000-0000-0000-0000-000000000000".into(),
        prediction: "no-such-prediction".into(),
        score: "no-such-score".into(),
        object_digest: "nodigest".into(),
        table: "notable".into(),
    };
    let acme = s.entity_key("acme");
    let real = attempts(&theirs);
    let fake = attempts(&nothing);
    assert_eq!(real.len(), fake.len());
    for ((method, path, body), (_, fake_path, fake_body)) in real.iter().zip(fake.iter()) {
        let (status, text) = attempt(&s, &acme, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        let (fake_status, fake_text) = attempt(&s, &acme, method, fake_path, fake_body).await;
        assert_eq!((status, &text), (fake_status, &fake_text), "{method} {path}: existence leaks");
    }
    // The multipart file upload, too.
    let form = reqwest::multipart::Form::new()
        .text("project_id", "other/proj")
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("f"));
    let resp = s
        .client
        .post(format!("{}/file/create", s.base))
        .basic_auth("api", Some(&acme))
        .multipart(form)
        .send()
        .await;
    assert_eq!(resp.unwrap().status(), 403);

    // And nothing of theirs changed: the run is still there, unfinished, with its children.
    let runs = json_ok(
        s.client
            .get(format!("{}/v2/other/proj/evaluation_runs/{}", s.base, theirs.run))
            .basic_auth("api", Some(&s.key)),
    )
    .await;
    assert_eq!(runs["status"], "running");
    let preds =
        jsonl(s.client.get(format!("{}/v2/other/proj/predictions", s.base)).basic_auth("api", Some(&s.key)))
            .await;
    assert_eq!(preds.len(), 1);
}
