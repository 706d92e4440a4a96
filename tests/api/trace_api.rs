//! The v1 trace API the official SDK calls, tested over HTTP against the real binary.

use crate::helpers::*;

use serde_json::{Value, json};

const ROWS_TABLE: &str = "df60df8796b210077f29f741e4cd5c03816fd705d2da6bc52a03e7d326e88c76";

async fn make_dataset(s: &Server) -> String {
    let t = json_ok(post_v1(
        s,
        "/table/create",
        &json!({"table": {"project_id": "acme/proj", "rows": [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "4"}]}}),
    ))
    .await;
    // Digests as Python computes them: sha256 of json.dumps(row, sort_keys=True), and so on.
    assert_eq!(t["digest"], ROWS_TABLE);
    assert_eq!(
        t["row_digests"],
        json!(["4AyQSRRsY71h5G0LnrJKkmtgs2vtUgoY3lef86WLN5A", "0S9DGT9WaTh3NmpAYXd7YBefvlTW2psFGfzNGj9yHu8"])
    );
    let val = json!({"_type": "Dataset", "name": null, "description": null,
        "rows": format!("weave:///acme/proj/table/{ROWS_TABLE}"),
        "_class_name": "Dataset", "_bases": ["Object", "BaseModel"]});
    let o = json_ok(post_v1(
        s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": "Dataset", "val": val}}),
    ))
    .await;
    assert_eq!(o["digest"], "UhuslpGQyfprsfEq8wwLEivxRurR4QIyfQcRCKza370");
    o["digest"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn objects_are_versioned_and_read_by_digest_latest_or_index() {
    let s = Server::start();
    let d = make_dataset(&s).await;
    let read = json_ok(post_v1(
        &s,
        "/obj/read",
        &json!({"project_id": "acme/proj", "object_id": "Dataset", "digest": d}),
    ))
    .await;
    let obj = &read["obj"];
    assert_eq!(obj["version_index"], 0);
    assert_eq!(obj["is_latest"], 1);
    assert_eq!(obj["kind"], "object");
    assert_eq!(obj["base_object_class"], "Dataset");
    assert_eq!(obj["val"]["_type"], "Dataset");
    // Same value again: same version. New value: a new version, which becomes the latest.
    let again = json_ok(post_v1(
        &s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": "Dataset", "val": obj["val"]}}),
    ))
    .await;
    assert_eq!(again["digest"], d.as_str());
    assert_eq!(again["version_index"], 0);
    let v1 = json_ok(post_v1(
        &s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": "Dataset", "val": {"x": 1}}}),
    ))
    .await;
    assert_eq!(v1["version_index"], 1);
    for (digest, index) in [("latest", 1), ("v0", 0), ("v1", 1)] {
        let r = json_ok(post_v1(
            &s,
            "/obj/read",
            &json!({"project_id": "acme/proj", "object_id": "Dataset", "digest": digest}),
        ))
        .await;
        assert_eq!(r["obj"]["version_index"], index, "{digest}");
    }
    let (status, body) = status_json(post_v1(
        &s,
        "/obj/read",
        &json!({"project_id": "acme/proj", "object_id": "Dataset", "digest": "nope"}),
    ))
    .await;
    assert_eq!(status, 404);
    assert!(body["reason"].as_str().unwrap().contains("not found"));
    let all = json_ok(post_v1(
        &s,
        "/objs/query",
        &json!({"project_id": "acme/proj", "filter": {"latest_only": true}}),
    ))
    .await;
    assert_eq!(all["objs"].as_array().unwrap().len(), 1);
    assert_eq!(all["objs"][0]["digest"], v1["digest"]);
}

#[tokio::test]
async fn ops_are_objects_of_kind_op() {
    let s = Server::start();
    let val = json!({"_type": "CustomWeaveType", "weave_type": {"type": "Op"}, "files": {"obj.py": "abc"}});
    let o = json_ok(post_v1(
        &s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": "predict", "val": val}}),
    ))
    .await;
    assert_eq!(o["digest"], "n1N431BaeW7cDYWxDmGwViBHDBaJh6nAVEI5NqMx2m0");
    let ops =
        json_ok(post_v1(&s, "/objs/query", &json!({"project_id": "acme/proj", "filter": {"is_op": true}})))
            .await;
    assert_eq!(ops["objs"][0]["kind"], "op");
    let (status, _) = status_json(post_v1(
        &s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": "bad/id", "val": 1}}),
    ))
    .await;
    assert_eq!(status, 400);
    let (status, _) = status_json(post_v1(
        &s,
        "/obj/create",
        &json!({"obj": {"project_id": "acme/proj", "object_id": "x", "val": 1, "expected_digest": "wrong"}}),
    ))
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn tables_answer_rows_in_order_and_by_digest() {
    let s = Server::start();
    make_dataset(&s).await;
    let q = json_ok(post_v1(
        &s,
        "/table/query",
        &json!({"project_id": "acme/proj", "digest": ROWS_TABLE, "limit": 1, "offset": 1}),
    ))
    .await;
    assert_eq!(
        q["rows"],
        json!([{"digest": "0S9DGT9WaTh3NmpAYXd7YBefvlTW2psFGfzNGj9yHu8", "val": {"q": "2+2", "a": "4"}, "original_index": 1}])
    );
    let q = json_ok(post_v1(
        &s,
        "/table/query",
        &json!({"project_id": "acme/proj", "digest": ROWS_TABLE,
        "filter": {"row_digests": ["4AyQSRRsY71h5G0LnrJKkmtgs2vtUgoY3lef86WLN5A"]}}),
    ))
    .await;
    assert_eq!(q["rows"].as_array().unwrap().len(), 1);
    let n =
        json_ok(post_v1(&s, "/table/query_stats", &json!({"project_id": "acme/proj", "digest": ROWS_TABLE})))
            .await;
    assert_eq!(n["count"], 2);
    let (status, _) =
        status_json(post_v1(&s, "/table/query", &json!({"project_id": "acme/proj", "digest": "nope"}))).await;
    assert_eq!(status, 404);
    let (status, _) = status_json(post_v1(
        &s,
        "/table/create",
        &json!({"table": {"project_id": "acme/proj", "rows": [1]}}),
    ))
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn refs_resolve_objects_attributes_and_table_rows() {
    let s = Server::start();
    let d = make_dataset(&s).await;
    let obj = format!("weave:///acme/proj/object/Dataset:{d}");
    let row = format!("{obj}/attr/rows/id/4AyQSRRsY71h5G0LnrJKkmtgs2vtUgoY3lef86WLN5A/key/q");
    let r = json_ok(post_v1(&s, "/refs/read_batch", &json!({"refs": [obj, row]}))).await;
    assert_eq!(r["vals"][0]["_type"], "Dataset");
    assert_eq!(r["vals"][1], "1+1");
    let (status, _) = status_json(post_v1(&s, "/refs/read_batch", &json!({"refs": ["weave:///x"]}))).await;
    assert_eq!(status, 400);
    let acme = s.entity_key("acme");
    let (status, _) = status_json(
        s.client
            .post(format!("{}/refs/read_batch", s.base))
            .basic_auth("api", Some(&acme))
            .json(&json!({"refs": ["weave:///other/proj/object/A:b"]})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn files_are_stored_under_their_digest() {
    let s = Server::start();
    let form = reqwest::multipart::Form::new()
        .text("project_id", "acme/proj")
        .text("expected_digest", "zEIVUIj8pXMHWNtysqW8ozESqUHfqi1DCY7EIs5OohM")
        .part("file", reqwest::multipart::Part::bytes(b"print(1)\n".to_vec()).file_name("obj.py"));
    let f = json_ok(
        s.client.post(format!("{}/file/create", s.base)).basic_auth("api", Some(&s.key)).multipart(form),
    )
    .await;
    assert_eq!(f["digest"], "zEIVUIj8pXMHWNtysqW8ozESqUHfqi1DCY7EIs5OohM");
    let resp = post_v1(&s, "/file/content", &json!({"project_id": "acme/proj", "digest": f["digest"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"print(1)\n");
    let acme = s.entity_key("acme");
    let form = reqwest::multipart::Form::new()
        .text("project_id", "other/proj")
        .part("file", reqwest::multipart::Part::bytes(vec![1]));
    let (status, _) = status_json(
        s.client.post(format!("{}/file/create", s.base)).basic_auth("api", Some(&acme)).multipart(form),
    )
    .await;
    assert_eq!(status, 403);
}

fn start_body(id: &str, parent: Option<&str>, op: &str) -> Value {
    json!({"start": {"project_id": "acme/proj", "id": id, "trace_id": "t1", "parent_id": parent, "op_name": op,
        "started_at": "2026-01-01T00:00:00.000001Z", "attributes": {}, "inputs": {"x": 1}}})
}

fn end_body(id: &str, exception: Option<&str>) -> Value {
    json!({"end": {"project_id": "acme/proj", "id": id, "ended_at": "2026-01-01T00:00:01.5Z", "exception": exception,
        "output": {"y": 2}, "summary": {"status_counts": {"success": 1, "error": 0}}}})
}

async fn stream(s: &Server, body: Value) -> Vec<Value> {
    jsonl(post_v1(s, "/calls/stream_query", &body)).await
}

#[tokio::test]
async fn calls_start_end_and_query() {
    let s = Server::start();
    json_ok(post_v1(&s, "/call/start", &start_body("root", None, "weave:///acme/proj/op/main:abc"))).await;
    // An end that overtakes its start is kept and merged.
    json_ok(post_v1(&s, "/call/end", &end_body("child", Some("boom")))).await;
    json_ok(post_v1(&s, "/call/start", &start_body("child", Some("root"), "weave:///acme/proj/op/step:def")))
        .await;
    json_ok(post_v1(&s, "/call/end", &end_body("root", None))).await;

    let calls = stream(&s, json!({"project_id": "acme/proj"})).await;
    assert_eq!(calls.len(), 2);
    let child = calls.iter().find(|c| c["id"] == "child").unwrap();
    assert_eq!(child["parent_id"], "root");
    assert_eq!(child["op_name"], "weave:///acme/proj/op/step:def");
    assert_eq!(child["exception"], "boom");
    assert_eq!(child["inputs"], json!({"x": 1}));
    assert_eq!(child["summary"]["weave"]["status"], "error");
    assert_eq!(child["summary"]["weave"]["latency_ms"], 1499);
    let root = stream(&s, json!({"project_id": "acme/proj", "filter": {"trace_roots_only": true}})).await;
    assert_eq!(root.len(), 1);
    assert_eq!(root[0]["ended_at"], "2026-01-01T00:00:01.500000Z");
    let by_op = stream(
        &s,
        json!({"project_id": "acme/proj", "filter": {"op_names": ["weave:///acme/proj/op/step:*"]}}),
    )
    .await;
    assert_eq!(by_op.len(), 1);
    let by_query = stream(&s, json!({"project_id": "acme/proj", "query": {"$expr": {"$eq": [{"$getField": "summary.weave.status"}, {"$literal": "error"}]}}})).await;
    assert_eq!(by_query.len(), 1);
    assert_eq!(by_query[0]["id"], "child");
    let read = json_ok(post_v1(&s, "/call/read", &json!({"project_id": "acme/proj", "id": "root"}))).await;
    assert_eq!(read["call"]["id"], "root");
    let stats = json_ok(post_v1(&s, "/calls/query_stats", &json!({"project_id": "acme/proj"}))).await;
    assert_eq!(stats["count"], 2);

    let del =
        json_ok(post_v1(&s, "/calls/delete", &json!({"project_id": "acme/proj", "call_ids": ["root"]})))
            .await;
    assert_eq!(del["num_deleted"], 2);
    assert!(stream(&s, json!({"project_id": "acme/proj"})).await.is_empty());
}

#[tokio::test]
async fn sdk_logged_evaluations_are_evaluation_runs() {
    let s = Server::start();
    let mut start = start_body("ev", None, "weave:///acme/proj/op/Evaluation.evaluate:abc");
    start["start"]["inputs"] =
        json!({"self": "weave:///acme/proj/object/Evaluation:e1", "model": "weave:///acme/proj/object/M:m1"});
    json_ok(s.client.post(s.url("/call/start")).basic_auth("api", Some(&s.key)).json(&start)).await;
    let complete = json!({"batch": [{"project_id": "acme/proj", "id": "pas", "trace_id": "t1", "parent_id": "ev",
        "op_name": "weave:///acme/proj/op/Evaluation.predict_and_score:x", "started_at": "2026-01-01T00:00:00.1Z",
        "ended_at": "2026-01-01T00:00:00.2Z", "attributes": {}, "inputs": {}, "output": {"scores": {"acc": true}},
        "summary": {}}]});
    json_ok(s.client.post(s.url("/calls/complete")).basic_auth("api", Some(&s.key)).json(&complete)).await;
    let mut end = end_body("ev", None);
    end["end"]["output"] = json!({"acc": {"true_fraction": 1.0}});
    json_ok(s.client.post(s.url("/call/end")).basic_auth("api", Some(&s.key)).json(&end)).await;

    let runs = jsonl(s.get("/evaluation_runs?models=weave:///acme/proj/object/M:m1")).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["evaluation_run_id"], "ev");
    assert_eq!(runs[0]["evaluation"], "weave:///acme/proj/object/Evaluation:e1");
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["summary"]["acc"]["true_fraction"], 1.0);
    // A body naming another project than the path is refused.
    let mut other = complete.clone();
    other["batch"][0]["project_id"] = json!("acme/other");
    let (status, _) =
        status_json(s.client.post(s.url("/calls/complete")).basic_auth("api", Some(&s.key)).json(&other))
            .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn batched_upserts_apply_in_order() {
    let s = Server::start();
    let start = |id: &str, op: &str| json!({"mode": "start", "req": start_body(id, None, op)});
    let end = |id: &str, exception: Option<&str>| json!({"mode": "end", "req": end_body(id, exception)});
    // A start with its own end right after it, an end before its start, a start left open.
    let batch = json!({"batch": [start("a", "op"), end("a", None), end("c", Some("late")), start("c", "op"),
        start("b", "op")]});
    let r = json_ok(post_v1(&s, "/call/upsert_batch", &batch)).await;
    let res = r["res"].as_array().unwrap();
    assert_eq!(res.len(), 5, "{r}");
    assert_eq!((&res[0]["id"], &res[0]["trace_id"]), (&json!("a"), &json!("t1")));
    assert_eq!((&res[1], &res[2]), (&json!({}), &json!({})));
    assert_eq!((&res[3]["id"], &res[4]["id"]), (&json!("c"), &json!("b")));
    let calls = stream(&s, json!({"project_id": "acme/proj"})).await;
    let call = |id: &str| calls.iter().find(|c| c["id"] == id).cloned().unwrap();
    assert_eq!(call("a")["output"], json!({"y": 2}));
    assert_eq!(call("a")["ended_at"], "2026-01-01T00:00:01.500000Z");
    assert_eq!(call("a")["inputs"], json!({"x": 1}));
    assert_eq!((call("c")["op_name"].clone(), call("c")["exception"].clone()), (json!("op"), json!("late")));
    assert_eq!(call("b")["ended_at"], Value::Null);
    // A start and end pair for a call that exists already merges into it, as the two would
    // one after the other.
    let again = json!({"batch": [start("a", "op2"), end("a", Some("boom"))]});
    let r = json_ok(post_v1(&s, "/call/upsert_batch", &again)).await;
    assert_eq!(r["res"], json!([{"id": "a", "trace_id": "t1"}, {}]));
    let calls = stream(&s, json!({"project_id": "acme/proj"})).await;
    assert_eq!(calls.len(), 3);
    let a = calls.iter().find(|c| c["id"] == "a").unwrap();
    assert_eq!((a["op_name"].clone(), a["exception"].clone()), (json!("op2"), json!("boom")));
    // A bad item anywhere refuses the whole batch with a 422 and writes nothing.
    let bad = json!({"batch": [start("d", "op"), {"mode": "end", "req": {"end": {"project_id": "acme/proj",
        "id": "d", "ended_at": 5, "summary": {}}}}]});
    let (status, body) = status_json(post_v1(&s, "/call/upsert_batch", &bad)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(stream(&s, json!({"project_id": "acme/proj"})).await.len(), 3);
}

#[tokio::test]
async fn feedback_is_stored_and_queried() {
    let s = Server::start();
    let item = |r: &str| {
        json!({"project_id": "acme/proj", "weave_ref": r, "feedback_type": "wandb.runnable.acc",
        "payload": {"output": {"correct": true}}, "scorer_tags": [], "span_status_code": "UNSET"})
    };
    let r = json_ok(post_v1(
        &s,
        "/feedback/batch/create",
        &json!({"batch": [item("weave:///acme/proj/call/a"), item("weave:///acme/proj/call/b")]}),
    ))
    .await;
    assert_eq!(r["res"].as_array().unwrap().len(), 2);
    json_ok(post_v1(&s, "/feedback/create", &item("weave:///acme/proj/call/c"))).await;
    let q = json_ok(post_v1(&s, "/feedback/query", &json!({"project_id": "acme/proj",
        "query": {"$expr": {"$eq": [{"$getField": "weave_ref"}, {"$literal": "weave:///acme/proj/call/b"}]}}}))).await;
    assert_eq!(q["result"].as_array().unwrap().len(), 1);
    assert_eq!(q["result"][0]["payload"], json!({"output": {"correct": true}}));
    let (status, _) = status_json(post_v1(
        &s,
        "/feedback/query",
        &json!({"project_id": "acme/proj", "query": {"$expr": {"$regex": []}}}),
    ))
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn graphql_and_server_info_answer_the_sdk_init() {
    let s = Server::start();
    let info = json_ok(s.client.get(format!("{}/server_info", s.base))).await;
    assert!(info["min_required_weave_python_version"].is_string());
    let gql = |q: &str, vars: Value| post_v1(&s, "/graphql", &json!({"query": q, "variables": vars}));
    let p = json_ok(gql("query Project($name: String!, $entityName: String!) { project(name: $name, entityName: $entityName) { name } }", json!({"name": "proj", "entityName": "acme"}))).await;
    assert_eq!(p["data"]["project"]["name"], "proj");
    let v =
        json_ok(gql("query DefaultEntity { viewer { username defaultEntity { name } } }", json!({}))).await;
    assert!(v["data"]["viewer"]["username"].is_string());
    let u = json_ok(gql(
        "mutation UpsertModel($name: String!) { upsertModel(input: {name: $name}) { model { name } } }",
        json!({"name": "proj", "entity": "acme"}),
    ))
    .await;
    assert_eq!(u["data"]["upsertModel"]["model"]["name"], "proj");
    let other = json_ok(gql("query { somethingElse }", json!({}))).await;
    assert!(other["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn v1_bodies_are_checked_for_access_and_shape() {
    let s = Server::start();
    let acme = s.entity_key("acme");
    let (status, _) = status_json(
        s.client
            .post(format!("{}/obj/read", s.base))
            .basic_auth("api", Some(&acme))
            .json(&json!({"project_id": "other/proj", "object_id": "a", "digest": "b"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = status_json(post_v1(
        &s,
        "/obj/read",
        &json!({"project_id": "no-slash", "object_id": "a", "digest": "b"}),
    ))
    .await;
    assert_eq!(status, 400);
    let (status, body) =
        status_json(post_v1(&s, "/call/start", &json!({"start": {"project_id": "acme/proj"}}))).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));
    let (status, _) = status_json(post_v1(
        &s,
        "/call/start",
        &json!({"start": {"project_id": "acme/proj", "op_name": "x",
        "started_at": "not a time", "attributes": {}, "inputs": {}}}),
    ))
    .await;
    assert_eq!(status, 422);
    let (status, _) =
        status_json(s.client.post(format!("{}/calls/stream_query", s.base)).json(&json!({}))).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn completed_calls_without_an_id_get_one() {
    let s = Server::start();
    let complete = json!({"batch": [{"project_id": "acme/proj", "trace_id": "t", "op_name": "op",
        "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z", "attributes": {}, "inputs": {},
        "output": 1, "summary": {}}]});
    json_ok(s.client.post(s.url("/calls/complete")).basic_auth("api", Some(&s.key)).json(&complete)).await;
    let calls = stream(&s, json!({"project_id": "acme/proj"})).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["output"], 1);
    assert_eq!(calls[0]["ended_at"], "2026-01-01T00:00:01Z");
    assert!(!calls[0]["id"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_run_whose_end_came_first_is_listed_once_where_its_start_puts_it() {
    let s = Server::start();
    // The end first (a pending call, started when it arrived, of no view), then the start of
    // an evaluation run: the run takes the start's time and kind.
    json_ok(post_v1(&s, "/call/end", &end_body("late-run", None))).await;
    let mut start = start_body("late-run", None, "Evaluation.evaluate");
    start["start"]["attributes"] = json!({"weave": {"evaluation_run": "true",
        "evaluation": "weave:///acme/proj/object/E:1", "model": "weave:///acme/proj/object/M:1"}});
    json_ok(post_v1(&s, "/call/start", &start)).await;
    // A failed call under it, its end first too.
    json_ok(post_v1(&s, "/call/end", &end_body("kid", Some("boom")))).await;
    json_ok(post_v1(&s, "/call/start", &start_body("kid", Some("late-run"), "op"))).await;
    let runs = jsonl(s.get("/evaluation_runs")).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["evaluation_run_id"], "late-run");
    let started = runs[0]["started_at"].as_str().unwrap_or_default();
    assert!(started.starts_with("2026-01-01T00:00:00"), "the start's time, not the end's arrival: {started}");
    let page = jsonl(s.get("/evaluation_runs?limit=5&models=weave:///acme/proj/object/M:1")).await;
    assert_eq!(page, runs, "a page reads the same run");
    assert!(runs[0].to_string().contains("descendant_error"), "its failed child counts: {}", runs[0]);
    // Deleted, it leaves every list.
    let del = json!({"project_id": "acme/proj", "call_ids": ["late-run"]});
    json_ok(post_v1(&s, "/calls/delete", &del)).await;
    assert!(jsonl(s.get("/evaluation_runs?limit=5")).await.is_empty());
    assert!(jsonl(s.get("/evaluation_runs")).await.is_empty());
}

#[tokio::test]
async fn a_completed_batch_that_fails_part_way_writes_nothing() {
    let s = Server::start();
    let call = |i: usize| {
        json!({"project_id": "acme/proj", "id": format!("c{i}"), "trace_id": "t", "op_name": "op",
            "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z", "attributes": {},
            "inputs": {"i": i}, "output": i, "summary": {}})
    };
    let complete = |batch: Vec<Value>| {
        s.client.post(s.url("/calls/complete")).basic_auth("api", Some(&s.key)).json(&json!({"batch": batch}))
    };
    // A call that cannot be made, well past the first calls the writer gets: a 4xx as when
    // the batch was made whole before writing, and none of the batch is stored.
    let mut batch: Vec<Value> = (0..300).map(call).collect();
    batch[250]["started_at"] = json!("not a time");
    let (status, body) = status_json(complete(batch)).await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(stream(&s, json!({"project_id": "acme/proj"})).await.is_empty());
    // A call the writer refuses part-way (a deleted call's id is taken): nothing is stored.
    json_ok(complete(vec![call(1000)])).await;
    json_ok(post_v1(&s, "/calls/delete", &json!({"project_id": "acme/proj", "call_ids": ["c1000"]}))).await;
    let mut batch: Vec<Value> = (0..300).map(call).collect();
    batch[200] = call(1000);
    let (status, body) = status_json(complete(batch.clone())).await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(stream(&s, json!({"project_id": "acme/proj"})).await.is_empty());
    // The same batch without it is stored whole.
    batch.remove(200);
    json_ok(complete(batch)).await;
    assert_eq!(stream(&s, json!({"project_id": "acme/proj"})).await.len(), 299);
}

#[tokio::test]
async fn completed_batches_sent_at_once_are_each_written_whole_or_not_at_all() {
    let s = Server::start();
    // Batches that overlap are made whole before their jobs run, one alone streams to its
    // job: either way each is written whole or not at all.
    let batch = |b: usize| -> Vec<Value> {
        (0..300)
            .map(|i| {
                let started = if b == 2 && i == 250 { "not a time" } else { "2026-01-01T00:00:00Z" };
                json!({"project_id": "acme/proj", "id": format!("b{b}-{i}"), "trace_id": "t", "op_name": "op",
                    "started_at": started, "ended_at": "2026-01-01T00:00:01Z", "output": i})
            })
            .collect()
    };
    let send = |b: usize| {
        let req = s.client.post(s.url("/calls/complete")).basic_auth("api", Some(&s.key));
        status_json(req.json(&json!({"batch": batch(b)})))
    };
    let answers = futures_util::future::join_all((0..4).map(send)).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses[0], 200);
    assert!((400..500).contains(&statuses[2]), "{answers:?}");
    assert_eq!((statuses[1], statuses[3]), (200, 200));
    let calls = stream(&s, json!({"project_id": "acme/proj"})).await;
    assert_eq!(calls.len(), 900);
    assert!(calls.iter().all(|c| !c["id"].as_str().unwrap().starts_with("b2-")));
}
