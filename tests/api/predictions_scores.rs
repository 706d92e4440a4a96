//! Predictions and scores: create, read, list, finish and delete through the HTTP API.

use crate::helpers::*;

use serde_json::{Value, json};

const EVAL: &str = "weave:///acme/proj/object/Ev:abc";
const MODEL: &str = "weave:///acme/proj/object/M:def";
const SCORER: &str = "weave:///acme/proj/object/S:ghi";

/// Creates a prediction (under `run` when given) and returns its id.
async fn predict(s: &Server, run: Option<&str>, inputs: Value, output: Value) -> String {
    let mut body = json!({"model": MODEL, "inputs": inputs, "output": output});
    if let Some(run) = run {
        body["evaluation_run_id"] = json!(run);
    }
    let v = json_ok(s.post("/predictions", &body)).await;
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "only prediction_id: {v}");
    v["prediction_id"].as_str().expect("prediction_id").to_string()
}

/// Records a score for a prediction and returns its id.
async fn score(s: &Server, prediction: &str, value: Value) -> String {
    let body = json!({"prediction_id": prediction, "scorer": SCORER, "value": value});
    let v = json_ok(s.post("/scores", &body)).await;
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "only score_id: {v}");
    v["score_id"].as_str().expect("score_id").to_string()
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().expect("object").keys().map(String::as_str).collect()
}

fn ids_of(rows: &[Value], field: &str) -> Vec<String> {
    rows.iter().map(|r| r[field].as_str().expect("id").to_string()).collect()
}

#[tokio::test]
async fn prediction_read_has_exactly_the_documented_fields_under_a_run_and_standalone() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, Some(&run), json!({"q": "hi"}), json!("yo")).await;
    let alone = predict(&s, None, json!({"q": "standalone"}), json!({"a": [1, 2]})).await;
    assert_ne!(p, alone);

    let got = json_ok(s.get(&format!("/predictions/{p}"))).await;
    assert_eq!(
        keys_of(&got),
        ["prediction_id", "model", "inputs", "output", "evaluation_run_id", "wb_user_id"]
    );
    let user = got["wb_user_id"].as_str().expect("wb_user_id is a string").to_string();
    assert!(!user.is_empty());
    assert_ne!(user, s.key, "the user id is the key's id, never its secret");
    assert_eq!(
        got,
        json!({"prediction_id": p, "model": MODEL, "inputs": {"q": "hi"}, "output": "yo",
               "evaluation_run_id": run, "wb_user_id": user})
    );

    let got = json_ok(s.get(&format!("/predictions/{alone}"))).await;
    assert_eq!(
        keys_of(&got),
        ["prediction_id", "model", "inputs", "output", "evaluation_run_id", "wb_user_id"]
    );
    assert_eq!(
        got,
        json!({"prediction_id": alone, "model": MODEL, "inputs": {"q": "standalone"},
               "output": {"a": [1, 2]}, "evaluation_run_id": null, "wb_user_id": user})
    );
}

#[tokio::test]
async fn prediction_wb_user_id_is_the_id_of_the_writing_key() {
    let s = Server::start();
    let p = predict(&s, None, json!({"q": 1}), json!(1)).await;
    let got = json_ok(s.get(&format!("/predictions/{p}"))).await;
    let user = got["wb_user_id"].as_str().expect("wb_user_id").to_string();
    let (ok, listing, _) = weft(&s.data_dir(), &["keys", "list"]);
    assert!(ok);
    let ids: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(ids, [user.as_str()], "the only key is the admin key: {listing}");
}

#[tokio::test]
async fn prediction_list_filters_by_run_and_otherwise_lists_the_whole_project() {
    let s = Server::start();
    let run_a = s.create_run(EVAL, MODEL).await;
    let run_b = s.create_run(EVAL, MODEL).await;
    let a1 = predict(&s, Some(&run_a), json!({"i": 1}), json!(1)).await;
    let b1 = predict(&s, Some(&run_b), json!({"i": 2}), json!(2)).await;
    let a2 = predict(&s, Some(&run_a), json!({"i": 3}), json!(3)).await;
    let alone = predict(&s, None, json!({"i": 4}), json!(4)).await;

    let rows = jsonl(s.get(&format!("/predictions?evaluation_run_id={run_a}"))).await;
    assert_eq!(ids_of(&rows, "prediction_id"), [a1.clone(), a2.clone()]);
    assert!(rows.iter().all(|r| r["evaluation_run_id"] == json!(run_a)));
    assert_eq!(rows[1]["inputs"], json!({"i": 3}));
    assert_eq!(rows[1]["output"], json!(3));

    let rows = jsonl(s.get(&format!("/predictions?evaluation_run_id={run_b}"))).await;
    assert_eq!(ids_of(&rows, "prediction_id"), std::slice::from_ref(&b1));

    let rows = jsonl(s.get("/predictions")).await;
    assert_eq!(ids_of(&rows, "prediction_id"), [a1, b1, a2, alone]);

    let rows = jsonl(s.get("/predictions?evaluation_run_id=no-such-run")).await;
    assert!(rows.is_empty());
}

#[tokio::test]
async fn prediction_list_pages_with_limit_and_offset() {
    let s = Server::start();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(predict(&s, None, json!({"i": i}), json!(i)).await);
    }
    let rows = jsonl(s.get("/predictions?limit=2&offset=1")).await;
    assert_eq!(ids_of(&rows, "prediction_id"), ids[1..3]);
    let rows = jsonl(s.get("/predictions?offset=3")).await;
    assert_eq!(ids_of(&rows, "prediction_id"), ids[3..]);
    let rows = jsonl(s.get("/predictions?limit=2")).await;
    assert_eq!(ids_of(&rows, "prediction_id"), ids[..2]);
    let rows = jsonl(s.get("/predictions?offset=5")).await;
    assert!(rows.is_empty());
}

#[tokio::test]
async fn prediction_list_is_jsonl_with_one_newline_terminated_line_per_row() {
    let s = Server::start();
    let p1 = predict(&s, None, json!({"i": 1}), json!("a")).await;
    let p2 = predict(&s, None, json!({"i": 2}), json!("b")).await;
    let resp = s.get("/predictions").send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/jsonl");
    let text = resp.text().await.expect("body");
    assert!(text.ends_with('\n'), "the last line ends with a newline: {text:?}");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    let first: Value = serde_json::from_str(lines[0]).expect("JSON line");
    let second: Value = serde_json::from_str(lines[1]).expect("JSON line");
    assert_eq!((first["prediction_id"].clone(), second["prediction_id"].clone()), (json!(p1), json!(p2)));
}

#[tokio::test]
async fn prediction_under_an_unknown_run_is_404_and_writes_nothing() {
    let s = Server::start();
    let body = json!({"model": MODEL, "inputs": {"q": 1}, "output": 1, "evaluation_run_id": "no-such-run"});
    let (status, text) = status_text(s.post("/predictions", &body)).await;
    assert_eq!(status, 404);
    assert_eq!(text, r#"{"reason":"Evaluation run no-such-run not found"}"#);
    assert!(jsonl(s.get("/predictions")).await.is_empty());
}

#[tokio::test]
async fn prediction_create_with_empty_body_reports_three_missing_fields() {
    let s = Server::start();
    let (status, body) = status_json(s.post("/predictions", &json!({}))).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [
            {"type": "missing", "loc": ["body", "model"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "inputs"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "output"], "msg": "Field required", "input": {}},
        ]})
    );
}

#[tokio::test]
async fn prediction_inputs_must_be_an_object() {
    let s = Server::start();
    let (status, body) =
        status_json(s.post("/predictions", &json!({"model": MODEL, "inputs": [], "output": 1}))).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "dict_type", "loc": ["body", "inputs"],
                           "msg": "Input should be a valid dictionary", "input": []}]})
    );
    assert!(jsonl(s.get("/predictions")).await.is_empty());
}

#[tokio::test]
async fn prediction_finish_succeeds_and_keeps_the_output() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, Some(&run), json!({"q": "hi"}), json!({"answer": 42})).await;
    score(&s, &p, json!(0.5)).await;
    let before = json_ok(s.get(&format!("/predictions/{p}"))).await;

    let (status, text) = status_text(s.post(&format!("/predictions/{p}/finish"), &json!({}))).await;
    assert_eq!((status, text.as_str()), (200, r#"{"success":true}"#));

    let after = json_ok(s.get(&format!("/predictions/{p}"))).await;
    assert_eq!(after["output"], json!({"answer": 42}));
    assert_eq!(after, before);
}

#[tokio::test]
async fn standalone_prediction_finish_succeeds_and_keeps_the_output() {
    let s = Server::start();
    let p = predict(&s, None, json!({"q": "hi"}), json!("yo")).await;
    let (status, text) = status_text(s.post(&format!("/predictions/{p}/finish"), &json!({}))).await;
    assert_eq!((status, text.as_str()), (200, r#"{"success":true}"#));
    let after = json_ok(s.get(&format!("/predictions/{p}"))).await;
    assert_eq!(after["output"], json!("yo"));
}

#[tokio::test]
async fn prediction_finish_of_an_unknown_id_is_404() {
    let s = Server::start();
    let (status, text) = status_text(s.post("/predictions/nope/finish", &json!({}))).await;
    assert_eq!(status, 404);
    assert_eq!(text, r#"{"reason":"Prediction nope not found"}"#);
}

#[tokio::test]
async fn score_read_has_the_documented_fields_and_the_value_as_sent() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, Some(&run), json!({"q": 1}), json!(1)).await;
    let sc = score(&s, &p, json!(1)).await;

    let (status, text) = status_text(s.get(&format!("/scores/{sc}"))).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""value":1,"#), "an integer value reads back as sent: {text}");
    let got: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(keys_of(&got), ["score_id", "scorer", "value", "evaluation_run_id", "wb_user_id"]);
    let user = got["wb_user_id"].as_str().expect("wb_user_id").to_string();
    assert!(!user.is_empty());
    assert_ne!(user, s.key);
    assert_eq!(
        got,
        json!({"score_id": sc, "scorer": SCORER, "value": 1,
               "evaluation_run_id": run, "wb_user_id": user}),
        "evaluation_run_id is taken from the prediction when not given"
    );
}

#[tokio::test]
async fn score_of_a_standalone_prediction_has_a_null_run() {
    let s = Server::start();
    let p = predict(&s, None, json!({"q": 1}), json!(1)).await;
    let sc = score(&s, &p, json!(0.25)).await;
    let got = json_ok(s.get(&format!("/scores/{sc}"))).await;
    assert_eq!(got["evaluation_run_id"], Value::Null);
    assert_eq!(got["value"], json!(0.25));
}

#[tokio::test]
async fn score_create_with_empty_body_reports_three_missing_fields() {
    let s = Server::start();
    let (status, body) = status_json(s.post("/scores", &json!({}))).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [
            {"type": "missing", "loc": ["body", "prediction_id"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "scorer"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "value"], "msg": "Field required", "input": {}},
        ]})
    );
}

#[tokio::test]
async fn score_for_an_unknown_prediction_is_404() {
    let s = Server::start();
    let (status, text) =
        status_text(s.post("/scores", &json!({"prediction_id": "nope", "scorer": SCORER, "value": 1}))).await;
    assert_eq!(status, 404);
    assert_eq!(text, r#"{"reason":"Prediction nope not found"}"#);
    assert!(jsonl(s.get("/scores")).await.is_empty());
}

#[tokio::test]
async fn score_list_filters_by_run() {
    let s = Server::start();
    let run_a = s.create_run(EVAL, MODEL).await;
    let run_b = s.create_run(EVAL, MODEL).await;
    let pa = predict(&s, Some(&run_a), json!({"q": 1}), json!(1)).await;
    let pb = predict(&s, Some(&run_b), json!({"q": 2}), json!(2)).await;
    let sa1 = score(&s, &pa, json!(0.1)).await;
    let sb = score(&s, &pb, json!(0.2)).await;
    let sa2 = score(&s, &pa, json!(0.3)).await;

    let rows = jsonl(s.get(&format!("/scores?evaluation_run_id={run_a}"))).await;
    assert_eq!(ids_of(&rows, "score_id"), [sa1.clone(), sa2.clone()]);
    let rows = jsonl(s.get("/scores")).await;
    assert_eq!(ids_of(&rows, "score_id"), [sa1, sb, sa2]);
    let rows = jsonl(s.get("/scores?limit=1&offset=1")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["value"], json!(0.2));
}

#[tokio::test]
async fn deleting_a_run_prediction_deletes_its_parent_and_the_scores_beside_it() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, Some(&run), json!({"q": 1}), json!(1)).await;
    let other = predict(&s, Some(&run), json!({"q": 2}), json!(2)).await;
    let s1 = score(&s, &p, json!(0.5)).await;
    let s2 = score(&s, &p, json!(1.0)).await;
    let kept = score(&s, &other, json!(0.0)).await;

    let body = json_ok(s.delete("/predictions").json(&json!([p]))).await;
    // predict_and_score parent, the prediction, and its two scores.
    assert_eq!(body, json!({"num_deleted": 4}));

    let (status, text) = status_text(s.get(&format!("/predictions/{p}"))).await;
    assert_eq!(status, 404);
    assert_eq!(text, format!(r#"{{"reason":"Prediction {p} not found"}}"#));
    for sc in [&s1, &s2] {
        let (status, text) = status_text(s.get(&format!("/scores/{sc}"))).await;
        assert_eq!(status, 404, "score {sc} should be gone: {text}");
    }
    let rows = jsonl(s.get(&format!("/scores?evaluation_run_id={run}"))).await;
    assert_eq!(ids_of(&rows, "score_id"), [kept]);
    let rows = jsonl(s.get(&format!("/predictions?evaluation_run_id={run}"))).await;
    assert_eq!(ids_of(&rows, "prediction_id"), [other]);
    // The run itself survives.
    json_ok(s.get(&format!("/evaluation_runs/{run}"))).await;
}

#[tokio::test]
async fn prediction_delete_accepts_a_query_array_and_counts_only_real_deletions() {
    let s = Server::start();
    let a = predict(&s, None, json!({"q": 1}), json!(1)).await;
    let b = predict(&s, None, json!({"q": 2}), json!(2)).await;
    let c = predict(&s, None, json!({"q": 3}), json!(3)).await;

    let body =
        json_ok(s.delete(&format!("/predictions?prediction_ids={a}&prediction_ids={b}&prediction_ids=nope")))
            .await;
    assert_eq!(body, json!({"num_deleted": 2}));
    assert_eq!(ids_of(&jsonl(s.get("/predictions")).await, "prediction_id"), std::slice::from_ref(&c));

    // Already deleted and unknown ids count 0.
    let body = json_ok(s.delete("/predictions").json(&json!([a, "nope"]))).await;
    assert_eq!(body, json!({"num_deleted": 0}));
    let body = json_ok(s.delete("/predictions").json(&json!([]))).await;
    assert_eq!(body, json!({"num_deleted": 0}));
    assert_eq!(ids_of(&jsonl(s.get("/predictions")).await, "prediction_id"), [c]);
}

#[tokio::test]
async fn score_delete_accepts_a_json_array_body_and_a_query_array() {
    let s = Server::start();
    let p = predict(&s, None, json!({"q": 1}), json!(1)).await;
    let s1 = score(&s, &p, json!(1)).await;
    let s2 = score(&s, &p, json!(2)).await;
    let s3 = score(&s, &p, json!(3)).await;

    let body = json_ok(s.delete("/scores").json(&json!([s1, "nope"]))).await;
    assert_eq!(body, json!({"num_deleted": 1}));
    let body = json_ok(s.delete(&format!("/scores?score_ids={s2}&score_ids={s1}"))).await;
    assert_eq!(body, json!({"num_deleted": 1}));

    for gone in [&s1, &s2] {
        let (status, text) = status_text(s.get(&format!("/scores/{gone}"))).await;
        assert_eq!(status, 404);
        assert_eq!(text, format!(r#"{{"reason":"Score {gone} not found"}}"#));
    }
    assert_eq!(ids_of(&jsonl(s.get("/scores")).await, "score_id"), [s3]);
    // The prediction is untouched by deleting its scores.
    json_ok(s.get(&format!("/predictions/{p}"))).await;
}

#[tokio::test]
async fn delete_with_a_non_string_id_is_string_type_422() {
    let s = Server::start();
    let p = predict(&s, None, json!({"q": 1}), json!(1)).await;
    let expected = json!({"detail": [{"type": "string_type", "loc": ["body", 0],
                                      "msg": "Input should be a valid string", "input": 1}]});
    for path in ["/predictions", "/scores"] {
        let (status, body) = status_json(s.delete(path).json(&json!([1]))).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(body, expected, "{path}");
    }
    json_ok(s.get(&format!("/predictions/{p}"))).await;
}

#[tokio::test]
async fn reading_unknown_predictions_and_scores_is_404_with_the_reason() {
    let s = Server::start();
    let (status, text) = status_text(s.get("/predictions/nope")).await;
    assert_eq!((status, text.as_str()), (404, r#"{"reason":"Prediction nope not found"}"#));
    let (status, text) = status_text(s.get("/scores/nope")).await;
    assert_eq!((status, text.as_str()), (404, r#"{"reason":"Score nope not found"}"#));
}

#[tokio::test]
async fn other_kinds_of_call_are_not_readable_as_predictions_or_scores() {
    let s = Server::start();
    let run = s.create_run(EVAL, MODEL).await;
    let p = predict(&s, Some(&run), json!({"q": 1}), json!(1)).await;
    let sc = score(&s, &p, json!(1)).await;

    let (status, text) = status_text(s.get(&format!("/predictions/{run}"))).await;
    assert_eq!(status, 404);
    assert_eq!(text, format!(r#"{{"reason":"Prediction {run} not found"}}"#));
    let (status, text) = status_text(s.get(&format!("/predictions/{sc}"))).await;
    assert_eq!(status, 404);
    assert_eq!(text, format!(r#"{{"reason":"Prediction {sc} not found"}}"#));
    let (status, text) = status_text(s.get(&format!("/scores/{p}"))).await;
    assert_eq!(status, 404);
    assert_eq!(text, format!(r#"{{"reason":"Score {p} not found"}}"#));
}
