//! Evaluation runs over HTTP: create, read, list, finish and delete, with their filters,
//! paging, children (predictions and scores), limits and error bodies.

use crate::helpers::*;

use std::collections::BTreeSet;

use serde_json::{Value, json};

const EV: &str = "weave:///acme/proj/object/Ev:abc";
const MODEL: &str = "weave:///acme/proj/object/M:def";
const ACC: &str = "weave:///acme/proj/object/Acc:1";
const F1: &str = "weave:///acme/proj/object/F1:1";

/// A percent-encoded query string.
fn qs(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A request builder for a path under another project of the same entity.
fn other_project(s: &Server, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    s.client.request(method, format!("{}/v2/acme/other{path}", s.base)).basic_auth("api", Some(&s.key))
}

async fn list_runs(s: &Server, query: &str) -> Vec<Value> {
    jsonl(s.get(&format!("/evaluation_runs?{query}"))).await
}

fn run_ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["evaluation_run_id"].as_str().expect("run id").to_string()).collect()
}

fn id_set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn row_set(rows: &[Value]) -> BTreeSet<String> {
    run_ids(rows).into_iter().collect()
}

/// Parses an RFC 3339 UTC timestamp with a `Z` suffix into microseconds since the epoch.
fn micros(ts: &Value) -> i64 {
    let ts = ts.as_str().unwrap_or_else(|| panic!("timestamp is a string: {ts}"));
    assert!(ts.ends_with('Z'), "timestamp {ts} ends with Z");
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("timestamp {ts} is RFC 3339: {e}"))
        .timestamp_micros()
}

fn assert_all_fields(run: &Value) {
    let keys: BTreeSet<&str> = run.as_object().expect("run object").keys().map(String::as_str).collect();
    assert_eq!(keys, RUN_FIELDS.into_iter().collect::<BTreeSet<_>>(), "run: {run}");
}

async fn create_run_with(s: &Server, body: Value) -> String {
    let v = json_ok(s.post("/evaluation_runs", &body)).await;
    v["evaluation_run_id"].as_str().expect("run id").to_string()
}

async fn read_run(s: &Server, id: &str) -> Value {
    json_ok(s.get(&format!("/evaluation_runs/{id}"))).await
}

async fn add_prediction(s: &Server, run: &str, inputs: Value, output: Value) -> String {
    let body = json!({"model": MODEL, "inputs": inputs, "output": output, "evaluation_run_id": run});
    let v = json_ok(s.post("/predictions", &body)).await;
    v["prediction_id"].as_str().expect("prediction id").to_string()
}

async fn add_score(s: &Server, run: &str, prediction: &str, scorer: &str, value: Value) -> String {
    let body =
        json!({"prediction_id": prediction, "scorer": scorer, "value": value, "evaluation_run_id": run});
    let v = json_ok(s.post("/scores", &body)).await;
    v["score_id"].as_str().expect("score id").to_string()
}

async fn finish_prediction(s: &Server, prediction: &str) {
    let v = json_ok(s.post_raw(&format!("/predictions/{prediction}/finish"), "")).await;
    assert_eq!(v, json!({"success": true}));
}

async fn finish_run(s: &Server, run: &str, body: Value) {
    let v = json_ok(s.post(&format!("/evaluation_runs/{run}/finish"), &body)).await;
    assert_eq!(v, json!({"success": true}));
}

/// Runs with a prediction (and its `predict_and_score` parent) and one score: 4 calls.
async fn run_with_children(s: &Server) -> (String, String, String) {
    let run = s.create_run(EV, MODEL).await;
    let p = add_prediction(s, &run, json!({"q": "hi"}), json!("yo")).await;
    let sc = add_score(s, &run, &p, ACC, json!(1)).await;
    (run, p, sc)
}

// 1. Round trip --------------------------------------------------------------------------

#[tokio::test]
async fn create_read_list_finish_delete_round_trip() {
    let s = Server::start();
    let id = s.create_run(EV, MODEL).await;

    let run = read_run(&s, &id).await;
    assert_all_fields(&run);
    assert_eq!(run["evaluation_run_id"], json!(id));
    assert_eq!(run["evaluation"], json!(EV));
    assert_eq!(run["model"], json!(MODEL));
    assert_eq!(run["status"], json!("running"));
    assert_eq!(run["finished_at"], Value::Null);
    assert_eq!(run["source_evaluation_run_id"], Value::Null);
    assert_eq!(run["summary"], json!({"weave": {"status": "running", "trace_name": "Evaluation.evaluate"}}));
    let started = micros(&run["started_at"]);

    let listed = list_runs(&s, "").await;
    assert_eq!(listed, vec![run.clone()], "the list shows the run as read shows it");

    finish_run(&s, &id, json!({"summary": {"acc": 0.5, "n": 2}})).await;
    let done = read_run(&s, &id).await;
    assert_all_fields(&done);
    assert_eq!(done["status"], json!("completed"));
    assert_eq!(done["started_at"], run["started_at"], "finish does not move started_at");
    let finished = micros(&done["finished_at"]);
    assert!(finished >= started, "finished_at {finished} >= started_at {started}");
    assert_eq!(done["summary"]["acc"], json!(0.5));
    assert_eq!(done["summary"]["n"], json!(2));
    let weave = &done["summary"]["weave"];
    assert_eq!(weave["status"], json!("success"));
    assert_eq!(weave["trace_name"], json!("Evaluation.evaluate"));
    assert_eq!(weave["latency_ms"], json!((finished - started) / 1000), "latency in whole ms");
    let keys: BTreeSet<&str> = done["summary"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["acc", "n", "weave"]), "stored keys plus weave");
    assert_eq!(list_runs(&s, "").await, vec![done.clone()]);

    // The finished run has one `Evaluation.summarize` child: two calls are deleted.
    let v = json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={id}"))).await;
    assert_eq!(v, json!({"num_deleted": 2}));
    let (status, body) = status_json(s.get(&format!("/evaluation_runs/{id}"))).await;
    assert_eq!((status, body), (404, json!({"reason": format!("Evaluation run {id} not found")})));
    assert!(list_runs(&s, "").await.is_empty());
}

#[tokio::test]
async fn source_evaluation_run_id_is_echoed_when_given_and_null_otherwise() {
    let s = Server::start();
    let first = s.create_run(EV, MODEL).await;
    let second =
        create_run_with(&s, json!({"evaluation": EV, "model": MODEL, "source_evaluation_run_id": first}))
            .await;
    let third =
        create_run_with(&s, json!({"evaluation": EV, "model": MODEL, "source_evaluation_run_id": null}))
            .await;

    assert_eq!(read_run(&s, &second).await["source_evaluation_run_id"], json!(first));
    assert_eq!(read_run(&s, &first).await["source_evaluation_run_id"], Value::Null);
    assert_eq!(read_run(&s, &third).await["source_evaluation_run_id"], Value::Null);
    let listed = list_runs(&s, "").await;
    assert_eq!(listed.len(), 3);
    for row in &listed {
        assert_all_fields(row);
        let expected = if row["evaluation_run_id"] == json!(second) { json!(first) } else { Value::Null };
        assert_eq!(row["source_evaluation_run_id"], expected, "row {row}");
    }
}

#[tokio::test]
async fn create_ignores_unknown_fields() {
    let s = Server::start();
    let id = create_run_with(&s, json!({"evaluation": "E", "model": "M", "extra": [1, 2]})).await;
    let run = read_run(&s, &id).await;
    assert_eq!((run["evaluation"].clone(), run["model"].clone()), (json!("E"), json!("M")));
}

// 2. List order and paging ----------------------------------------------------------------

async fn seven_runs(s: &Server) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(s.create_run(&format!("weave:///acme/proj/object/Ev{}:a", i % 3), MODEL).await);
    }
    ids
}

#[tokio::test]
async fn list_is_ordered_by_started_at_then_id() {
    let s = Server::start();
    let ids = seven_runs(&s).await;
    let rows = list_runs(&s, "").await;
    assert_eq!(row_set(&rows), id_set(&ids.iter().collect::<Vec<_>>()));
    let keys: Vec<(i64, String)> = rows
        .iter()
        .map(|r| (micros(&r["started_at"]), r["evaluation_run_id"].as_str().unwrap().to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "rows ordered by (started_at, id)");
    assert_eq!(run_ids(&rows), ids, "runs created one after another list in creation order");
}

#[tokio::test]
async fn looking_runs_up_by_id_lists_each_once_in_list_order() {
    let s = Server::start();
    let ids = seven_runs(&s).await;
    let (a, b, c) = (ids[5].as_str(), ids[1].as_str(), ids[3].as_str());
    let given = [a, c, a, "nope", b, c].map(|id| ("evaluation_run_ids", id));
    let rows = list_runs(&s, &qs(&given)).await;
    assert_eq!(run_ids(&rows), [b, c, a], "once each, ordered by (started_at, id)");
    let paged = list_runs(&s, &qs(&[given.as_slice(), &[("limit", "1"), ("offset", "1")]].concat())).await;
    assert_eq!(run_ids(&paged), [c]);
}

#[tokio::test]
async fn a_lookup_or_read_larger_than_a_mebibyte_comes_back_whole() {
    let s = Server::start();
    let ids = seven_runs(&s).await;
    // Larger than what a short read may buffer (1 MiB): read again as a stream.
    let notes = "n".repeat(1200 * 1024);
    finish_run(&s, &ids[0], json!({"summary": {"notes": notes}})).await;
    let given: Vec<(&str, &str)> = ids.iter().rev().map(|id| ("evaluation_run_ids", id.as_str())).collect();
    let rows = list_runs(&s, &qs(&given)).await;
    assert_eq!(run_ids(&rows), ids, "every run, in list order");
    assert_eq!(rows[0]["summary"]["notes"].as_str().map(str::len), Some(notes.len()));
    let one = read_run(&s, &ids[0]).await;
    assert_eq!(one["evaluation_run_id"], json!(ids[0]));
    assert_eq!(one["summary"]["notes"].as_str().map(str::len), Some(notes.len()));
}

#[tokio::test]
async fn limit_and_offset_windows_tile_the_list() {
    let s = Server::start();
    seven_runs(&s).await;
    let all = run_ids(&list_runs(&s, "").await);
    assert_eq!(all.len(), 7);
    for limit in 1..=4 {
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = run_ids(&list_runs(&s, &format!("limit={limit}&offset={offset}")).await);
            assert!(page.len() <= limit, "limit {limit} offset {offset}: {page:?}");
            if page.is_empty() {
                break;
            }
            seen.extend(page);
            offset += limit;
        }
        assert_eq!(seen, all, "pages of {limit} tile the list with no skips or repeats");
    }
    assert_eq!(run_ids(&list_runs(&s, "offset=5").await), all[5..].to_vec());
    assert_eq!(run_ids(&list_runs(&s, "limit=2&offset=6").await), all[6..].to_vec());
}

#[tokio::test]
async fn limit_zero_is_no_rows_and_absent_or_huge_limit_is_all_rows() {
    let s = Server::start();
    seven_runs(&s).await;
    let all = run_ids(&list_runs(&s, "").await);
    assert_eq!(all.len(), 7);
    assert!(list_runs(&s, "limit=0").await.is_empty(), "limit=0 gives no rows");
    assert_eq!(run_ids(&list_runs(&s, "limit=99999999999999999999").await), all);
    assert_eq!(run_ids(&list_runs(&s, "limit=99999999999999999999&offset=3").await), all[3..].to_vec());
    assert!(list_runs(&s, "offset=99999999999999999999").await.is_empty());
    assert!(list_runs(&s, "limit=3&offset=99999999999999999999").await.is_empty());
}

#[tokio::test]
async fn empty_list_is_an_empty_jsonl_body() {
    let s = Server::start();
    let resp = s.get("/evaluation_runs").send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/jsonl");
    assert_eq!(resp.text().await.unwrap(), "");
}

// 3. Filters --------------------------------------------------------------------------

const E1: &str = "weave:///acme/proj/object/E1:aaa";
const E1_OTHER_DIGEST: &str = "weave:///acme/proj/object/E1:zzz";
const E2: &str = "weave:///acme/proj/object/E2:bbb";
const M1: &str = "weave:///acme/proj/object/M1:xxx";
const M2: &str = "weave:///acme/proj/object/M2:yyy";

struct Filtered {
    s: Server,
    r1: String,
    r2: String,
    r3: String,
    r4: String,
    other: String,
}

impl Filtered {
    async fn new() -> Filtered {
        let s = Server::start();
        let r1 = s.create_run(E1, M1).await;
        let r2 = s.create_run(E1, M2).await;
        let r3 = s.create_run(E2, M1).await;
        let r4 = s.create_run(E1_OTHER_DIGEST, M1).await;
        let v = json_ok(
            other_project(&s, reqwest::Method::POST, "/evaluation_runs")
                .header("content-type", "application/json")
                .body(json!({"evaluation": E1, "model": M1}).to_string()),
        )
        .await;
        let other = v["evaluation_run_id"].as_str().expect("run id").to_string();
        Filtered { s, r1, r2, r3, r4, other }
    }

    async fn ids(&self, pairs: &[(&str, &str)]) -> BTreeSet<String> {
        row_set(&list_runs(&self.s, &qs(pairs)).await)
    }
}

#[tokio::test]
async fn evaluations_filter_matches_refs_exactly() {
    let f = Filtered::new().await;
    assert_eq!(f.ids(&[("evaluations", E1)]).await, id_set(&[&f.r1, &f.r2]));
    assert_eq!(
        f.ids(&[("evaluations", E1_OTHER_DIGEST)]).await,
        id_set(&[&f.r4]),
        "another digest is another ref"
    );
    assert!(f.ids(&[("evaluations", "weave:///acme/proj/object/E1:latest")]).await.is_empty());
    assert!(f.ids(&[("evaluations", "weave:///acme/proj/object/E1")]).await.is_empty());
    assert!(f.ids(&[("evaluations", "weave:///acme/other/object/E1:aaa")]).await.is_empty());
}

#[tokio::test]
async fn array_filters_accept_repeated_keys_comma_joined_values_and_old_names() {
    let f = Filtered::new().await;
    let e1_or_e2 = id_set(&[&f.r1, &f.r2, &f.r3]);
    assert_eq!(f.ids(&[("evaluations", E1), ("evaluations", E2)]).await, e1_or_e2);
    assert_eq!(f.ids(&[("evaluations", &format!("{E1},{E2}"))]).await, e1_or_e2);
    assert_eq!(f.ids(&[("evaluation_refs", E1)]).await, id_set(&[&f.r1, &f.r2]));

    let m1 = id_set(&[&f.r1, &f.r3, &f.r4]);
    assert_eq!(f.ids(&[("models", M1)]).await, m1);
    assert_eq!(f.ids(&[("model_refs", M1)]).await, m1);
    assert_eq!(f.ids(&[("models", M1), ("models", M2)]).await.len(), 4);
    assert_eq!(f.ids(&[("models", &format!("{M1},{M2}"))]).await.len(), 4);

    let r1_r3 = id_set(&[&f.r1, &f.r3]);
    assert_eq!(f.ids(&[("evaluation_run_ids", &f.r1), ("evaluation_run_ids", &f.r3)]).await, r1_r3);
    assert_eq!(f.ids(&[("evaluation_run_ids", &format!("{},{}", f.r1, f.r3))]).await, r1_r3);
    assert_eq!(f.ids(&[("evaluation_run_ids", &f.r2)]).await, id_set(&[&f.r2]));
    assert!(f.ids(&[("evaluation_run_ids", "nope")]).await.is_empty());
}

#[tokio::test]
async fn filters_are_and_ed() {
    let f = Filtered::new().await;
    assert_eq!(f.ids(&[("evaluations", E1), ("models", M1)]).await, id_set(&[&f.r1]));
    assert_eq!(f.ids(&[("evaluations", E2), ("models", M1)]).await, id_set(&[&f.r3]));
    assert!(f.ids(&[("evaluations", E2), ("models", M2)]).await.is_empty());
    assert!(f.ids(&[("evaluation_run_ids", &f.r1), ("models", M2)]).await.is_empty());
    assert_eq!(
        f.ids(&[("evaluation_run_ids", &f.r1), ("evaluation_run_ids", &f.r2), ("models", M2)]).await,
        id_set(&[&f.r2])
    );
    assert_eq!(
        f.ids(&[("evaluations", E1), ("models", M1), ("evaluation_run_ids", &f.r4)]).await,
        BTreeSet::new()
    );
}

#[tokio::test]
async fn empty_filter_values_are_no_filter() {
    let f = Filtered::new().await;
    let all = id_set(&[&f.r1, &f.r2, &f.r3, &f.r4]);
    assert_eq!(f.ids(&[("evaluations", "")]).await, all);
    assert_eq!(f.ids(&[("models", "")]).await, all);
    assert_eq!(f.ids(&[("evaluation_run_ids", "")]).await, all);
    assert_eq!(f.ids(&[("evaluations", ""), ("models", ""), ("evaluation_run_ids", "")]).await, all);
    assert_eq!(f.ids(&[("evaluations", ""), ("models", M2)]).await, id_set(&[&f.r2]));
}

#[tokio::test]
async fn other_projects_runs_are_never_listed_or_read() {
    let f = Filtered::new().await;
    assert_eq!(f.ids(&[]).await, id_set(&[&f.r1, &f.r2, &f.r3, &f.r4]));
    assert!(f.ids(&[("evaluation_run_ids", &f.other)]).await.is_empty());
    let (status, body) = status_json(f.s.get(&format!("/evaluation_runs/{}", f.other))).await;
    assert_eq!((status, body), (404, json!({"reason": format!("Evaluation run {} not found", f.other)})));

    let theirs = jsonl(other_project(&f.s, reqwest::Method::GET, "/evaluation_runs")).await;
    assert_eq!(run_ids(&theirs), vec![f.other.clone()]);
    let theirs = jsonl(other_project(
        &f.s,
        reqwest::Method::GET,
        &format!("/evaluation_runs?{}", qs(&[("models", M1)])),
    ))
    .await;
    assert_eq!(run_ids(&theirs), vec![f.other.clone()]);
    let v =
        json_ok(other_project(&f.s, reqwest::Method::GET, &format!("/evaluation_runs/{}", f.other))).await;
    assert_eq!(v["evaluation"], json!(E1));
}

// 4. Finish ------------------------------------------------------------------------------

#[tokio::test]
async fn finish_links_predictions_and_scores_to_the_run() {
    let s = Server::start();
    let run = s.create_run(EV, MODEL).await;
    let unrelated = s.create_run(EV, MODEL).await;
    let p1 = add_prediction(&s, &run, json!({"q": 1}), json!(1)).await;
    let p2 = add_prediction(&s, &run, json!({"q": 2}), json!(3)).await;
    let elsewhere = add_prediction(&s, &unrelated, json!({"q": 3}), json!(5)).await;
    let s1 = add_score(&s, &run, &p1, ACC, json!(true)).await;
    let s2 = add_score(&s, &run, &p2, ACC, json!(false)).await;
    let s3 = add_score(&s, &run, &p1, F1, json!(0.5)).await;
    let s4 = add_score(&s, &run, &p2, F1, json!(1.5)).await;
    finish_prediction(&s, &p1).await;
    finish_prediction(&s, &p2).await;
    finish_run(&s, &run, json!({"summary": {"note": "done"}})).await;

    let preds = jsonl(s.get(&format!("/predictions?evaluation_run_id={run}"))).await;
    let pred_ids: BTreeSet<String> =
        preds.iter().map(|p| p["prediction_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(pred_ids, id_set(&[&p1, &p2]));
    for p in &preds {
        assert_eq!(p["evaluation_run_id"], json!(run), "prediction {p}");
        assert_eq!(p["model"], json!(MODEL));
    }
    let one = json_ok(s.get(&format!("/predictions/{p2}"))).await;
    assert_eq!((one["evaluation_run_id"].clone(), one["inputs"].clone()), (json!(run), json!({"q": 2})));

    let scores = jsonl(s.get(&format!("/scores?evaluation_run_id={run}"))).await;
    let mut got: Vec<(String, String, f64)> = scores
        .iter()
        .map(|sc| {
            assert_eq!(sc["evaluation_run_id"], json!(run), "score {sc}");
            (
                sc["score_id"].as_str().unwrap().to_string(),
                sc["scorer"].as_str().unwrap().to_string(),
                // Booleans are stored as sent; read them as 1 and 0 to compare.
                sc["value"].as_f64().or(sc["value"].as_bool().map(f64::from)).unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (s1, ACC.to_string(), 1.0),
        (s2, ACC.to_string(), 0.0),
        (s3, F1.to_string(), 0.5),
        (s4, F1.to_string(), 1.5),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);

    let other_preds = jsonl(s.get(&format!("/predictions?evaluation_run_id={unrelated}"))).await;
    assert_eq!(other_preds.len(), 1);
    assert_eq!(other_preds[0]["prediction_id"], json!(elsewhere));
    assert!(jsonl(s.get(&format!("/scores?evaluation_run_id={unrelated}"))).await.is_empty());

    let done = read_run(&s, &run).await;
    assert_eq!(done["status"], json!("completed"));
    assert_eq!(done["summary"]["note"], json!("done"));
    assert_eq!(done["summary"]["weave"]["status"], json!("success"));
    assert_eq!(read_run(&s, &unrelated).await["status"], json!("running"));
}

#[tokio::test]
async fn finishing_twice_replaces_the_summary() {
    let s = Server::start();
    let run = s.create_run(EV, MODEL).await;
    finish_run(&s, &run, json!({"summary": {"a": 1, "keep": true}})).await;
    let first = read_run(&s, &run).await;
    assert_eq!(first["summary"]["a"], json!(1));

    finish_run(&s, &run, json!({"summary": {"b": 2}})).await;
    let second = read_run(&s, &run).await;
    assert_eq!(second["status"], json!("completed"));
    let summary = second["summary"].as_object().unwrap();
    assert_eq!(summary.get("b"), Some(&json!(2)));
    assert!(!summary.contains_key("a") && !summary.contains_key("keep"), "not merged: {summary:?}");
    assert_eq!(summary.len(), 2, "b and weave only: {summary:?}");
    assert!(micros(&second["finished_at"]) >= micros(&first["finished_at"]));
    let started = micros(&second["started_at"]);
    let finished = micros(&second["finished_at"]);
    assert_eq!(second["summary"]["weave"]["latency_ms"], json!((finished - started) / 1000));

    finish_run(&s, &run, json!({"summary": null})).await;
    let third = read_run(&s, &run).await;
    assert_eq!(third["summary"].as_object().unwrap().keys().collect::<Vec<_>>(), ["weave"]);
    finish_run(&s, &run, json!({})).await;
    let fourth = read_run(&s, &run).await;
    assert_eq!(fourth["summary"].as_object().unwrap().keys().collect::<Vec<_>>(), ["weave"]);
    assert_eq!(list_runs(&s, "").await.len(), 1, "re-finishing does not add runs");
}

#[tokio::test]
async fn finishing_an_unknown_run_is_404() {
    let s = Server::start();
    let (status, body) = status_json(s.post("/evaluation_runs/nope/finish", &json!({"summary": {}}))).await;
    assert_eq!((status, body), (404, json!({"reason": "Evaluation run nope not found"})));
    assert!(list_runs(&s, "").await.is_empty(), "nothing is written");
}

#[tokio::test]
async fn finishing_a_deleted_run_is_404() {
    let s = Server::start();
    let run = s.create_run(EV, MODEL).await;
    json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={run}"))).await;
    let (status, body) = status_json(s.post(&format!("/evaluation_runs/{run}/finish"), &json!({}))).await;
    assert_eq!((status, body), (404, json!({"reason": format!("Evaluation run {run} not found")})));
    let (status, _) = status_json(s.get(&format!("/evaluation_runs/{run}"))).await;
    assert_eq!(status, 404, "the finish did not revive the run");
}

// 5. Read -------------------------------------------------------------------------------

#[tokio::test]
async fn reading_an_unknown_run_is_404_with_its_id() {
    let s = Server::start();
    let (status, body) = status_text(s.get("/evaluation_runs/nope")).await;
    assert_eq!((status, body.as_str()), (404, r#"{"reason":"Evaluation run nope not found"}"#));
    let id = "01a2127f-bc1e-72ed-ba29-715d4882a76f";
    let (status, body) = status_json(s.get(&format!("/evaluation_runs/{id}"))).await;
    assert_eq!((status, body), (404, json!({"reason": format!("Evaluation run {id} not found")})));
}

#[tokio::test]
async fn reading_a_prediction_or_score_id_as_a_run_is_404() {
    let s = Server::start();
    let (run, p, sc) = run_with_children(&s).await;
    for id in [&p, &sc] {
        let (status, body) = status_json(s.get(&format!("/evaluation_runs/{id}"))).await;
        assert_eq!((status, body), (404, json!({"reason": format!("Evaluation run {id} not found")})));
    }
    assert_eq!(run_ids(&list_runs(&s, "").await), vec![run], "children are not listed as runs");
}

// 6. Delete -----------------------------------------------------------------------------

#[tokio::test]
async fn delete_removes_the_run_with_its_predictions_and_scores() {
    let s = Server::start();
    let (run, p, sc) = run_with_children(&s).await;
    let (kept, kept_p, kept_sc) = run_with_children(&s).await;

    let v =
        json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={run}&evaluation_run_ids=unknown")))
            .await;
    assert_eq!(
        v,
        json!({"num_deleted": 4}),
        "run, predict_and_score, predict and score; unknown ids count 0"
    );

    let (status, body) = status_json(s.get(&format!("/predictions/{p}"))).await;
    assert_eq!((status, body), (404, json!({"reason": format!("Prediction {p} not found")})));
    let (status, body) = status_json(s.get(&format!("/scores/{sc}"))).await;
    assert_eq!((status, body), (404, json!({"reason": format!("Score {sc} not found")})));
    assert!(jsonl(s.get(&format!("/predictions?evaluation_run_id={run}"))).await.is_empty());
    assert!(jsonl(s.get(&format!("/scores?evaluation_run_id={run}"))).await.is_empty());

    let preds = jsonl(s.get("/predictions")).await;
    assert_eq!(preds.iter().map(|p| p["prediction_id"].clone()).collect::<Vec<_>>(), vec![json!(kept_p)]);
    let scores = jsonl(s.get("/scores")).await;
    assert_eq!(scores.iter().map(|x| x["score_id"].clone()).collect::<Vec<_>>(), vec![json!(kept_sc)]);
    assert_eq!(run_ids(&list_runs(&s, "").await), vec![kept.clone()]);
    json_ok(s.get(&format!("/predictions/{kept_p}"))).await;
    json_ok(s.get(&format!("/scores/{kept_sc}"))).await;

    let v = json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={run}"))).await;
    assert_eq!(v, json!({"num_deleted": 0}), "an already deleted run counts 0");
}

#[tokio::test]
async fn delete_counts_only_calls_actually_deleted() {
    let s = Server::start();
    let a = s.create_run(EV, MODEL).await;
    let b = s.create_run(EV, MODEL).await;
    let v = json_ok(
        s.delete(&format!("/evaluation_runs?{}", qs(&[("evaluation_run_ids", &format!("{a},x,y,{b}"))]))),
    )
    .await;
    assert_eq!(v, json!({"num_deleted": 2}));
    let v = json_ok(s.delete("/evaluation_runs?evaluation_run_ids=x&evaluation_run_ids=y")).await;
    assert_eq!(v, json!({"num_deleted": 0}));
    let v = json_ok(s.delete("/evaluation_runs?evaluation_run_ids=")).await;
    assert_eq!(v, json!({"num_deleted": 0}), "an empty id deletes nothing");

    let (_, p, _) = run_with_children(&s).await;
    let v = json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={p}"))).await;
    assert_eq!(v, json!({"num_deleted": 0}), "a prediction id is not a run id");
    json_ok(s.get(&format!("/predictions/{p}"))).await;
}

#[tokio::test]
async fn delete_accepts_ids_as_a_json_array_body() {
    let s = Server::start();
    let a = s.create_run(EV, MODEL).await;
    let b = s.create_run(EV, MODEL).await;
    let c = s.create_run(EV, MODEL).await;
    let req = s
        .delete("/evaluation_runs")
        .header("content-type", "application/json")
        .body(json!([a, b, "unknown"]).to_string());
    assert_eq!(json_ok(req).await, json!({"num_deleted": 2}));
    assert_eq!(run_ids(&list_runs(&s, "").await), vec![c]);
}

#[tokio::test]
async fn delete_without_ids_is_a_missing_422() {
    let s = Server::start();
    let (status, body) = status_text(s.delete("/evaluation_runs")).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        r#"{"detail":[{"type":"missing","loc":["query","evaluation_run_ids"],"msg":"Field required","input":null}]}"#
    );
}

#[tokio::test]
async fn deleting_more_than_1000_ids_is_413() {
    let s = Server::start();
    let run = s.create_run(EV, MODEL).await;
    let mut ids: Vec<String> = (0..1000).map(|i| format!("id{i}")).collect();
    ids.push(run.clone());
    let query = ids.iter().map(|i| format!("evaluation_run_ids={i}")).collect::<Vec<_>>().join("&");
    let (status, body) = status_json(s.delete(&format!("/evaluation_runs?{query}"))).await;
    assert_eq!(status, 413, "body: {body}");
    assert!(body["reason"].is_string(), "body: {body}");
    let req =
        s.delete("/evaluation_runs").header("content-type", "application/json").body(json!(ids).to_string());
    let (status, body) = status_json(req).await;
    assert_eq!(status, 413, "body: {body}");
    assert!(body["reason"].is_string(), "body: {body}");
    assert_eq!(run_ids(&list_runs(&s, "").await), vec![run], "nothing was deleted");

    ids.pop();
    let query = ids.iter().map(|i| format!("evaluation_run_ids={i}")).collect::<Vec<_>>().join("&");
    assert_eq!(
        json_ok(s.delete(&format!("/evaluation_runs?{query}"))).await,
        json!({"num_deleted": 0}),
        "1000 ids are fine"
    );
}

// 7. Validation -------------------------------------------------------------------------

fn int_parsing(name: &str, input: &str) -> Value {
    json!({
        "type": "int_parsing",
        "loc": ["query", name],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
        "input": input
    })
}

async fn assert_422(req: reqwest::RequestBuilder, detail: Value) {
    let (status, body) = status_json(req).await;
    assert_eq!(status, 422, "body: {body}");
    assert_eq!(body, json!({ "detail": detail }));
}

#[tokio::test]
async fn non_integer_limits_are_int_parsing_422s() {
    let s = Server::start();
    assert_422(s.get("/evaluation_runs?limit=abc"), json!([int_parsing("limit", "abc")])).await;
    assert_422(s.get("/evaluation_runs?limit=1.5"), json!([int_parsing("limit", "1.5")])).await;
    assert_422(
        s.get("/evaluation_runs?offset=x&limit=y"),
        json!([int_parsing("limit", "y"), int_parsing("offset", "x")]),
    )
    .await;
}

#[tokio::test]
async fn negative_limit_is_a_greater_than_equal_422() {
    let s = Server::start();
    s.create_run(EV, MODEL).await;
    let (status, body) = status_text(s.get("/evaluation_runs?limit=-1")).await;
    assert_eq!(status, 422);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"detail": [{
            "type": "greater_than_equal",
            "loc": ["query", "limit"],
            "msg": "Input should be greater than or equal to 0",
            "input": "-1",
            "ctx": {"ge": 0}
        }]})
    );
}

#[tokio::test]
async fn create_body_validation_errors() {
    let s = Server::start();
    let model_attributes = |input: Value| {
        json!([{
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": input
        }])
    };
    assert_422(
        s.post("/evaluation_runs", &json!({})),
        json!([
            {"type": "missing", "loc": ["body", "evaluation"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "model"], "msg": "Field required", "input": {}}
        ]),
    )
    .await;
    assert_422(
        s.post("/evaluation_runs", &json!({"evaluation": "E"})),
        json!([{"type": "missing", "loc": ["body", "model"], "msg": "Field required", "input": {"evaluation": "E"}}]),
    )
    .await;
    assert_422(s.post("/evaluation_runs", &json!([1, 2])), model_attributes(json!([1, 2]))).await;
    assert_422(s.post("/evaluation_runs", &json!("str")), model_attributes(json!("str"))).await;
    assert_422(s.post("/evaluation_runs", &Value::Null), model_attributes(Value::Null)).await;
    assert_422(
        s.post("/evaluation_runs", &json!({"evaluation": 1, "model": null})),
        json!([
            {"type": "string_type", "loc": ["body", "evaluation"], "msg": "Input should be a valid string", "input": 1},
            {"type": "string_type", "loc": ["body", "model"], "msg": "Input should be a valid string", "input": null}
        ]),
    )
    .await;
    assert!(list_runs(&s, "").await.is_empty(), "no run was created");
}

#[tokio::test]
async fn malformed_json_is_a_json_invalid_422() {
    let s = Server::start();
    let req = s.post_raw("/evaluation_runs", r#"{"evaluation":"#).header("content-type", "application/json");
    let (status, body) = status_text(req).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        r#"{"detail":[{"type":"json_invalid","loc":["body",14],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting value"}}]}"#
    );
}

#[tokio::test]
async fn empty_body_is_a_missing_body_422() {
    let s = Server::start();
    let missing = json!([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]);
    assert_422(s.post_raw("/evaluation_runs", ""), missing.clone()).await;
    assert_422(
        s.post_raw("/evaluation_runs", "").header("content-type", "application/json"),
        missing.clone(),
    )
    .await;
    let run = s.create_run(EV, MODEL).await;
    assert_422(s.post_raw(&format!("/evaluation_runs/{run}/finish"), ""), missing).await;
    assert_eq!(read_run(&s, &run).await["status"], json!("running"));
}

#[tokio::test]
async fn finish_with_a_non_object_summary_is_a_dict_type_422() {
    let s = Server::start();
    let run = s.create_run(EV, MODEL).await;
    for bad in [json!(5), json!([1]), json!("s")] {
        assert_422(
            s.post(&format!("/evaluation_runs/{run}/finish"), &json!({"summary": bad})),
            json!([{"type": "dict_type", "loc": ["body", "summary"], "msg": "Input should be a valid dictionary", "input": bad}]),
        )
        .await;
    }
    assert_eq!(
        read_run(&s, &run).await["status"],
        json!("running"),
        "a rejected finish does not end the run"
    );
}

#[tokio::test]
async fn json_body_without_content_type_is_accepted() {
    let s = Server::start();
    let v = json_ok(s.post_raw("/evaluation_runs", r#"{"evaluation":"E","model":"M"}"#)).await;
    let run = v["evaluation_run_id"].as_str().expect("run id").to_string();
    json_ok(s.post_raw(&format!("/evaluation_runs/{run}/finish"), r#"{"summary":{"x":1}}"#)).await;
    let read = read_run(&s, &run).await;
    assert_eq!(read["evaluation"], json!("E"));
    assert_eq!(read["status"], json!("completed"));
    assert_eq!(read["summary"]["x"], json!(1));
}

// 8. Size limits ------------------------------------------------------------------------

#[tokio::test]
async fn more_than_1000_filter_values_is_413() {
    let s = Server::start();
    let run = s.create_run(EV, MODEL).await;
    let many: Vec<String> = (0..1001).map(|i| format!("v{i}")).collect();
    for name in ["evaluation_run_ids", "evaluations", "models"] {
        let repeated = many.iter().map(|v| format!("{name}={v}")).collect::<Vec<_>>().join("&");
        let (status, body) = status_json(s.get(&format!("/evaluation_runs?{repeated}"))).await;
        assert_eq!(status, 413, "{name} repeated: {body}");
        assert!(body["reason"].is_string(), "{name}: {body}");
        let joined = format!("{name}={}", many.join(","));
        let (status, body) = status_json(s.get(&format!("/evaluation_runs?{joined}"))).await;
        assert_eq!(status, 413, "{name} comma-joined: {body}");
        assert!(body["reason"].is_string(), "{name}: {body}");
    }
    let mut thousand: Vec<String> = many[..999].to_vec();
    thousand.push(run.clone());
    let ok = thousand.iter().map(|v| format!("evaluation_run_ids={v}")).collect::<Vec<_>>().join("&");
    assert_eq!(run_ids(&list_runs(&s, &ok).await), vec![run], "1000 values are fine");
}

#[tokio::test]
async fn body_over_32_mib_is_413_and_the_server_keeps_serving() {
    let s = Server::start();
    let filler = "x".repeat(32 * 1024 * 1024);
    let body = format!(r#"{{"evaluation":"{filler}","model":"M"}}"#);
    let req = s
        .client
        .post(s.url("/evaluation_runs"))
        .basic_auth("api", Some(&s.key))
        .header("content-type", "application/json")
        .body(body);
    let (status, body) = status_json(req).await;
    assert_eq!(status, 413, "body: {body}");
    assert!(body["reason"].is_string(), "body: {body}");
    assert!(list_runs(&s, "").await.is_empty(), "no run was created");
    let run = s.create_run(EV, MODEL).await;
    assert_eq!(read_run(&s, &run).await["status"], json!("running"));
}

// 9. Routing ------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_routes_are_404_not_found() {
    let s = Server::start();
    for path in ["/nothing", "/evaluation_runs/a/b"] {
        let (status, body) = status_text(s.get(path)).await;
        assert_eq!((status, body.as_str()), (404, r#"{"detail":"Not Found"}"#), "GET {path}");
    }
    let (status, body) = status_text(s.client.get(format!("{}/nowhere", s.base))).await;
    assert_eq!((status, body.as_str()), (404, r#"{"detail":"Not Found"}"#));
}

#[tokio::test]
async fn wrong_method_is_405() {
    let s = Server::start();
    let req = s.client.put(s.url("/evaluation_runs")).basic_auth("api", Some(&s.key));
    let (status, body) = status_text(req).await;
    assert_eq!((status, body.as_str()), (405, r#"{"detail":"Method Not Allowed"}"#));
    let (status, body) = status_text(s.get("/evaluation_runs/x/finish")).await;
    assert_eq!((status, body.as_str()), (405, r#"{"detail":"Method Not Allowed"}"#));
}

#[tokio::test]
async fn health_needs_no_credentials_but_the_api_does() {
    let s = Server::start();
    let resp = s.client.get(format!("{}/health", s.base)).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let (status, _) = status_json(s.client.get(s.url("/evaluation_runs"))).await;
    assert_eq!(status, 401);
}
