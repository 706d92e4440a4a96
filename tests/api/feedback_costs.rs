//! Feedback purges, replacements, `fields` and `sort_by`; LLM token prices and the costs of
//! calls (`include_costs`); threads (`threads/stream_query`). On either store.

use serde_json::{Value, json};

use crate::helpers::*;

const P: &str = "acme/fc";

fn by_id(ids: &[&str]) -> Value {
    let eq = |id: &str| json!({"$eq": [{"$getField": "id"}, {"$literal": id}]});
    match ids {
        [one] => json!({"$expr": eq(one)}),
        many => json!({"$expr": {"$or": many.iter().map(|i| eq(i)).collect::<Vec<_>>()}}),
    }
}

async fn feedback_ids(s: &Server, extra: Value) -> Vec<String> {
    let mut body = json!({"project_id": P});
    if let (Some(m), Value::Object(e)) = (body.as_object_mut(), extra) {
        m.extend(e);
    }
    let res = json_ok(post_v1(s, "/feedback/query", &body)).await;
    res["result"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap_or("").to_string()).collect()
}

async fn create_feedback(s: &Server, id: &str, payload: Value) {
    let body = json!({"project_id": P, "id": id, "weave_ref": "weave:///acme/fc/call/c1",
        "feedback_type": "note", "payload": payload});
    json_ok(post_v1(s, "/feedback/create", &body)).await;
}

#[tokio::test]
async fn feedback_is_purged_by_id_only_and_replaced() {
    let s = Server::start();
    for (id, score) in [("f1", 1), ("f2", 2), ("f3", 3)] {
        create_feedback(&s, id, json!({"score": score})).await;
    }
    // Weave purges by id only: any other query is a 400, and nothing is deleted.
    for query in [
        json!({"$expr": {"$eq": [{"$getField": "feedback_type"}, {"$literal": "note"}]}}),
        json!({"$expr": {"$and": [{"$eq": [{"$getField": "id"}, {"$literal": "f1"}]}]}}),
        json!({"$expr": {"$in": [{"$getField": "id"}, [{"$literal": "f1"}]]}}),
    ] {
        let (status, err) =
            status_json(post_v1(&s, "/feedback/purge", &json!({"project_id": P, "query": query}))).await;
        assert_eq!(status, 400, "{err}");
        assert!(err.to_string().contains("feedback ids"), "{err}");
    }
    assert_eq!(feedback_ids(&s, json!({})).await, ["f1", "f2", "f3"]);
    let purge = |ids: &[&str]| json!({"project_id": P, "query": by_id(ids)});
    assert_eq!(json_ok(post_v1(&s, "/feedback/purge", &purge(&["f1"]))).await, json!({}));
    assert_eq!(feedback_ids(&s, json!({})).await, ["f2", "f3"]);
    json_ok(post_v1(&s, "/feedback/purge", &purge(&["f3", "nope"]))).await;
    assert_eq!(feedback_ids(&s, json!({})).await, ["f2"]);
    // Another project's rows are not this project's to purge.
    let other = json!({"project_id": "acme/other", "query": by_id(&["f2"])});
    json_ok(post_v1(&s, "/feedback/purge", &other)).await;
    assert_eq!(feedback_ids(&s, json!({})).await, ["f2"]);

    // A replacement deletes the row and creates the new one (a new id unless one is given).
    let replace = json!({"project_id": P, "feedback_id": "f2", "weave_ref": "weave:///acme/fc/call/c1",
        "feedback_type": "note", "payload": {"score": 20}});
    let res = json_ok(post_v1(&s, "/feedback/replace", &replace)).await;
    let new_id = res["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, "f2");
    assert_eq!(res["payload"], json!({"score": 20}));
    assert_eq!(feedback_ids(&s, json!({})).await, std::slice::from_ref(&new_id));
    // Replaced by a row of the same id.
    let mut same = replace.clone();
    same["feedback_id"] = json!(new_id);
    same["id"] = json!(new_id);
    same["payload"] = json!({"score": 21});
    json_ok(post_v1(&s, "/feedback/replace", &same)).await;
    let rows = json_ok(post_v1(&s, "/feedback/query", &json!({"project_id": P}))).await;
    assert_eq!(rows["result"].as_array().unwrap().len(), 1);
    assert_eq!(rows["result"][0]["payload"]["score"], 21);
    // A purged id may be created again.
    create_feedback(&s, "f1", json!({"score": 5})).await;
    assert_eq!(feedback_ids(&s, json!({})).await.len(), 2);
    // An unknown field of a replacement is refused by name.
    let mut odd = replace.clone();
    odd["colour"] = json!("red");
    let (status, err) = status_json(post_v1(&s, "/feedback/replace", &odd)).await;
    assert_eq!(status, 400);
    assert!(err.to_string().contains("colour"), "{err}");
}

#[tokio::test]
async fn feedback_queries_answer_fields_and_sort_by() {
    let s = Server::start();
    create_feedback(&s, "a", json!({"score": 2, "note": "x"})).await;
    create_feedback(&s, "b", json!({"score": 10})).await;
    create_feedback(&s, "c", json!({"note": "y"})).await;
    let sort = |field: &str, dir: &str| json!({"sort_by": [{"field": field, "direction": dir}]});
    assert_eq!(feedback_ids(&s, sort("id", "desc")).await, ["c", "b", "a"]);
    // Paths into the payload: rows holding it first in either direction, then by number.
    assert_eq!(feedback_ids(&s, sort("payload.score", "desc")).await, ["b", "a", "c"]);
    assert_eq!(feedback_ids(&s, sort("payload.score", "asc")).await, ["a", "b", "c"]);
    let mut windowed = sort("payload.score", "desc");
    windowed["limit"] = json!(1);
    windowed["offset"] = json!(1);
    assert_eq!(feedback_ids(&s, windowed).await, ["a"]);
    let body = json!({"project_id": P, "fields": ["id", "payload.note"], "sort_by": [{"field": "id", "direction": "asc"}]});
    let res = json_ok(post_v1(&s, "/feedback/query", &body)).await;
    assert_eq!(
        res["result"],
        json!([{"id": "a", "payload.note": "x"}, {"id": "b", "payload.note": null}, {"id": "c", "payload.note": "y"}])
    );
    for bad in [
        json!({"project_id": P, "fields": ["nope"]}),
        json!({"project_id": P, "sort_by": [{"field": "nope", "direction": "asc"}]}),
        json!({"project_id": P, "sort_by": [{"field": "id", "direction": "up"}]}),
    ] {
        let (status, err) = status_json(post_v1(&s, "/feedback/query", &bad)).await;
        assert_eq!(status, 400, "{bad}: {err}");
    }
}

/// Writes an ended call with `summary.usage`, through `call/upsert_batch`.
async fn llm_call(s: &Server, id: &str, started: &str, usage: Value, extra: Value) {
    let mut start = json!({"project_id": P, "id": id, "trace_id": format!("t-{id}"), "op_name": "llm",
        "started_at": started, "attributes": {}, "inputs": {}});
    if let (Some(m), Value::Object(e)) = (start.as_object_mut(), extra) {
        m.extend(e);
    }
    let ended = started.replace("00.000Z", "01.500Z");
    let end =
        json!({"project_id": P, "id": id, "ended_at": ended, "output": null, "summary": {"usage": usage}});
    let batch =
        json!({"batch": [{"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]});
    json_ok(post_v1(s, "/call/upsert_batch", &batch)).await;
}

#[tokio::test]
async fn prices_are_kept_queried_purged_and_price_calls() {
    let s = Server::start();
    let create = json!({"project_id": P, "costs": {
        "gpt-x": {"prompt_token_cost": 0.01, "completion_token_cost": 0.02, "effective_date": "2024-01-01T00:00:00Z"},
        "model-y": {"prompt_token_cost": 0.5, "completion_token_cost": 1.0, "provider_id": "provider-b",
                     "prompt_token_cost_unit": "EUR", "effective_date": "2024-01-01T00:00:00Z"}}});
    let res = json_ok(post_v1(&s, "/cost/create", &create)).await;
    let ids = res["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    let id_of =
        |llm: &str| ids.iter().find(|p| p[1] == llm).map(|p| p[0].as_str().unwrap().to_string()).unwrap();
    // A later price of gpt-x, effective from June.
    let later = json!({"project_id": P, "costs": {"gpt-x": {"prompt_token_cost": 0.1, "completion_token_cost": 0.2,
        "effective_date": "2024-06-01T00:00:00Z"}}});
    json_ok(post_v1(&s, "/cost/create", &later)).await;

    let query = |body: Value| {
        let mut b = json!({"project_id": P});
        if let (Some(m), Value::Object(e)) = (b.as_object_mut(), body) {
            m.extend(e);
        }
        b
    };
    let all = json_ok(post_v1(&s, "/cost/query", &query(json!({})))).await;
    assert_eq!(all["results"].as_array().unwrap().len(), 3);
    let priced = json_ok(post_v1(
        &s,
        "/cost/query",
        &query(json!({"query": {"$expr": {"$eq": [{"$getField": "llm_id"}, {"$literal": "model-y"}]}}})),
    ))
    .await;
    let row = &priced["results"][0];
    assert_eq!(row["provider_id"], "provider-b");
    assert_eq!(row["prompt_token_cost_unit"], "EUR");
    assert_eq!(row["completion_token_cost_unit"], "USD");
    assert_eq!(row["prompt_token_cost"], 0.5);
    let sorted = json_ok(post_v1(
        &s,
        "/cost/query",
        &query(json!({"fields": ["llm_id", "prompt_token_cost"],
            "sort_by": [{"field": "prompt_token_cost", "direction": "desc"}], "limit": 2})),
    ))
    .await;
    let sorted = sorted["results"].as_array().unwrap();
    assert_eq!(sorted.len(), 2);
    assert_eq!(sorted[0]["llm_id"], "model-y");
    assert_eq!(sorted[1]["prompt_token_cost"], 0.1);
    assert!(sorted[0]["id"].is_null(), "fields not asked for are null");

    // Calls priced with the price effective at their start, per model of their usage.
    let usage = json!({"gpt-x": {"prompt_tokens": 100, "completion_tokens": 10, "requests": 1, "total_tokens": 110},
                       "unknown-model": {"prompt_tokens": 5}});
    llm_call(&s, "march", "2024-03-01T00:00:00.000Z", usage.clone(), json!({})).await;
    llm_call(&s, "july", "2024-07-01T00:00:00.000Z", usage.clone(), json!({})).await;
    llm_call(
        &s,
        "none",
        "2024-07-01T00:00:00.000Z",
        json!({"unknown-model": {"prompt_tokens": 5}}),
        json!({}),
    )
    .await;
    let calls = jsonl(post_v1(
        &s,
        "/calls/stream_query",
        &json!({"project_id": P, "include_costs": true, "sort_by": [{"field": "started_at", "direction": "asc"}]}),
    ))
    .await;
    let costs =
        |id: &str| calls.iter().find(|c| c["id"] == id).unwrap()["summary"]["weave"].get("costs").cloned();
    let march = costs("march").unwrap();
    assert_eq!(march["gpt-x"]["prompt_token_cost"], 0.01);
    assert!((march["gpt-x"]["prompt_tokens_total_cost"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!((march["gpt-x"]["completion_tokens_total_cost"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(march["gpt-x"]["prompt_tokens"], 100);
    assert!(march.get("unknown-model").is_none(), "{march}");
    let july = costs("july").unwrap();
    assert_eq!(july["gpt-x"]["prompt_token_cost"], 0.1);
    assert!(costs("none").is_none());
    // Without include_costs there are none; call/read prices too.
    let plain = jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": P}))).await;
    assert!(plain.iter().all(|c| c["summary"]["weave"].get("costs").is_none()));
    let read =
        json_ok(post_v1(&s, "/call/read", &json!({"project_id": P, "id": "july", "include_costs": true})))
            .await;
    assert_eq!(read["call"]["summary"]["weave"]["costs"]["gpt-x"]["prompt_token_cost"], 0.1);

    // Purges name prices by id ($eq, $in, or an $or of $eq); anything else is a 400.
    let bad = json!({"project_id": P, "query": {"$expr": {"$eq": [{"$getField": "llm_id"}, {"$literal": "gpt-x"}]}}});
    let (status, err) = status_json(post_v1(&s, "/cost/purge", &bad)).await;
    assert_eq!(status, 400);
    assert!(err.to_string().contains("cost ids"), "{err}");
    let purge = json!({"project_id": P, "query": {"$expr": {"$in": [{"$getField": "id"}, [{"$literal": id_of("model-y")}]]}}});
    assert_eq!(json_ok(post_v1(&s, "/cost/purge", &purge)).await, json!({}));
    json_ok(post_v1(&s, "/cost/purge", &json!({"project_id": P, "query": by_id(&[&id_of("gpt-x")])}))).await;
    let left = json_ok(post_v1(&s, "/cost/query", &query(json!({})))).await;
    let left = left["results"].as_array().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["prompt_token_cost"], 0.1);
    // With the March price gone, the only price left applies to March's call too (Weave ranks
    // a price effective after the start below one effective at it, but still takes it).
    let calls =
        jsonl(post_v1(&s, "/calls/stream_query", &json!({"project_id": P, "include_costs": true}))).await;
    let march = calls.iter().find(|c| c["id"] == "march").unwrap();
    assert_eq!(march["summary"]["weave"]["costs"]["gpt-x"]["prompt_token_cost"], 0.1);
}

#[tokio::test]
async fn threads_are_built_from_turn_calls() {
    let s = Server::start();
    // Thread t1: turns a (1.5 s) and b (1.5 s), with a nested call of a that is no turn;
    // thread t2: one turn c, later. A call with a thread but no turn of its own is no turn.
    let turn = |thread: &str, id: &str| json!({"thread_id": thread, "turn_id": id});
    llm_call(&s, "a", "2024-01-01T00:00:00.000Z", json!({}), turn("t1", "a")).await;
    llm_call(&s, "a-child", "2024-01-01T00:00:00.000Z", json!({}), turn("t1", "a")).await;
    llm_call(&s, "b", "2024-01-01T00:01:00.000Z", json!({}), turn("t1", "b")).await;
    llm_call(&s, "c", "2024-01-02T00:00:00.000Z", json!({}), turn("t2", "c")).await;
    llm_call(&s, "d", "2024-01-03T00:00:00.000Z", json!({}), json!({"thread_id": "t3"})).await;
    let threads = |body: Value| {
        let mut b = json!({"project_id": P});
        if let (Some(m), Value::Object(e)) = (b.as_object_mut(), body) {
            m.extend(e);
        }
        jsonl(post_v1(&s, "/threads/stream_query", &b))
    };
    let all = threads(json!({})).await;
    let names: Vec<&str> = all.iter().map(|t| t["thread_id"].as_str().unwrap()).collect();
    assert_eq!(names, ["t2", "t1"], "the most recently updated first");
    let t1 = &all[1];
    assert_eq!(t1["turn_count"], 2);
    assert_eq!(t1["first_turn_id"], "a");
    assert_eq!(t1["last_turn_id"], "b");
    assert_eq!(t1["start_time"], "2024-01-01T00:00:00Z");
    assert_eq!(t1["last_updated"], "2024-01-01T00:01:01.500000Z");
    assert_eq!(t1["p50_turn_duration_ms"], 1500.0);
    assert_eq!(t1["p99_turn_duration_ms"], 1500.0);
    let sorted =
        threads(json!({"sort_by": [{"field": "turn_count", "direction": "desc"}], "limit": 1})).await;
    assert_eq!(sorted.len(), 1);
    assert_eq!(sorted[0]["thread_id"], "t1");
    let only = threads(json!({"filter": {"thread_ids": ["t2"]}})).await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["thread_id"], "t2");
    let after = threads(json!({"filter": {"after_datetime": "2024-01-01T12:00:00Z"}})).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["thread_id"], "t2");
    let before = threads(json!({"filter": {"before_datetime": "2024-01-01T00:00:30Z"}})).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["turn_count"], 1);
    // A deleted turn is not counted.
    json_ok(post_v1(&s, "/calls/delete", &json!({"project_id": P, "call_ids": ["b"]}))).await;
    let all = threads(json!({"filter": {"thread_ids": ["t1"]}})).await;
    assert_eq!(all[0]["turn_count"], 1);
    assert_eq!(all[0]["last_turn_id"], "a");
    let (status, err) = status_json(post_v1(
        &s,
        "/threads/stream_query",
        &json!({"project_id": P, "sort_by": [{"field": "nope", "direction": "asc"}]}),
    ))
    .await;
    assert_eq!(status, 400, "{err}");
    // In Weave's words.
    assert_eq!(
        err["reason"],
        "Unsupported sort field: nope. Supported fields: ['thread_id', 'turn_count', 'start_time', \
         'last_updated', 'p50_turn_duration_ms', 'p99_turn_duration_ms']"
    );
}
