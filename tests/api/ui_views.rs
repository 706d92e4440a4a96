//! The web UI's run and compare views on runs logged as the Python SDK logs them: the numbers
//! they show equal the API's, their exports equal the pages, bad query values are 400s.

use serde_json::{Value, json};

use crate::helpers::*;

const EVAL: &str = "weave:///acme/proj/object/Ev:abc";

/// One example's result: the dataset row it was on, the model's output, a boolean and a
/// numeric score, and the error if the prediction failed.
pub struct Outcome<'a> {
    pub row: usize,
    pub output: &'a str,
    pub correct: bool,
    pub score: f64,
    pub error: Option<&'a str>,
}

fn at(micros: u64) -> String {
    let s = micros / 1_000_000;
    format!("2026-01-01T00:{:02}:{:02}.{:06}Z", s / 60 % 60, s % 60, micros % 1_000_000)
}

/// Logs run `run` of `model` as the SDK does: the root, one `predict_and_score` call per
/// example (holding the model's call), then the root's end with the scorers' aggregates.
pub async fn log_sdk_run(s: &Server, run: &str, model: &str, outcomes: &[Outcome<'_>]) {
    let model_ref = format!("weave:///acme/proj/object/{model}:v1");
    let base = 1_000_000 * (run.len() as u64 % 7);
    let start = json!({"start": {"project_id": "acme/proj", "id": run, "trace_id": run,
        "op_name": "weave:///acme/proj/op/Evaluation.evaluate:e1", "started_at": at(base),
        "attributes": {}, "inputs": {"self": EVAL, "model": model_ref}}});
    json_ok(s.post("/call/start", &start)).await;
    let mut batch = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        let id = format!("{run}-ex{i}");
        let t = base + 1000 * (i as u64 + 1);
        let row = format!("weave:///acme/proj/object/Data:d1/attr/rows/id/row{}", o.row);
        batch.push(json!({"project_id": "acme/proj", "id": id, "trace_id": run, "parent_id": run,
            "op_name": "weave:///acme/proj/op/Evaluation.predict_and_score:p1",
            "started_at": at(t), "ended_at": at(t + 500), "exception": o.error, "attributes": {},
            "inputs": {"self": EVAL, "model": model_ref, "example": row},
            "output": {"output": o.output, "scores": {"judge": {"correct": o.correct}, "overlap": o.score},
                "model_latency": 0.5},
            "summary": {}}));
        batch.push(json!({"project_id": "acme/proj", "id": format!("{id}-m"), "trace_id": run, "parent_id": id,
            "op_name": format!("weave:///acme/proj/op/{model}.predict:m1"), "started_at": at(t), "ended_at": at(t + 400),
            "attributes": {}, "inputs": {"q": o.row}, "output": o.output, "summary": {}}));
    }
    json_ok(
        s.client
            .post(s.url("/calls/complete"))
            .basic_auth("api", Some(&s.key))
            .json(&json!({ "batch": batch })),
    )
    .await;
    let n = outcomes.len() as f64;
    let trues = outcomes.iter().filter(|o| o.correct).count();
    let end = json!({"end": {"project_id": "acme/proj", "id": run, "ended_at": at(base + 900_000),
        "output": {"judge": {"correct": {"true_count": trues, "true_fraction": trues as f64 / n}},
            "overlap": {"mean": outcomes.iter().map(|o| o.score).sum::<f64>() / n}, "model_latency": {"mean": 0.5}},
        "summary": {"status_counts": {"success": outcomes.len(), "error": 0}}}});
    json_ok(s.post("/call/end", &end)).await;
}

fn o(row: usize, output: &str, correct: bool, score: f64) -> Outcome<'_> {
    Outcome { row, output, correct, score, error: None }
}

fn jsonl_rows(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[tokio::test]
async fn the_run_page_shows_the_runs_examples_as_the_api_lists_them() {
    let s = Server::start();
    let mut outcomes: Vec<Outcome> =
        (0..12).map(|i| o(i, "an answer", i % 3 != 0, i as f64 / 10.0)).collect();
    outcomes[5].error = Some("ValueError: <b>boom</b>");
    outcomes[7].output = "<script>alert(1)</script>";
    log_sdk_run(&s, "runa", "Alpha", &outcomes).await;
    let cookie = s.ui_sign_in(&s.key).await;

    let (status, page) = status_text(s.ui_get("/acme/proj/weave/runs/runa", &cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("judge.correct.true_fraction") && page.contains("0.6667"), "summary cards: {page}");
    assert!(!page.contains("<script>alert"), "outputs are escaped");
    assert!(page.contains("&lt;b&gt;boom&lt;/b&gt;"));
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "a distribution per metric (judge.correct, overlap, model_latency)"
    );

    let api = jsonl(s.get("/predictions?evaluation_run_id=runa")).await;
    let (_, export) =
        status_text(s.ui_get("/acme/proj/weave/runs/runa?format=jsonl&limit=500", &cookie)).await;
    let rows = jsonl_rows(&export);
    assert_eq!(rows.len(), api.len(), "one row per prediction the API lists");
    for (row, p) in rows.iter().zip(&api) {
        assert_eq!(row["output"], p["output"], "{row} vs {p}");
    }
    let overlaps: Vec<f64> = rows.iter().map(|r| r["score.overlap"].as_f64().unwrap()).collect();
    assert_eq!(overlaps, (0..12).map(|i| i as f64 / 10.0).collect::<Vec<_>>());
    assert_eq!(rows[5]["error"], "ValueError: <b>boom</b>");
    assert!(rows[0]["inputs"].is_string() || rows[0]["inputs"].is_object());

    // Filters: failed only; a metric below a threshold; both exports agree with the page.
    let failed = jsonl_rows(
        &status_text(s.ui_get("/acme/proj/weave/runs/runa?failed=1&format=jsonl", &cookie)).await.1,
    );
    assert_eq!(failed.len(), 1);
    let low = s.ui_get("/acme/proj/weave/runs/runa?metric=overlap&below=0.3&format=csv", &cookie);
    let (_, csv) = status_text(low).await;
    assert_eq!(csv.lines().count(), 1 + 3, "header and rows 0.0, 0.1, 0.2: {csv}");
    let paged = jsonl_rows(
        &status_text(s.ui_get("/acme/proj/weave/runs/runa?limit=5&offset=10&format=jsonl", &cookie)).await.1,
    );
    assert_eq!(paged.iter().map(|r| r["example"].as_str().unwrap()).collect::<Vec<_>>(), ["11", "12"]);

    for bad in ["?below=x&metric=overlap", "?below=1", "?failed=maybe", "?limit=-1", "?format=xml"] {
        let (status, body) =
            status_text(s.ui_get(&format!("/acme/proj/weave/runs/runa{bad}"), &cookie)).await;
        assert!(status == 400 || status == 422, "{bad}: {status} {body}");
    }
    let (status, _) = status_text(s.ui_get("/acme/proj/weave/runs/nope", &cookie)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_compare_page_shows_deltas_intervals_and_the_examples_side_by_side() {
    let s = Server::start();
    // A and B on rows 0..10: B fixes rows 0-3, breaks row 9; overlap goes up by 0.1 on each.
    let a: Vec<Outcome> = (0..10).map(|i| o(i, "the cat sat", i >= 4, 0.5)).collect();
    let b: Vec<Outcome> =
        (0..10).map(|i| o(i, if i < 4 { "the cat sat down" } else { "the cat sat" }, i != 9, 0.6)).collect();
    // C saw other rows (another dataset).
    let c: Vec<Outcome> = (20..25).map(|i| o(i, "x", true, 1.0)).collect();
    log_sdk_run(&s, "ra", "Alpha", &a).await;
    log_sdk_run(&s, "rbb", "Beta", &b).await;
    log_sdk_run(&s, "rcccc", "Gamma", &c).await;
    let cookie = s.ui_sign_in(&s.key).await;

    let (status, page) =
        status_text(s.ui_get("/acme/proj/weave/compare?runs=ra,rbb&baseline=ra", &cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("different datasets"), "same rows, no warning");
    assert!(
        page.contains("<del class=\"diff\">") || page.contains("<ins class=\"diff\">"),
        "outputs are diffed"
    );
    assert!(page.matches("<svg").count() >= 4, "bars per metric, a distribution and a scatter");

    let metrics = jsonl_rows(
        &status_text(s.ui_get("/acme/proj/weave/compare?runs=ra,rbb&format=jsonl", &cookie)).await.1,
    );
    let correct = metrics.iter().find(|m| m["metric"] == "judge.correct").expect("judge.correct");
    assert_eq!(correct["mean.ra"], 0.6);
    assert_eq!(correct["mean.rbb"], 0.9);
    let delta = correct["delta.rbb"].as_f64().unwrap();
    assert!((delta - 0.3).abs() < 1e-9, "{correct}");
    let (low, high) = (correct["ci_low.rbb"].as_f64().unwrap(), correct["ci_high.rbb"].as_f64().unwrap());
    assert!(low <= delta && delta <= high && low < high, "{correct}");
    // McNemar on 4 improved against 1 regressed: p = 2 * P(X <= 1 | n=5) = 2 * 6/32.
    assert!((correct["p_value.rbb"].as_f64().unwrap() - 0.375).abs() < 1e-12, "{correct}");
    assert_eq!((correct["improved.rbb"].as_u64(), correct["regressed.rbb"].as_u64()), (Some(4), Some(1)));
    let overlap = metrics.iter().find(|m| m["metric"] == "overlap").unwrap();
    assert!(overlap["p_value.rbb"].is_null(), "no McNemar for a numeric metric");
    let latency = metrics.iter().find(|m| m["metric"] == "model_latency").unwrap();
    assert_eq!(latency["direction"], "lower");

    let examples = |q: &str| {
        let url = format!(
            "/acme/proj/weave/compare?runs=ra,rbb&metric=judge.correct&table=examples&format=jsonl{q}"
        );
        s.ui_get(&url, &cookie)
    };
    let rows = jsonl_rows(&status_text(examples("")).await.1);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["output.rbb"], "the cat sat down");
    let regressions = jsonl_rows(&status_text(examples("&regressions=1")).await.1);
    assert_eq!(regressions.len(), 1);
    assert_eq!(regressions[0]["row"], "row9");
    let worst = jsonl_rows(&status_text(examples("&sort=regressed")).await.1);
    assert_eq!(worst[0]["row"], "row9", "worst change first");
    let best = jsonl_rows(&status_text(examples("&sort=improved&limit=4")).await.1);
    assert!(best.iter().all(|r| r["delta.rbb"] == 1), "{best:?}");

    let (_, page) = status_text(s.ui_get("/acme/proj/weave/compare?runs=ra,rcccc", &cookie)).await;
    assert!(page.contains("different datasets"), "a warning when the runs saw other rows");

    let r = s
        .ui_get("/acme/proj/weave/compare-evaluations?evaluationCallIds=%5B%22ra%22%2C%22rbb%22%5D", &cookie);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/acme/proj/weave/compare?runs=ra%2Crbb");

    for bad in [
        "runs=ra",
        "runs=ra,rbb&baseline=zz",
        "runs=ra,rbb&sort=up",
        "runs=a,b,c,d,e,f,g,h,i",
        "runs=ra,nope",
        "runs=ra,rbb&metric=nope",
        "runs=ra,rbb&table=x",
    ] {
        let (status, body) = status_text(s.ui_get(&format!("/acme/proj/weave/compare?{bad}"), &cookie)).await;
        assert!([400, 404].contains(&status), "{bad}: {status} {body}");
    }
}
