//! The calls API's whole request surface: every filter, order and option of `calls/query` is
//! either followed as Weave follows it or refused by name, and call writes keep threads, turns
//! and W&B runs.

use serde_json::{Value, json};

use crate::helpers::*;

const P: &str = "acme/proj";

/// Writes an ended call through `call/upsert_batch`, with `extra` merged into its start.
async fn call(s: &Server, id: &str, started: u32, inputs: Value, output: Value, extra: Value) {
    let mut start = json!({"project_id": P, "id": id, "trace_id": format!("t-{id}"), "op_name": "f",
        "started_at": format!("2024-01-01T00:00:{started:02}Z"), "attributes": {}, "inputs": inputs});
    if let (Some(m), Value::Object(e)) = (start.as_object_mut(), extra) {
        m.extend(e);
    }
    let end = json!({"project_id": P, "id": id, "ended_at": format!("2024-01-01T00:01:{started:02}Z"),
        "output": output, "summary": {}, "wb_run_step_end": 9});
    let batch =
        json!({"batch": [{"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]});
    json_ok(post_v1(s, "/call/upsert_batch", &batch)).await;
}

async fn ids(s: &Server, body: Value) -> Vec<String> {
    let mut body = body;
    body["project_id"] = json!(P);
    jsonl(post_v1(s, "/calls/stream_query", &body))
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

const EVAL_A: &str = "weave:///acme/proj/object/EvalA:aaa";
const EVAL_A2: &str = "weave:///acme/proj/object/EvalA:bbb";
const EVAL_B: &str = "weave:///acme/proj/object/EvalB:ccc";

async fn seeded() -> Server {
    let s = Server::start();
    call(
        &s,
        "a",
        1,
        json!({"self": EVAL_A, "x": 3}),
        json!({"r": EVAL_B}),
        json!({"thread_id": "th1", "turn_id": "a", "wb_run_id": "run1", "wb_run_step": 1}),
    )
    .await;
    call(
        &s,
        "b",
        2,
        json!({"self": EVAL_A2, "x": 10}),
        json!(1),
        json!({"thread_id": "th1", "turn_id": "b"}),
    )
    .await;
    call(
        &s,
        "c",
        3,
        json!({"self": EVAL_B, "x": "text"}),
        json!(null),
        json!({"thread_id": "th2", "wb_run_id": "run2"}),
    )
    .await;
    // The ref's text as an object key, not a value: no ref is held.
    call(&s, "d", 4, json!({"nested": {EVAL_A: 1}, "x": null}), json!(null), json!({})).await;
    call(&s, "e", 5, json!({"deep": [{"r": EVAL_A}]}), json!(null), json!({})).await;
    s
}

#[tokio::test]
async fn input_and_output_refs_filter_as_weave_finds_refs() {
    let s = seeded().await;
    assert_eq!(ids(&s, json!({"filter": {"input_refs": [EVAL_A]}})).await, ["a", "e"]);
    assert_eq!(
        ids(&s, json!({"filter": {"input_refs": ["weave:///acme/proj/object/EvalA:*"]}})).await,
        ["a", "b", "e"]
    );
    assert_eq!(ids(&s, json!({"filter": {"input_refs": [EVAL_B, EVAL_A2]}})).await, ["b", "c"]);
    assert_eq!(ids(&s, json!({"filter": {"output_refs": [EVAL_B]}})).await, ["a"]);
    // The window counts matching calls only.
    assert_eq!(ids(&s, json!({"filter": {"input_refs": [EVAL_A]}, "offset": 1, "limit": 1})).await, ["e"]);
}

#[tokio::test]
async fn threads_turns_and_runs_are_kept_and_filter() {
    let s = seeded().await;
    assert_eq!(ids(&s, json!({"filter": {"thread_ids": ["th1"]}})).await, ["a", "b"]);
    assert_eq!(ids(&s, json!({"filter": {"turn_ids": ["b"]}})).await, ["b"]);
    assert_eq!(ids(&s, json!({"filter": {"wb_run_ids": ["run2", "run1"]}})).await, ["a", "c"]);
    let read = json_ok(post_v1(&s, "/call/read", &json!({"project_id": P, "id": "a"}))).await;
    let c = &read["call"];
    assert_eq!((c["thread_id"].as_str(), c["turn_id"].as_str()), (Some("th1"), Some("a")));
    assert_eq!((c["wb_run_id"].as_str(), c["wb_run_step"].as_i64()), (Some("run1"), Some(1)));
    assert_eq!(c["wb_run_step_end"], 9);
    // A start and an end sent apart, and a completed call, keep them too.
    json_ok(post_v1(&s, "/call/start", &json!({"start": {"project_id": P, "id": "s", "op_name": "g",
        "started_at": "2024-01-01T00:00:09Z", "attributes": {}, "inputs": {}, "thread_id": "th3", "wb_run_step": 4}})))
    .await;
    json_ok(post_v1(
        &s,
        "/call/end",
        &json!({"end": {"project_id": P, "id": "s", "ended_at": "2024-01-01T00:00:10Z",
        "summary": {}, "wb_run_step_end": 5}}),
    ))
    .await;
    json_ok(s.post("/calls/complete", &json!({"batch": [{"project_id": P, "id": "k", "trace_id": "k",
        "op_name": "g", "started_at": "2024-01-01T00:00:11Z", "ended_at": "2024-01-01T00:00:12Z", "attributes": {},
        "inputs": {}, "summary": {}, "thread_id": "th3", "turn_id": "k"}]})))
    .await;
    let rows = jsonl(post_v1(
        &s,
        "/calls/stream_query",
        &json!({"project_id": P, "filter": {"thread_ids": ["th3"]}}),
    ))
    .await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["wb_run_step"].as_i64(), rows[0]["wb_run_step_end"].as_i64()), (Some(4), Some(5)));
    assert_eq!(rows[1]["turn_id"], "k");
}

#[tokio::test]
async fn an_unread_field_of_a_completed_call_is_refused_by_its_path_and_nothing_is_written() {
    let s = Server::start();
    let call = |id: &str| {
        json!({"project_id": P, "id": id, "trace_id": id, "op_name": "g", "started_at": "2024-01-01T00:00:11Z",
            "ended_at": "2024-01-01T00:00:12Z", "attributes": {"weave": {"any": {"key": 1}}},
            "inputs": {"x": {"y": [1, {"z": 2}]}}, "output": {"o": 1}, "summary": {"s": {"t": 1}}})
    };
    let mut bad = call("b");
    bad["bogus"] = json!({"a": 1});
    bad["nope\u{e9}"] = json!(1);
    let (status, err) = status_json(s.post("/calls/complete", &json!({"batch": [call("a"), bad]}))).await;
    assert_eq!(status, 400, "{err}");
    let reason = err["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("batch[1].bogus") && reason.contains("batch[1].nope\u{e9}"), "{err}");
    assert!(!reason.contains("attributes") && !reason.contains("inputs"), "{err}");
    // Asking for nothing passes; keys of any depth inside attributes, inputs, output and
    // summary are values, not fields.
    let mut empty = call("c");
    empty["bogus"] = Value::Null;
    json_ok(s.post("/calls/complete", &json!({"batch": [call("a"), empty]}))).await;
    let rows = jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": P}))).await;
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["a", "c"], "the refused batch wrote nothing");
}

#[tokio::test]
async fn sort_by_orders_by_nested_fields_in_the_store() {
    let s = seeded().await;
    let by = |field: &str, dir: &str| json!({"sort_by": [{"field": field, "direction": dir}]});
    // Null or missing first, then numbers, then text; ties (d and e have no x) end on the id
    // descending, as Weave's servers end them.
    assert_eq!(ids(&s, by("inputs.x", "asc")).await, ["e", "d", "a", "b", "c"]);
    assert_eq!(ids(&s, by("inputs.x", "desc")).await, ["c", "b", "a", "e", "d"]);
    // A last key started_at: ties in its direction.
    let tie = json!({"sort_by": [{"field": "inputs.x", "direction": "asc"}, {"field": "started_at", "direction": "asc"}]});
    assert_eq!(ids(&s, tie).await, ["d", "e", "a", "b", "c"]);
    // The trace name: the display name if any, else the op's name.
    assert_eq!(ids(&s, by("summary.weave.trace_name", "asc")).await.len(), 5);
    assert_eq!(ids(&s, by("started_at", "desc")).await, ["e", "d", "c", "b", "a"]);
    assert_eq!(ids(&s, json!({"sort_by": [{"field": "thread_id", "direction": "desc"}, {"field": "started_at", "direction": "desc"}]})).await, ["c", "b", "a", "e", "d"]);
    let mut limited = by("inputs.x", "desc");
    limited["limit"] = json!(2);
    assert_eq!(ids(&s, limited).await, ["c", "b"]);
    assert_eq!(ids(&s, by("summary.weave.latency_ms", "asc")).await.len(), 5);
    for bad in [by("inputs.x", "sideways"), by("nonsense", "asc"), by("feedback.[x].payload", "asc")] {
        let mut body = bad;
        body["project_id"] = json!(P);
        let (status, _) = status_json(post_v1(&s, "/calls/stream_query", &body)).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn unread_fields_are_refused_by_name() {
    let s = seeded().await;
    for (body, field) in [
        (json!({"project_id": P, "filter": {"thread_idz": ["x"]}}), "filter.thread_idz"),
        (json!({"project_id": P, "group_by": "op_name"}), "group_by"),
    ] {
        let (status, err) = status_json(post_v1(&s, "/calls/stream_query", &body)).await;
        assert_eq!(status, 400, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let start = json!({"start": {"project_id": P, "op_name": "f", "started_at": "2024-01-01T00:00:00Z",
        "attributes": {}, "inputs": {}, "color": "red"}});
    let (status, err) = status_json(post_v1(&s, "/call/start", &start)).await;
    assert_eq!(status, 400);
    assert!(err.to_string().contains("start.color"), "{err}");
    // Output-only fields, and fields that ask for nothing, are accepted.
    let ok = json!({"project_id": P, "columns": ["id"], "include_costs": true, "expand_columns": ["inputs.self"],
        "latest_only": false, "include_usernames": true, "unknown_but_null": null});
    assert_eq!(ids(&s, ok).await.len(), 5);
}

#[tokio::test]
async fn feedback_is_included_and_queried() {
    let s = seeded().await;
    let fb = |call: &str, scorer: &str, output: Value| {
        json!({"project_id": P, "weave_ref": format!("weave:///acme/proj/call/{call}"),
            "feedback_type": format!("wandb.runnable.{scorer}"), "payload": {"output": output},
            "runnable_ref": format!("weave:///acme/proj/op/{scorer}:d1")})
    };
    json_ok(post_v1(&s, "/feedback/create", &fb("a", "acc", json!(true)))).await;
    json_ok(post_v1(&s, "/feedback/create", &fb("b", "acc", json!(0.5)))).await;
    json_ok(post_v1(&s, "/feedback/create", &fb("b", "f1", json!({"f1": 0.7})))).await;
    let rows =
        jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": P, "include_feedback": true}))).await;
    let counts: Vec<usize> =
        rows.iter().map(|c| c["summary"]["weave"]["feedback"].as_array().unwrap().len()).collect();
    assert_eq!(counts, [1, 2, 0, 0, 0]);
    assert_eq!(rows[0]["summary"]["weave"]["feedback"][0]["payload"]["output"], true);
    // The fields Weave reads feedback with for calls: every column but the project.
    assert!(rows[0]["summary"]["weave"]["feedback"][0].get("project_id").is_none());
    // What `get_calls(scored_by=...)` sends: the output exists, or the scorer's ref is the one named.
    let exists = |name: &str| json!({"$not": [{"$eq": [{"$getField": format!("feedback.[wandb.runnable.{name}].payload.output")}, {"$literal": ""}]}]});
    let q = |e: Value| json!({"query": {"$expr": e}});
    assert_eq!(ids(&s, q(exists("acc"))).await, ["a", "b"]);
    assert_eq!(ids(&s, q(json!({"$and": [exists("acc"), exists("f1")]}))).await, ["b"]);
    let by_ref = json!({"$eq": [{"$getField": "feedback.[wandb.runnable.f1].runnable_ref"}, {"$literal": "weave:///acme/proj/op/f1:d1"}]});
    assert_eq!(ids(&s, q(by_ref)).await, ["b"]);
    let value =
        json!({"$eq": [{"$getField": "feedback.[wandb.runnable.acc].payload.output"}, {"$literal": "true"}]});
    assert_eq!(ids(&s, q(value)).await, ["a"]);
    // Without include_feedback the rows carry none.
    let rows = jsonl(post_v1(
        &s,
        "/calls/stream_query",
        &json!({"project_id": P, "query": {"$expr": exists("acc")}}),
    ))
    .await;
    assert!(rows[0]["summary"]["weave"].get("feedback").is_none());
}

/// Sort keys on JSON paths with quotes or backslashes in them are values, never SQL: they
/// answer 200 on every store. A NUL, which SQLite's JSON paths cannot hold, is a 400 on both.
#[tokio::test]
async fn sort_keys_with_any_character_are_values() {
    let s = Server::start();
    let start = json!({"start": {"project_id": "acme/proj", "id": "c1", "trace_id": "t", "op_name": "op",
        "started_at": "2026-01-01T00:00:00Z", "attributes": {}, "inputs": {"a'b": 1}}});
    json_ok(post_v1(&s, "/call/start", &start)).await;
    for key in ["a'b", "a\"b", "a\\b", "'\"\\"] {
        let body = json!({"project_id": "acme/proj", "sort_by": [{"field": format!("inputs.{key}"), "direction": "desc"}]});
        let rows = jsonl(post_v1(&s, "/calls/stream_query", &body)).await;
        assert_eq!(rows.len(), 1, "{key:?}");
        let stats = json_ok(post_v1(&s, "/calls/query_stats", &body)).await;
        assert_eq!(stats["count"], 1, "{key:?}: {stats}");
    }
    for path in ["/calls/stream_query", "/calls/query_stats"] {
        let body = json!({"project_id": "acme/proj", "sort_by": [{"field": "inputs.a\u{0}b"}]});
        let (status, err) = status_json(post_v1(&s, path, &body)).await;
        assert_eq!(status, 400, "{path}: {err}");
        assert!(err["reason"].as_str().unwrap_or_default().contains("Unsupported sort_by field"), "{err}");
    }
}
