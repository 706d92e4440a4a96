//! Keyset paging of the v2 lists: `after=<id>` names the last row of the page before, and the
//! next page is the rows strictly after it in list order, with every filter, past deleted rows;
//! an id that names no live row is a 404 naming it.

use crate::helpers::*;

use serde_json::{Value, json};

const EVALS: [&str; 3] =
    ["weave:///acme/proj/object/Ev0:a", "weave:///acme/proj/object/Ev1:b", "weave:///acme/proj/object/Ev2:c"];
const MODELS: [&str; 2] = ["weave:///acme/proj/object/M0:d", "weave:///acme/proj/object/M1:e"];
const SCORER: &str = "weave:///acme/proj/object/S:ghi";
const PAS_OP: &str = "weave:///acme/proj/op/Evaluation.predict_and_score:p1";

/// A start time: `second` seconds into the day, so that several rows can share one.
fn at(second: u32) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", second / 60, second % 60)
}

/// A complete call as `calls/complete` takes it.
fn done(id: &str, parent: Option<&str>, op: &str, second: u32, inputs: Value, output: Value) -> Value {
    json!({"project_id": "acme/proj", "id": id, "trace_id": format!("t-{id}"), "parent_id": parent,
        "op_name": op, "started_at": at(second), "ended_at": at(second + 1),
        "attributes": {}, "inputs": inputs, "output": output, "summary": {}})
}

/// A run as the SDK logs it (a root `Evaluation.evaluate` call), with what it was made of.
struct Run {
    id: String,
    second: u32,
    eval: &'static str,
    model: &'static str,
}

/// Logs `n` runs whose start times often tie (so the id decides their order), their ids not in
/// start order, spread over the evaluations and models.
async fn log_runs(s: &Server, n: u32) -> Vec<Run> {
    let mut rng = Rng::new(7);
    let mut runs = Vec::new();
    for i in 0..n {
        // Ids sort in another order than the runs were made.
        let id = format!("run-{:04x}", (i * 7919) % 65_536);
        let second = rng.below(u64::from(n / 3).max(1)) as u32;
        let (eval, model) = (EVALS[rng.below(3) as usize], MODELS[rng.below(2) as usize]);
        runs.push(Run { id, second, eval, model });
    }
    let batch: Vec<Value> = runs
        .iter()
        .map(|r| {
            done(
                &r.id,
                None,
                "weave:///acme/proj/op/Evaluation.evaluate:e1",
                r.second,
                json!({"self": r.eval, "model": r.model}),
                json!({}),
            )
        })
        .collect();
    json_ok(s.post("/calls/complete", &json!({"batch": batch}))).await;
    runs.sort_by(|a, b| (a.second, &a.id).cmp(&(b.second, &b.id)));
    runs
}

fn ids_of(rows: &[Value], field: &str) -> Vec<String> {
    rows.iter().map(|r| r[field].as_str().expect("id").to_string()).collect()
}

/// Every row of `path` (a list with its filters), read `limit` at a time by cursor.
async fn walk(s: &Server, path: &str, field: &str, limit: usize) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut all: Vec<String> = Vec::new();
    loop {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(last) = all.last() {
            url.push_str(&format!("&after={}", urlencoding(last)));
        }
        let page = ids_of(&jsonl(s.get(&url)).await, field);
        assert!(page.len() <= limit, "{url}: {page:?}");
        let end = page.len() < limit;
        all.extend(page);
        if end {
            return all;
        }
        assert!(all.len() < 10_000, "{path}: the walk does not end");
    }
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query_of(filters: &[(&str, &str)]) -> String {
    filters.iter().map(|(k, v)| format!("{k}={}", urlencoding(v))).collect::<Vec<_>>().join("&")
}

#[tokio::test]
async fn run_pages_by_cursor_hold_each_run_once_in_order_with_every_filter() {
    let s = Server::start();
    let mut runs = log_runs(&s, 60).await;
    // Deleted runs are left out of pages, and the pages around them are whole.
    let gone: Vec<String> = runs.iter().step_by(7).map(|r| r.id.clone()).collect();
    let v = json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={}", gone.join(",")))).await;
    assert_eq!(v["num_deleted"], json!(gone.len()));
    runs.retain(|r| !gone.contains(&r.id));
    let some_ids: Vec<&str> = runs.iter().step_by(3).map(|r| r.id.as_str()).collect();
    let some_ids = some_ids.join(",");
    let filters: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("models", MODELS[0])],
        vec![("evaluations", EVALS[1])],
        vec![("evaluations", EVALS[0]), ("evaluations", EVALS[2])],
        vec![("evaluations", EVALS[1]), ("models", MODELS[1])],
        vec![("evaluation_run_ids", &some_ids)],
        vec![("evaluation_run_ids", &some_ids), ("models", MODELS[0])],
    ];
    for f in &filters {
        let expected: Vec<String> = runs
            .iter()
            .filter(|r| {
                f.iter().all(|(k, v)| match *k {
                    "models" => f.iter().any(|(k2, v2)| *k2 == "models" && *v2 == r.model),
                    "evaluations" => f.iter().any(|(k2, v2)| *k2 == "evaluations" && *v2 == r.eval),
                    _ => v.split(',').any(|id| id == r.id),
                })
            })
            .map(|r| r.id.clone())
            .collect();
        assert!(!expected.is_empty(), "{f:?}");
        let path = format!("/evaluation_runs?{}", query_of(f));
        let listed = ids_of(&jsonl(s.get(&path)).await, "evaluation_run_id");
        assert_eq!(listed, expected, "the whole list, {f:?}");
        for limit in [1, 4, 7, 100] {
            assert_eq!(walk(&s, &path, "evaluation_run_id", limit).await, expected, "limit {limit}, {f:?}");
        }
    }
}

#[tokio::test]
async fn a_run_cursor_is_a_position_offset_counts_from_it_and_unknown_ids_are_404s() {
    let s = Server::start();
    let runs = log_runs(&s, 30).await;
    let all: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    // `offset` skips rows past the cursor.
    let rows = jsonl(s.get(&format!("/evaluation_runs?after={}&offset=2&limit=3", all[4]))).await;
    assert_eq!(ids_of(&rows, "evaluation_run_id"), all[7..10]);
    // A cursor that the filters leave out still names a position in the list.
    let other = runs.iter().find(|r| r.model != MODELS[0]).expect("a run of the other model");
    let path = format!("/evaluation_runs?models={}&after={}", urlencoding(MODELS[0]), other.id);
    let expected: Vec<&str> = runs
        .iter()
        .filter(|r| r.model == MODELS[0] && (r.second, &r.id) > (other.second, &other.id))
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ids_of(&jsonl(s.get(&path)).await, "evaluation_run_id"), expected);
    // The last run: nothing after it. An empty cursor is no cursor.
    assert!(jsonl(s.get(&format!("/evaluation_runs?after={}", all[all.len() - 1]))).await.is_empty());
    assert_eq!(ids_of(&jsonl(s.get("/evaluation_runs?after=")).await, "evaluation_run_id"), all);
    // Unknown and deleted runs, and calls that are no runs, are 404s naming the id.
    json_ok(s.delete(&format!("/evaluation_runs?evaluation_run_ids={}", all[3]))).await;
    let pred = json_ok(s.post("/predictions", &json!({"model": MODELS[0], "inputs": {}, "output": 1}))).await;
    let pred = pred["prediction_id"].as_str().unwrap().to_string();
    for id in ["no-such-run", all[3], &pred] {
        for filter in ["", "&models=x", "&evaluation_run_ids=no-such-run"] {
            let (status, body) = status_json(s.get(&format!("/evaluation_runs?after={id}{filter}"))).await;
            assert_eq!(status, 404, "{id}{filter}: {body}");
            assert_eq!(body, json!({"reason": format!("Evaluation run {id} not found")}));
        }
    }
    // A project's cursor does not name a position in another project's list.
    let other_project = format!("{}/v2/acme/other/evaluation_runs?after={}", s.base(), all[0]);
    let r = reqwest::Client::new().get(other_project).basic_auth("api", Some(&s.key)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Creates a prediction under `run` with `POST /predictions` and returns its id.
async fn predict(s: &Server, run: Option<&str>, i: u32) -> String {
    let mut body = json!({"model": MODELS[0], "inputs": {"i": i}, "output": i});
    if let Some(run) = run {
        body["evaluation_run_id"] = json!(run);
    }
    json_ok(s.post("/predictions", &body)).await["prediction_id"].as_str().expect("id").to_string()
}

/// Logs an SDK example under `run`: a `predict_and_score` call whose output holds `scores`.
fn logged_example(id: &str, run: &str, second: u32, scores: Value) -> Value {
    done(
        id,
        Some(run),
        PAS_OP,
        second,
        json!({"self": EVALS[0], "model": MODELS[0], "example": {"q": id}}),
        json!({"output": id, "scores": scores, "model_latency": 0.1}),
    )
}

#[tokio::test]
async fn prediction_and_score_pages_by_cursor_hold_each_row_once_in_order() {
    let s = Server::start();
    let runs = log_runs(&s, 3).await;
    let (r0, r1) = (runs[0].id.clone(), runs[1].id.clone());
    // Flagged predictions and scores, under runs and alone...
    let mut flagged = Vec::new();
    for i in 0..9 {
        let run = [Some(r0.as_str()), Some(r1.as_str()), None][i as usize % 3];
        flagged.push(predict(&s, run, i).await);
    }
    for (i, p) in flagged.iter().enumerate().take(7) {
        let v = json_ok(s.post("/scores", &json!({"prediction_id": p, "scorer": SCORER, "value": i}))).await;
        assert!(v["score_id"].is_string());
    }
    // ...and examples the SDK logged, some starting at the same time, with several scores each.
    let batch: Vec<Value> = (0..8)
        .map(|i| {
            let run = if i % 2 == 0 { &r0 } else { &r1 };
            let id = format!("ex-{:02}", (i * 5) % 8);
            logged_example(&id, run, 100 + i / 3, json!({"exact": i % 2 == 0, "f1": {"p": 0.5, "r": i}}))
        })
        .collect();
    json_ok(s.post("/calls/complete", &json!({"batch": batch}))).await;
    // Some of each deleted.
    let v = json_ok(s.delete(&format!("/predictions?prediction_ids={},ex-03", flagged[4]))).await;
    assert!(v["num_deleted"].as_u64().unwrap() >= 2, "{v}");

    for (list, field) in [("/predictions", "prediction_id"), ("/scores", "score_id")] {
        for filter in [String::new(), format!("?evaluation_run_id={r0}"), format!("?evaluation_run_id={r1}")]
        {
            let path = format!("{list}{filter}");
            let expected = ids_of(&jsonl(s.get(&path)).await, field);
            assert!(expected.len() >= 3, "{path}: {expected:?}");
            let unique: std::collections::HashSet<&String> = expected.iter().collect();
            assert_eq!(unique.len(), expected.len(), "{path}");
            for limit in [1, 2, 5, 100] {
                assert_eq!(walk(&s, &path, field, limit).await, expected, "{path} limit {limit}");
            }
            // `offset` counts from the cursor.
            let url = format!(
                "{path}{}after={}&offset=1&limit=2",
                if filter.is_empty() { '?' } else { '&' },
                urlencoding(&expected[0])
            );
            let page = ids_of(&jsonl(s.get(&url)).await, field);
            assert_eq!(page, expected[2..expected.len().min(4)], "{url}");
        }
    }
    // The score list's two parts: score calls, then the logged predictions' scores; a walk
    // crosses from one to the other, and starts again inside a prediction's scores.
    let scores = ids_of(&jsonl(s.get("/scores")).await, "score_id");
    let first_logged = scores.iter().position(|id| id.contains(':')).expect("logged scores");
    assert!(first_logged > 0);
    let rows = jsonl(s.get(&format!("/scores?after={}&limit=2", urlencoding(&scores[first_logged])))).await;
    assert_eq!(ids_of(&rows, "score_id"), scores[first_logged + 1..first_logged + 3]);

    // Unknown and deleted ids, and ids of the other kind, are 404s naming the id.
    for (list, id, what) in [
        ("/predictions", "no-such-id".to_string(), "Prediction"),
        ("/predictions", flagged[4].clone(), "Prediction"),
        ("/predictions", "ex-03".to_string(), "Prediction"),
        ("/predictions", r0.clone(), "Prediction"),
        ("/scores", "no-such-id".to_string(), "Score"),
        ("/scores", "ex-03:exact".to_string(), "Score"),
        ("/scores", "ex-00:nope".to_string(), "Score"),
        ("/scores", flagged[0].clone(), "Score"),
    ] {
        let (status, body) = status_json(s.get(&format!("{list}?after={}", urlencoding(&id)))).await;
        assert_eq!(status, 404, "{list} {id}: {body}");
        assert_eq!(body, json!({"reason": format!("{what} {id} not found")}), "{list} {id}");
    }
}
