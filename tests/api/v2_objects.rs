//! The v2 object families (ops, datasets, scorers, evaluations, models) and
//! `eval_results/query`, through the HTTP API.

use crate::helpers::*;

use serde_json::{Value, json};

/// Creates an object of a family and returns the answer.
async fn create(s: &Server, family: &str, body: Value) -> Value {
    json_ok(s.post(&format!("/{family}"), &body)).await
}

#[tokio::test]
async fn each_family_creates_reads_lists_and_deletes() {
    let s = Server::start();
    // Ops: the source in a file, the placeholder when none is sent; names made ids as Weave does.
    let op = create(&s, "ops", json!({"name": "My Op", "source_code": "def f(x):\n    return x\n"})).await;
    assert_eq!(op["object_id"], "my_op");
    assert_eq!(op["version_index"], 0);
    let read = json_ok(s.get(&format!("/ops/my_op/versions/{}", op["digest"].as_str().unwrap()))).await;
    assert_eq!(read["code"], "def f(x):\n    return x\n");
    let mut keys: Vec<&str> = read.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "created_at", "digest", "object_id", "version_index"]);
    let again =
        create(&s, "ops", json!({"name": "My Op", "source_code": "def f(x):\n    return 2 * x\n"})).await;
    assert_eq!(again["version_index"], 1);
    let unnamed = create(&s, "ops", json!({})).await;
    assert_eq!(unnamed["object_id"], "Op");
    let code = json_ok(s.get("/ops/Op/versions/latest?eager=true")).await;
    assert!(code["code"].as_str().unwrap().contains("Code-capture unavailable"));
    // Only the latest version of each op is listed.
    let ops = jsonl(s.get("/ops")).await;
    let ids: Vec<(&str, i64)> = ops
        .iter()
        .map(|o| (o["object_id"].as_str().unwrap(), o["version_index"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids, [("Op", 0), ("my_op", 1)]);

    // Datasets: rows in a table the ref names.
    let ds = create(&s, "datasets", json!({"name": "QA Set", "rows": [{"q": "1+1"}, {"q": "2+2"}]})).await;
    assert_eq!(ds["object_id"], "qa_set");
    let d = json_ok(s.get(&format!("/datasets/qa_set/versions/{}", ds["digest"].as_str().unwrap()))).await;
    assert_eq!(d["name"], "QA Set");
    assert_eq!(d["description"], Value::Null);
    let table = d["rows"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let rows = table_rows(&s, &json!({"project_id": "acme/proj", "digest": table})).await;
    assert_eq!(rows.len(), 2);

    // Scorers, evaluations and models answer their ref.
    let sc = create(
        &s,
        "scorers",
        json!({"name": "Judge", "op_source_code": "def score(output):\n    return 1\n"}),
    )
    .await;
    assert_eq!(sc["scorer"], format!("weave:///acme/proj/object/judge:{}", sc["digest"].as_str().unwrap()));
    let sr = json_ok(s.get("/scorers/judge/versions/latest")).await;
    assert!(sr["score_op"].as_str().unwrap().starts_with("weave:///acme/proj/op/judge_score:"));
    let dref = format!("weave:///acme/proj/object/qa_set:{}", ds["digest"].as_str().unwrap());
    let ev = create(
        &s,
        "evaluations",
        json!({"name": "QA eval", "dataset": dref, "scorers": [sc["scorer"]], "trials": 2, "eval_attributes": {"team": "x"}}),
    )
    .await;
    assert_eq!(ev["object_id"], "qa_eval");
    let er = json_ok(s.get("/evaluations/qa_eval/versions/v0")).await;
    assert_eq!(er["dataset"], dref.as_str());
    assert_eq!(er["scorers"], json!([sc["scorer"]]));
    assert_eq!(er["trials"], 2);
    assert!(er["evaluate_op"].as_str().unwrap().starts_with("weave:///acme/proj/op/qa_eval.evaluate:"));
    let m = create(
        &s,
        "models",
        json!({"name": "Adder", "source_code": "class A: ...\n", "attributes": {"t": 0.5}}),
    )
    .await;
    assert_eq!(m["model_ref"], format!("weave:///acme/proj/object/adder:{}", m["digest"].as_str().unwrap()));
    let mr = json_ok(s.get("/models/adder/versions/latest")).await;
    assert_eq!(mr["source_code"], "class A: ...\n");
    assert_eq!(mr["attributes"], json!({"t": 0.5}));
    for (family, id) in
        [("datasets", "qa_set"), ("scorers", "judge"), ("evaluations", "qa_eval"), ("models", "adder")]
    {
        let listed = jsonl(s.get(&format!("/{family}"))).await;
        assert_eq!(listed.len(), 1, "{family}: {listed:?}");
        assert_eq!(listed[0]["object_id"], id);
    }

    // A version of another family is not found; nor an unknown one.
    let (st, body) = status_json(s.get("/models/qa_set/versions/latest")).await;
    assert_eq!(st, 404, "{body}");
    assert_eq!(status_json(s.get("/ops/nope/versions/latest")).await.0, 404);

    // Deletes: named digests, or every version.
    let first = op["digest"].as_str().unwrap();
    let n = json_ok(s.delete(&format!("/ops/my_op?digests={first}"))).await;
    assert_eq!(n, json!({"num_deleted": 1}));
    assert_eq!(status_json(s.get(&format!("/ops/my_op/versions/{first}"))).await.0, 404);
    let n = json_ok(s.delete("/ops/my_op")).await;
    assert_eq!(n, json!({"num_deleted": 1}));
    assert_eq!(status_json(s.delete("/ops/my_op")).await.0, 404);
    assert_eq!(status_json(s.delete("/models/qa_set")).await.0, 404, "a dataset is not a model");
    assert_eq!(json_ok(s.delete("/datasets/qa_set")).await, json!({"num_deleted": 1}));
    assert!(jsonl(s.get("/datasets")).await.is_empty());
}

#[tokio::test]
async fn bad_bodies_and_windows_are_refused_by_name() {
    let s = Server::start();
    let (st, body) = status_json(s.post("/scorers", &json!({"name": "s"}))).await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "op_source_code"]));
    let (st, body) = status_json(s.post("/datasets", &json!({"rows": [1]}))).await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "rows", 0]));
    let (st, body) =
        status_json(s.post("/evaluations", &json!({"name": "e", "dataset": "d", "trials": "x"}))).await;
    assert_eq!(st, 422, "{body}");
    let (st, body) =
        status_json(s.post("/models", &json!({"name": "m", "source_code": "", "colour": "red"}))).await;
    assert_eq!(st, 400, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("colour"));
    let (st, _) = status_json(s.get("/ops?limit=-1")).await;
    assert_eq!(st, 422);
    let (st, _) = status_json(s.get("/ops/x/versions/latest?eager=maybe")).await;
    assert_eq!(st, 422);
    // Paging over every version of the datasets.
    for i in 0..5 {
        create(&s, "datasets", json!({"name": format!("d{i}"), "rows": [{"i": i}]})).await;
    }
    let page = jsonl(s.get("/datasets?limit=2&offset=1")).await;
    let ids: Vec<&str> = page.iter().map(|d| d["object_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["d1", "d2"]);
}

#[tokio::test]
async fn eval_results_group_runs_logged_through_the_v2_routes() {
    let s = Server::start();
    let eval = "weave:///acme/proj/object/Ev:abc";
    let scorer = "weave:///acme/proj/object/Correct:s1";
    let mut runs = Vec::new();
    for (model, answers) in
        [("weave:///acme/proj/object/M:m1", [1.0, 0.0]), ("weave:///acme/proj/object/M:m2", [1.0, 1.0])]
    {
        let run = s.create_run(eval, model).await;
        for (i, value) in answers.iter().enumerate() {
            let p = json_ok(s.post(
                "/predictions",
                &json!({"model": model, "inputs": {"q": i}, "output": i, "evaluation_run_id": run}),
            ))
            .await;
            let pid = p["prediction_id"].as_str().unwrap();
            json_ok(s.post("/scores", &json!({"prediction_id": pid, "scorer": scorer, "value": value})))
                .await;
            json_ok(s.post(&format!("/predictions/{pid}/finish"), &json!({}))).await;
        }
        runs.push(run);
    }
    // Only the first run has a third example.
    let p = json_ok(s.post(
        "/predictions",
        &json!({"model": "weave:///acme/proj/object/M:m1", "inputs": {"q": 9}, "output": 9, "evaluation_run_id": runs[0]}),
    ))
    .await;
    json_ok(s.post(&format!("/predictions/{}/finish", p["prediction_id"].as_str().unwrap()), &json!({})))
        .await;

    let all = json_ok(s.post(
        "/eval_results/query",
        &json!({"evaluation_call_ids": runs, "include_summary": true, "include_raw_data_rows": true}),
    ))
    .await;
    assert_eq!(all["total_rows"], 3, "{all}");
    let rows = all["rows"].as_array().unwrap();
    let digests: Vec<&str> = rows.iter().map(|r| r["row_digest"].as_str().unwrap()).collect();
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(digests, sorted, "rows by row digest");
    let row0 = rows.iter().find(|r| r["raw_data_row"] == json!({"q": 0})).expect("row of q=0");
    let evals = row0["evaluations"].as_array().unwrap();
    assert_eq!(evals.len(), 2);
    let trial = &evals[0]["trials"][0];
    assert_eq!(trial["model_output"], 0);
    assert_eq!(trial["scores"], json!({"Correct": 1.0}));
    assert!(trial["predict_call_id"].is_string());
    assert!(trial["scorer_call_ids"]["Correct"].is_string(), "{trial}");
    let summary = &all["summary"];
    assert_eq!(summary["row_count"], 3);
    let first = &summary["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["evaluation_call_id"] == runs[1])
        .unwrap();
    assert_eq!(first["trial_count"], 2);
    assert_eq!(first["scorer_stats"][0]["numeric_mean"], 1.0);
    assert_eq!(first["model_ref"], "weave:///acme/proj/object/M:m2");

    // Intersections, windows, rows left out.
    let both = json_ok(s.post(
        "/eval_results/query",
        &json!({"evaluation_run_ids": runs, "require_intersection": true, "limit": 1, "offset": 1}),
    ))
    .await;
    assert_eq!(both["total_rows"], 2);
    assert_eq!(both["rows"].as_array().unwrap().len(), 1);
    assert_eq!(both["summary"], Value::Null);
    let none =
        json_ok(s.post("/eval_results/query", &json!({"evaluation_call_ids": runs, "include_rows": false})))
            .await;
    assert_eq!(none["rows"], json!([]));
    assert_eq!(none["total_rows"], 0);
    let unknown = json_ok(s.post("/eval_results/query", &json!({"evaluation_call_ids": ["nope"]}))).await;
    assert_eq!(unknown, json!({"rows": [], "total_rows": 0, "summary": null, "warnings": []}));

    // Bad bodies.
    assert_eq!(status_json(s.post("/eval_results/query", &json!({}))).await.0, 422);
    assert_eq!(
        status_json(s.post("/eval_results/query", &json!({"evaluation_call_ids": runs, "limit": -1})))
            .await
            .0,
        422
    );
    for (sort, status) in [
        (json!({"field": "scores.x", "direction": "up"}), 422),
        (json!({"field": "bogus.x", "direction": "asc"}), 400),
        (json!({"field": "output.x", "direction": "asc", "mode": "difference"}), 400),
        (json!({"field": "scores.x", "direction": "asc", "other": 1}), 400),
    ] {
        let (st, body) = status_json(
            s.post("/eval_results/query", &json!({"evaluation_call_ids": runs, "sort_by": [sort]})),
        )
        .await;
        assert_eq!(st, status, "{sort}: {body}");
    }
}

/// A run logged as the SDK logs one: `(example, label, scores)` per example, each with a
/// model call that used 10 prompt and 5 completion tokens of `gpt-x`.
async fn log_run(s: &Server, run: &str, examples: &[(Value, &str, Value)]) {
    let call = |id: &str, parent: Option<&str>, op: &str, inputs: Value, output: Value, summary: Value| {
        json!({"project_id": "acme/proj", "id": id, "trace_id": run, "parent_id": parent, "op_name": op,
            "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z",
            "attributes": {}, "inputs": inputs, "output": output, "summary": summary})
    };
    let mut batch = vec![call(
        run,
        None,
        "weave:///acme/proj/op/Evaluation.evaluate:e1",
        json!({"self": "weave:///acme/proj/object/Ev:e", "model": "weave:///acme/proj/object/M:m"}),
        json!({}),
        json!({}),
    )];
    for (i, (example, label, scores)) in examples.iter().enumerate() {
        let id = format!("{run}-{i}");
        let usage =
            json!({"usage": {"gpt-x": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}});
        batch.push(call(
            &id,
            Some(run),
            "weave:///acme/proj/op/Evaluation.predict_and_score:p1",
            json!({"self": "weave:///acme/proj/object/Ev:e", "model": "weave:///acme/proj/object/M:m", "example": example}),
            json!({"output": {"label": label}, "scores": scores, "model_latency": {"mean": 1}}),
            usage.clone(),
        ));
        batch.push(call(
            &format!("{id}-m"),
            Some(&id),
            "weave:///acme/proj/op/M.predict:m1",
            json!({"self": "weave:///acme/proj/object/M:m"}),
            json!({"label": label}),
            usage,
        ));
    }
    json_ok(s.post("/calls/complete", &json!({"batch": batch}))).await;
}

#[tokio::test]
async fn eval_results_filter_sort_and_price_as_weave_does() {
    let s = Server::start();
    let (_, row_digests) = create_table(&s, "acme/proj", &[json!({"x": 5})]).await;
    let row_ref = format!("weave:///acme/proj/object/Dataset:d/attr/rows/id/{}", row_digests[0]);
    log_run(
        &s,
        "r1",
        &[
            (json!({"x": 2}), "b", json!({"acc": 0.5, "ok": true})),
            (json!({"x": 10}), "c", json!({"acc": 0.9, "ok": true})),
            (json!({"x": 1}), "a", json!({"acc": 0.1, "ok": false})),
            (json!(row_ref), "d", json!({"acc": 0.0, "ok": false})),
        ],
    )
    .await;
    log_run(
        &s,
        "r2",
        &[(json!({"x": 2}), "b", json!({"acc": 0.6})), (json!({"x": 10}), "c", json!({"acc": 0.3}))],
    )
    .await;
    let query = |extra: Value| {
        let mut body = json!({"evaluation_call_ids": ["r1", "r2"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json_ok(s.post("/eval_results/query", &body))
    };
    // The label of each row's first trial, in the order answered.
    let labels = |res: &Value| -> Vec<String> {
        res["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["evaluations"][0]["trials"][0]["model_output"]["label"].as_str().unwrap().to_string())
            .collect()
    };
    let sorted = |field: &str, direction: &str, extra: Value| {
        let mut sort = json!({"field": field, "direction": direction});
        sort.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        query(json!({"sort_by": [sort]}))
    };
    // A score by its mean over the row's trials; inputs by number (a dataset row read); an
    // output in one run; the spread between runs.
    assert_eq!(labels(&sorted("scores.acc", "desc", json!({})).await), ["c", "b", "a", "d"]);
    assert_eq!(labels(&sorted("inputs.x", "asc", json!({})).await), ["a", "b", "d", "c"]);
    assert_eq!(
        labels(&sorted("output.output.label", "desc", json!({"evaluation_call_id": "r1"})).await),
        ["d", "c", "b", "a"]
    );
    // (Rows of one run spread 0, and tie: by row digest.)
    assert_eq!(labels(&sorted("scores.acc", "desc", json!({"mode": "difference"})).await)[..2], ["c", "b"]);

    let gte = |run: &str, min: f64| {
        json!({"evaluation_call_id": run,
               "query": {"$expr": {"$gte": [{"$getField": "scores.acc"}, {"$literal": min}]}}})
    };
    let one = query(json!({"filters": [gte("r1", 0.5)], "include_summary": true})).await;
    assert_eq!(one["total_rows"], 2, "{one}");
    assert_eq!(one["summary"]["row_count"], 2);
    let r1 = &one["summary"]["evaluations"][0];
    assert_eq!(r1["evaluation_call_id"], "r1");
    assert!((r1["scorer_stats"][0]["numeric_mean"].as_f64().unwrap() - 0.7).abs() < 1e-9, "{r1}");
    assert_eq!(r1["predict_total_tokens"], 30);
    assert_eq!(r1["predict_total_cost"], Value::Null);
    // Filters of several runs: a row matching one run's (the default), or all of them.
    let either = query(json!({"filters": [gte("r1", 0.8), gte("r2", 0.5)]})).await;
    assert_eq!(either["total_rows"], 2);
    let all =
        query(json!({"filters": [gte("r1", 0.8), gte("r2", 0.5)], "filter_logic_operator": "and"})).await;
    assert_eq!(all["total_rows"], 0);
    let ok = json!({"evaluation_call_id": "r1", "query": {"$expr": {"$eq": [{"$getField": "scores.ok"}, {"$literal": 1}]}}});
    assert_eq!(query(json!({"filters": [ok]})).await["total_rows"], 2);
    let contains = json!({"query": {"$expr": {"$contains": {"input": {"$getField": "output.output.label"}, "substr": {"$literal": "a"}}}}});
    assert_eq!(labels(&query(json!({"filters": [contains]})).await), ["a"]);
    let inputs = json!({"query": {"$expr": {"$gt": [{"$getField": "inputs.x"}, {"$literal": 4}]}}});
    assert_eq!(query(json!({"filters": [inputs]})).await["total_rows"], 2);
    let bad = json!({"query": {"$expr": {"$gt": [{"$getField": "nope"}, {"$literal": 4}]}}});
    assert_eq!(
        status_json(s.post("/eval_results/query", &json!({"evaluation_call_ids": ["r1"], "filters": [bad]})))
            .await
            .0,
        400
    );

    // Costs: each trial's model call priced, summed per run.
    let price = json!({"project_id": "acme/proj", "costs": {"gpt-x": {"prompt_token_cost": 0.01,
        "completion_token_cost": 0.02, "effective_date": "2024-01-01T00:00:00Z"}}});
    json_ok(post_v1(&s, "/cost/create", &price)).await;
    let priced = query(json!({"include_costs": true, "include_summary": true})).await;
    let trial = &priced["rows"][0]["evaluations"][0]["trials"][0];
    assert!((trial["total_cost"].as_f64().unwrap() - 0.2).abs() < 1e-9, "{trial}");
    assert_eq!(trial["total_tokens"], 15);
    let r1 = &priced["summary"]["evaluations"][0];
    assert!((r1["predict_total_cost"].as_f64().unwrap() - 0.8).abs() < 1e-9, "{r1}");
    assert_eq!(r1["predict_total_tokens"], 60);
    let unpriced = query(json!({})).await;
    assert!(unpriced["rows"][0]["evaluations"][0]["trials"][0].get("total_cost").is_none());
}

#[tokio::test]
async fn prediction_inputs_are_answered_as_weave_answers_them() {
    let s = Server::start();
    let p = json_ok(s.post(
        "/predictions",
        &json!({"model": "weave:///acme/proj/object/M:m", "inputs": {"q": 1}, "output": 2}),
    ))
    .await;
    let read = json_ok(s.get(&format!("/predictions/{}", p["prediction_id"].as_str().unwrap()))).await;
    assert_eq!(read["inputs"], json!({"q": 1}));
    // A call flagged with JSON `true` reads as a prediction by id; any call may be scored.
    let id = "0199d2c1-0000-7000-8000-00000000c0de";
    let start = json!({"start": {
        "project_id": "acme/proj", "id": id, "trace_id": id, "op_name": "M.predict",
        "started_at": "2026-01-01T00:00:00Z", "attributes": {"weave": {"prediction": true}},
        "inputs": {"self": "weave:///acme/proj/object/M:m"},
    }});
    json_ok(post_v1(&s, "/call/start", &start)).await;
    let read = json_ok(s.get(&format!("/predictions/{id}"))).await;
    assert_eq!(read["inputs"], json!({}));
    // ... and is listed as one.
    let listed = jsonl(s.get("/predictions")).await;
    assert!(listed.iter().any(|p| p["prediction_id"] == id), "{listed:?}");
    let sc = json_ok(s.post(
        "/scores",
        &json!({"prediction_id": id, "scorer": "weave:///acme/proj/object/S:s", "value": 1}),
    ))
    .await;
    assert!(sc["score_id"].is_string());
}
