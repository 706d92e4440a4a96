//! Predictions and scores of runs logged through the trace API, as the SDKs'
//! `Evaluation.evaluate` and `EvaluationLogger` log them: each example a `predict_and_score`
//! child of the run, holding the model's call and one call per scorer.

use crate::helpers::*;

use serde_json::{Value, json};

const EVAL: &str = "weave:///acme/proj/object/Ev:abc";
const MODEL: &str = "weave:///acme/proj/object/M:def";
const ROW: &str = "weave:///acme/proj/object/Dataset:d1/attr/rows/id/rowdigest1";
const PAS_OP: &str = "weave:///acme/proj/op/Evaluation.predict_and_score:p1";

fn at(second: u32) -> String {
    format!("2026-01-01T00:00:{second:02}Z")
}

/// A complete call as `calls/complete` takes it.
fn done(id: &str, parent: &str, op: &str, second: u32, inputs: Value, output: Value) -> Value {
    json!({"project_id": "acme/proj", "id": id, "trace_id": "t", "parent_id": parent, "op_name": op,
        "started_at": at(second), "ended_at": format!("{}.5Z", &at(second)[..19]),
        "attributes": {}, "inputs": inputs, "output": output, "summary": {}})
}

/// One example: its `predict_and_score` call, the model's call and a scorer's call.
fn example(
    id: &str,
    second: u32,
    example: Value,
    output: Value,
    scores: Value,
    latency: Value,
) -> Vec<Value> {
    vec![
        done(
            id,
            "run",
            PAS_OP,
            second,
            json!({"self": EVAL, "model": MODEL, "example": example}),
            json!({"output": output, "scores": scores, "model_latency": latency}),
        ),
        done(
            &format!("{id}-m"),
            id,
            "weave:///acme/proj/op/M.predict:m1",
            second,
            json!({"self": MODEL}),
            output,
        ),
        done(
            &format!("{id}-s"),
            id,
            "weave:///acme/proj/op/exact:s1",
            second,
            json!({}),
            scores["exact"].clone(),
        ),
    ]
}

/// Logs a run as the Python SDK does: the root through `call/start`, the examples (and the
/// summary) complete through `calls/complete`, then the root's end.
async fn log_sdk_run(s: &Server) {
    let start = json!({"start": {"project_id": "acme/proj", "id": "run", "trace_id": "t",
        "op_name": "weave:///acme/proj/op/Evaluation.evaluate:e1", "started_at": at(0),
        "attributes": {}, "inputs": {"self": EVAL, "model": MODEL}}});
    json_ok(s.post("/call/start", &start)).await;
    let mut batch = example(
        "ex1",
        1,
        json!(ROW),
        json!("a"),
        json!({"exact": true, "f1": {"precision": 0.5, "recall": 1, "note": "x"}}),
        json!(0.25),
    );
    batch.extend(example(
        "ex2",
        2,
        json!({"q": 2}),
        json!({"a": 1}),
        json!({"exact": false}),
        json!({"mean": 2}),
    ));
    batch.push(done("sum", "run", "weave:///acme/proj/op/Evaluation.summarize:u1", 3, json!({}), json!({})));
    json_ok(s.post("/calls/complete", &json!({"batch": batch}))).await;
    let end = json!({"end": {"project_id": "acme/proj", "id": "run", "ended_at": at(4),
        "output": {"exact": {"true_count": 1}}, "summary": {}}});
    json_ok(s.post("/call/end", &end)).await;
}

fn field(rows: &[Value], name: &str) -> Vec<Value> {
    rows.iter().map(|r| r[name].clone()).collect()
}

#[tokio::test]
async fn an_sdk_run_lists_one_prediction_per_example() {
    let s = Server::start();
    log_sdk_run(&s).await;
    let rows = jsonl(s.get("/predictions?evaluation_run_id=run")).await;
    let user = rows[0]["wb_user_id"].clone();
    assert!(user.is_string());
    assert_eq!(
        rows,
        [
            json!({"prediction_id": "ex1", "model": MODEL, "inputs": ROW, "output": "a",
                   "evaluation_run_id": "run", "wb_user_id": user}),
            json!({"prediction_id": "ex2", "model": MODEL, "inputs": {"q": 2}, "output": {"a": 1},
                   "evaluation_run_id": "run", "wb_user_id": user}),
        ]
    );
    assert_eq!(json_ok(s.get("/predictions/ex2")).await, rows[1]);
    // The project's list holds them too; the model's and scorers' calls are no predictions.
    assert_eq!(field(&jsonl(s.get("/predictions")).await, "prediction_id"), [json!("ex1"), json!("ex2")]);
    for id in ["run", "ex1-m", "ex1-s", "sum"] {
        let (status, _) = status_json(s.get(&format!("/predictions/{id}"))).await;
        assert_eq!(status, 404, "{id}");
    }
    // Paged like the flagged ones.
    assert_eq!(
        field(&jsonl(s.get("/predictions?evaluation_run_id=run&limit=1&offset=1")).await, "prediction_id"),
        [json!("ex2")]
    );
}

#[tokio::test]
async fn an_sdk_run_lists_a_score_per_number_or_boolean_of_its_scorers_results() {
    let s = Server::start();
    log_sdk_run(&s).await;
    let rows = jsonl(s.get("/scores?evaluation_run_id=run")).await;
    let got: Vec<(Value, Value, Value)> =
        rows.iter().map(|r| (r["score_id"].clone(), r["scorer"].clone(), r["value"].clone())).collect();
    assert_eq!(
        got,
        [
            (json!("ex1:exact"), json!("exact"), json!(1.0)),
            (json!("ex1:f1.precision"), json!("f1.precision"), json!(0.5)),
            (json!("ex1:f1.recall"), json!("f1.recall"), json!(1.0)),
            (json!("ex2:exact"), json!("exact"), json!(0.0)),
        ]
    );
    assert!(rows.iter().all(|r| r["evaluation_run_id"] == "run" && r["wb_user_id"].is_string()));
    for r in &rows {
        let id = r["score_id"].as_str().unwrap();
        assert_eq!(&json_ok(s.get(&format!("/scores/{id}"))).await, r);
    }
    for id in ["ex1:f1.note", "ex1:nope", "ex1", "nope:exact"] {
        let (status, body) = status_json(s.get(&format!("/scores/{id}"))).await;
        assert_eq!((status, body), (404, json!({"reason": format!("Score {id} not found")})));
    }
    let page = jsonl(s.get("/scores?evaluation_run_id=run&limit=2&offset=1")).await;
    assert_eq!(field(&page, "score_id"), [json!("ex1:f1.precision"), json!("ex1:f1.recall")]);
    assert_eq!(jsonl(s.get("/scores")).await, rows);
    assert!(jsonl(s.get("/scores?evaluation_run_id=other")).await.is_empty());
}

#[tokio::test]
async fn scorer_names_are_escaped_in_score_ids() {
    let s = Server::start();
    let start = json!({"start": {"project_id": "acme/proj", "id": "run", "trace_id": "t",
        "op_name": "Evaluation.evaluate", "started_at": at(0), "attributes": {}, "inputs": {}}});
    json_ok(s.post("/call/start", &start)).await;
    let batch =
        example("ex", 1, json!({"q": 1}), json!(1), json!({"a.b": {"c:d/e": 3}, "exact": 1}), json!(0));
    json_ok(s.post("/calls/complete", &json!({"batch": batch}))).await;
    let rows = jsonl(s.get("/scores?evaluation_run_id=run")).await;
    assert_eq!(field(&rows, "score_id"), [json!("ex:a%2Eb.c%3Ad%2Fe"), json!("ex:exact")]);
    assert_eq!(field(&rows, "scorer"), [json!("a.b.c:d/e"), json!("exact")]);
    let read = json_ok(s.get("/scores/ex:a%252Eb.c%253Ad%252Fe")).await;
    assert_eq!(read, rows[0]);
}

#[tokio::test]
async fn a_typescript_run_logged_through_upsert_batch_lists_its_predictions() {
    let s = Server::start();
    let start = |id: &str, parent: Option<&str>, op: &str, inputs: Value| {
        json!({"mode": "start", "req": {"start": {"project_id": "acme/proj", "id": id, "trace_id": "t",
            "parent_id": parent, "op_name": op, "started_at": at(1), "attributes": {}, "inputs": inputs}}})
    };
    let end = |id: &str, output: Value| {
        json!({"mode": "end", "req": {"end": {"project_id": "acme/proj", "id": id, "ended_at": at(2),
            "output": output, "summary": {}}}})
    };
    let batch = json!({"batch": [
        start("run", None, "Evaluation.evaluate", json!({"self": EVAL, "model": MODEL})),
        start("ex", Some("run"), "Evaluation.predictAndScore", json!({"self": EVAL, "model": MODEL, "example": {"q": 1}})),
        end("ex", json!({"output": 7, "scores": {"ok": true}, "model_latency": 0.1})),
        end("run", json!({})),
    ]});
    json_ok(post_v1(&s, "/call/upsert_batch", &batch)).await;
    let rows = jsonl(s.get("/predictions?evaluation_run_id=run")).await;
    assert_eq!(field(&rows, "prediction_id"), [json!("ex")]);
    assert_eq!((rows[0]["inputs"].clone(), rows[0]["output"].clone()), (json!({"q": 1}), json!(7)));
    let scores = jsonl(s.get("/scores?evaluation_run_id=run")).await;
    assert_eq!((scores[0]["score_id"].clone(), scores[0]["value"].clone()), (json!("ex:ok"), json!(1.0)));
}

#[tokio::test]
async fn predictions_of_the_v2_routes_are_not_counted_twice() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let mut ids = vec![];
    for q in 0..2 {
        let body = json!({"model": MODEL, "inputs": {"q": q}, "output": q, "evaluation_run_id": run});
        let p = json_ok(s.post("/predictions", &body)).await["prediction_id"].as_str().unwrap().to_string();
        let score = json!({"prediction_id": p, "scorer": "weave:///acme/proj/object/S:1", "value": 0.5});
        json_ok(s.post("/scores", &score)).await;
        ids.push(json!(p));
    }
    json_ok(s.post(&format!("/predictions/{}/finish", ids[0].as_str().unwrap()), &json!({}))).await;
    let rows = jsonl(s.get(&format!("/predictions?evaluation_run_id={run}"))).await;
    assert_eq!(field(&rows, "prediction_id"), ids);
    assert_eq!(field(&rows, "inputs"), [json!({"q": 0}), json!({"q": 1})]);
    assert_eq!(jsonl(s.get("/predictions")).await.len(), 2);
    let scores = jsonl(s.get(&format!("/scores?evaluation_run_id={run}"))).await;
    assert_eq!(scores.len(), 2, "{scores:?}");
    // Finishing the run reads the predict_and_score outputs; it lists nothing new either.
    json_ok(s.post(&format!("/evaluation_runs/{run}/finish"), &json!({}))).await;
    assert_eq!(jsonl(s.get(&format!("/predictions?evaluation_run_id={run}"))).await.len(), 2);
    assert_eq!(jsonl(s.get(&format!("/scores?evaluation_run_id={run}"))).await.len(), 2);
}

#[tokio::test]
async fn a_logged_prediction_is_finished_scored_and_deleted_through_the_v2_routes() {
    let s = Server::start();
    log_sdk_run(&s).await;
    // Its logger ended it: finishing it changes nothing.
    json_ok(s.post("/predictions/ex1/finish", &json!({}))).await;
    assert_eq!(json_ok(s.get("/predictions/ex1")).await["output"], "a");
    // A score recorded through the v2 route is listed beside the logged ones.
    let body = json!({"prediction_id": "ex2", "scorer": "weave:///acme/proj/object/S:1", "value": 0.75});
    let sc = json_ok(s.post("/scores", &body)).await["score_id"].as_str().unwrap().to_string();
    let read = json_ok(s.get(&format!("/scores/{sc}"))).await;
    assert_eq!((read["value"].clone(), read["evaluation_run_id"].clone()), (json!(0.75), json!("run")));
    let scores = jsonl(s.get("/scores?evaluation_run_id=run")).await;
    assert_eq!(scores.len(), 5);
    assert_eq!(scores[0]["score_id"], json!(sc), "score calls first, then the logged scores");
    // Deleting the prediction deletes its call tree: its model's and scorers' calls, its scores.
    let n = json_ok(s.delete("/predictions?prediction_ids=ex1")).await;
    assert_eq!(n, json!({"num_deleted": 3}));
    assert_eq!(
        field(&jsonl(s.get("/predictions?evaluation_run_id=run")).await, "prediction_id"),
        [json!("ex2")]
    );
    let left = field(&jsonl(s.get("/scores?evaluation_run_id=run")).await, "score_id");
    assert_eq!(left, [json!(sc), json!("ex2:exact")]);
}
