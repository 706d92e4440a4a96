//! The fields of the v2 run, prediction and score routes as Weave's current API has them:
//! a score's value is the scorer's raw output (any JSON), a score is also runnable feedback on
//! the prediction's call, a prediction keeps the GenAI spans it produced, and a prediction's
//! finish leaves out the scores whose output is `null`.

use crate::helpers::*;

use serde_json::{Value, json};

const EVAL: &str = "weave:///acme/proj/object/Ev:abc";
const MODEL: &str = "weave:///acme/proj/object/M:def";
const SCORER: &str = "weave:///acme/proj/object/S:ghi";

async fn predict(s: &Server, body: Value) -> String {
    let mut body = body;
    body["model"] = json!(MODEL);
    let v = json_ok(s.post("/predictions", &body)).await;
    v["prediction_id"].as_str().expect("prediction_id").to_string()
}

async fn score(s: &Server, prediction: &str, scorer: &str, value: Value) -> String {
    let body = json!({"prediction_id": prediction, "scorer": scorer, "value": value});
    let v = json_ok(s.post("/scores", &body)).await;
    v["score_id"].as_str().expect("score_id").to_string()
}

/// A call as `call/read` answers it.
async fn call(s: &Server, id: &str) -> Value {
    json_ok(post_v1(s, "/call/read", &json!({"project_id": "acme/proj", "id": id}))).await["call"].clone()
}

#[tokio::test]
async fn a_score_value_is_the_raw_output_of_the_scorer_read_back_as_sent() {
    let s = Server::start();
    let p = predict(&s, json!({"inputs": {"q": 1}, "output": 1})).await;
    for value in [json!({"correct": true, "f1": 0.5}), json!("3.5"), json!(true), json!(2), json!([1, "a"])] {
        let id = score(&s, &p, SCORER, value.clone()).await;
        let (_, text) = status_text(s.get(&format!("/scores/{id}"))).await;
        let got: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(got["value"], value, "{text}");
        assert!(text.contains(&format!("\"value\":{value}")), "stored as sent, not as a float: {text}");
    }
    let listed: Vec<Value> = jsonl(s.get("/scores")).await.into_iter().map(|r| r["value"].clone()).collect();
    assert_eq!(listed[0], json!({"correct": true, "f1": 0.5}));
    assert_eq!(listed.len(), 5);
    // `null` is a value too; it reads as 0.0, as Weave reads a score call without output.
    let id = score(&s, &p, SCORER, Value::Null).await;
    assert_eq!(json_ok(s.get(&format!("/scores/{id}"))).await["value"], json!(0.0));
}

#[tokio::test]
async fn a_score_is_runnable_feedback_on_the_prediction_call() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, json!({"inputs": {"q": 1}, "output": 1, "evaluation_run_id": run})).await;
    score(&s, &p, SCORER, json!({"correct": true})).await;
    // A scorer that is not an object ref is stored as a score without feedback (D-scorer-ref).
    score(&s, &p, "weave:///acme/proj/op/S.score:x", json!(1)).await;

    let q = json!({"project_id": "acme/proj", "query": {"$expr": {"$eq": [{"$getField": "weave_ref"}, {"$literal": format!("weave:///acme/proj/call/{p}")}]}}});
    let rows = json_ok(post_v1(&s, "/feedback/query", &q)).await["result"].clone();
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["feedback_type"], "wandb.runnable.S");
    assert_eq!(rows[0]["payload"], json!({"output": {"correct": true}}));
    assert_eq!(rows[0]["runnable_ref"], SCORER);
    assert_eq!(rows[0]["weave_ref"], format!("weave:///acme/proj/call/{p}"));
}

#[tokio::test]
async fn a_prediction_keeps_its_genai_span_refs_in_its_attributes() {
    let s = Server::start();
    let refs = json!([{"trace_id": "t1", "span_id": "s1"}, {"trace_id": "t2", "span_id": "s2"}]);
    let p = predict(&s, json!({"inputs": {"q": 1}, "output": 1, "genai_span_ref": refs})).await;
    assert_eq!(call(&s, &p).await["attributes"]["weave"]["genai_span_ref"], refs);
    // Absent or null: no attribute.
    let q = predict(&s, json!({"inputs": {}, "output": 1, "genai_span_ref": null})).await;
    assert_eq!(call(&s, &q).await["attributes"]["weave"].get("genai_span_ref"), None);

    let (status, body) = status_json(s.post(
        "/predictions",
        &json!({"model": MODEL, "inputs": {}, "output": 1, "genai_span_ref": [{"trace_id": "t"}, 3]}),
    ))
    .await;
    assert_eq!(status, 422, "{body}");
    let locs: Vec<Value> =
        body["detail"].as_array().expect("detail").iter().map(|i| i["loc"].clone()).collect();
    assert_eq!(locs, [json!(["body", "genai_span_ref", 0, "span_id"]), json!(["body", "genai_span_ref", 1])]);
    assert_eq!(jsonl(s.get("/predictions")).await.len(), 2, "nothing written by the refused body");
}

#[tokio::test]
async fn a_prediction_finish_leaves_out_scores_whose_output_is_null() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, json!({"inputs": {"q": 1}, "output": 7, "evaluation_run_id": run})).await;
    score(&s, &p, SCORER, json!(0.5)).await;
    score(&s, &p, "weave:///acme/proj/object/Empty:1", Value::Null).await;
    json_ok(s.post(&format!("/predictions/{p}/finish"), &json!({}))).await;
    let parent = call(&s, &p).await["parent_id"].as_str().expect("parent").to_string();
    let out = call(&s, &parent).await["output"].clone();
    assert_eq!(out["scores"], json!({"S": 0.5}), "{out}");
    assert_eq!(out["output"], json!(7));
}

#[tokio::test]
async fn a_run_finish_records_its_summarize_call_as_written_by_who_finishes_it() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let other = s.entity_key("acme");
    let finish = s
        .client
        .post(s.url(&format!("/evaluation_runs/{run}/finish")))
        .basic_auth("api", Some(&other))
        .header("content-type", "application/json")
        .body("{}");
    json_ok(finish).await;
    let pred = s
        .client
        .post(s.url("/predictions"))
        .basic_auth("api", Some(&other))
        .header("content-type", "application/json")
        .body(json!({"model": MODEL, "inputs": {}, "output": 1}).to_string());
    let pred = json_ok(pred).await["prediction_id"].as_str().expect("id").to_string();
    let finisher = json_ok(s.get(&format!("/predictions/{pred}"))).await["wb_user_id"].clone();
    let q = json!({"project_id": "acme/proj", "filter": {"parent_ids": [run]}});
    let children = jsonl(post_v1(&s, "/calls/stream_query", &q)).await;
    assert_eq!(children.len(), 1, "{children:?}");
    assert!(children[0]["op_name"].as_str().expect("op").contains("summarize"));
    assert_eq!(children[0]["wb_user_id"], finisher);
    assert_ne!(
        json_ok(post_v1(&s, "/call/read", &json!({"project_id": "acme/proj", "id": run}))).await["call"]["wb_user_id"],
        finisher
    );
}

#[tokio::test]
async fn eval_results_trials_answer_the_genai_span_refs_of_their_predictions() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let refs = json!([{"trace_id": "t1", "span_id": "s1"}, {"trace_id": "t2", "span_id": "s2"}]);
    let with = predict(
        &s,
        json!({"inputs": {"q": 1}, "output": 1, "evaluation_run_id": run, "genai_span_ref": refs}),
    )
    .await;
    predict(&s, json!({"inputs": {"q": 2}, "output": 2, "evaluation_run_id": run})).await;
    let got = json_ok(s.post("/eval_results/query", &json!({"evaluation_call_ids": [run]}))).await;
    let trials: Vec<&Value> = got["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|r| r["evaluations"][0]["trials"].as_array().expect("trials"))
        .collect();
    assert_eq!(trials.len(), 2, "{got}");
    for t in trials {
        if t["predict_call_id"] == json!(with) {
            assert_eq!(t["genai_span_ref"], refs, "{t}");
        } else {
            assert_eq!(t.get("genai_span_ref"), None, "no refs, no field: {t}");
        }
    }
}
