//! `domain::examples::of_run` against each backend: the same run, logged the SDK's way and
//! the v2 routes' way, read as the same examples (whole, or without inputs and outputs); and
//! dataset rows resolved together as one by one. ClickHouse is checked when
//! `WEFT_TEST_CLICKHOUSE_URL` names a server (as the API tests' ClickHouse runs set it).

use std::time::Instant;

use serde_json::{Value, json};

use crate::domain::call::Call;
use crate::domain::examples::{Example, Keep, count_of_run, of_run};
use crate::domain::prediction::{self, CreatePrediction};
use crate::domain::run_view::{resolved_inputs, resolved_inputs_of};
use crate::domain::score::{self, CreateScore};
use crate::domain::store::{Store, write};
use crate::domain::writes::{objects, runs};

/// A run logged as `Evaluation.evaluate` logs it: `n` examples, each a `predict_and_score`
/// child holding the model's call and a scorer's, ended with its output; every third without
/// a model latency (as `EvaluationLogger` logs them), so that its model's call is read.
fn sdk_run(project: &str, n: usize) -> (Call, Vec<Call>) {
    let mut run = Call::new(project, "weave:///e/p/op/Evaluation.evaluate:d", 1_000);
    run.inputs = json!({"self": "weave:///e/p/object/Ev:1", "model": "weave:///e/p/object/M:1"});
    let mut calls = vec![];
    for i in 0..n {
        let at = 2_000 + 1_000 * i as i64;
        let mut pas = Call::new(project, "weave:///e/p/op/Evaluation.predict_and_score:d", at).under(&run);
        pas.inputs = json!({"self": "weave:///e/p/object/Ev:1", "model": "weave:///e/p/object/M:1",
            "example": format!("weave:///e/p/object/D:x/attr/rows/id/row{i}")});
        let latency = if i % 3 == 2 { Value::Null } else { json!(0.5) };
        pas.output = Some(
            json!({"output": i, "scores": {"exact": {"correct": i % 2 == 0}}, "model_latency": latency}),
        );
        pas.ended_at = Some(at + 900);
        let mut predict = Call::new(project, "weave:///e/p/op/M.predict:d", at + 1).under(&pas);
        predict.output = Some(json!(i));
        predict.ended_at = Some(at + 251);
        let mut scorer = Call::new(project, "weave:///e/p/op/exact:d", at + 300).under(&pas);
        scorer.output = Some(json!({"correct": i % 2 == 0}));
        scorer.ended_at = Some(at + 400);
        calls.extend([pas, predict, scorer]);
    }
    (run, calls)
}

fn write_calls(store: &dyn Store, calls: Vec<Call>) {
    for chunk in calls.chunks(5_000) {
        let chunk = chunk.to_vec();
        write(store, move |w| chunk.iter().try_for_each(|c| w.insert_call(c))).unwrap();
    }
}

fn examples(store: &dyn Store, project: &str, run: &str) -> Vec<Example> {
    let mut out = Vec::new();
    of_run(store, project, run, Keep::All, &mut |e| {
        out.push(e);
        true
    })
    .unwrap();
    out
}

/// Runs the checks on `store`, in a project of its own.
pub(crate) fn check(store: &dyn Store, project: &str) {
    let (run, calls) = sdk_run(project, 4);
    let pas: Vec<Call> = calls.iter().step_by(3).cloned().collect();
    let mut all = vec![run.clone()];
    all.extend(calls);
    write_calls(store, all);
    let got = examples(store, project, &run.id);
    assert_eq!(got.len(), 4);
    for (i, e) in got.iter().enumerate() {
        assert_eq!((&e.id, &e.call_id), (&pas[i].id, &pas[i].id));
        assert_eq!(e.row_key, format!("row{i}"));
        assert_eq!(e.output, json!(i));
        assert_eq!(Value::Object(e.scores.clone()), json!({"exact": {"correct": i % 2 == 0}}));
        // The model latency, else the model call's duration (250 µs).
        assert_eq!(e.latency, Some(if i % 3 == 2 { 0.00025 } else { 0.5 }), "{i}");
        assert_eq!(e.error, None);
    }
    assert_eq!(count_of_run(store, project, &run.id).unwrap(), 4);
    assert_eq!(scored(store, project, &run.id), without_io(&got));

    // The v2 routes: a run, a prediction with a score (not finished), one finished.
    let p = project.to_string();
    let run2 = write(store, move |w| {
        let req = crate::domain::eval_run::CreateRun {
            evaluation: "weave:///e/p/object/Ev:1".into(),
            model: "weave:///e/p/object/M:1".into(),
            source_evaluation_run_id: None,
        };
        runs::create(w, &p, &req, None)
    })
    .unwrap();
    let mut ids = vec![];
    for (q, value) in [(1, 0.25), (2, 1.0)] {
        let (p, r) = (project.to_string(), run2.clone());
        let id = write(store, move |w| {
            let pred = CreatePrediction {
                model: "weave:///e/p/object/M:1".into(),
                inputs: json!({"q": q}).as_object().cloned().unwrap(),
                output: json!(q * 10),
                evaluation_run_id: Some(r.clone()),
                genai_span_ref: None,
            };
            let id = prediction::create(w, &p, &pred, None)?;
            let s = CreateScore {
                prediction_id: id.clone(),
                scorer: "weave:///e/p/object/acc:1".into(),
                value: json!(value),
                evaluation_run_id: None,
            };
            score::create(w, &p, &s, None)?;
            if q == 2 {
                prediction::finish(w, &p, &id)?;
            }
            Ok(id)
        })
        .unwrap();
        ids.push(id);
    }
    let got = examples(store, project, &run2);
    let seen: Vec<_> =
        got.iter().map(|e| (e.id.clone(), e.output.clone(), Value::Object(e.scores.clone()))).collect();
    assert_eq!(
        seen,
        [(ids[0].clone(), json!(10), json!({"acc": 0.25})), (ids[1].clone(), json!(20), json!({"acc": 1.0})),]
    );
    assert_eq!(got[0].row_key, crate::domain::digest::value_digest(&json!({"q": 1})));
    assert!(got.iter().all(|e| e.latency.is_some() && e.call_id != e.id));
    assert_eq!(scored(store, project, &run2), without_io(&got));

    check_resolved_inputs(store, project);
}

/// The examples of a run without their inputs and outputs ([`Keep::Scores`]).
fn scored(store: &dyn Store, project: &str, run: &str) -> Vec<Example> {
    let mut out = Vec::new();
    of_run(store, project, run, Keep::Scores, &mut |e| {
        out.push(e);
        true
    })
    .unwrap();
    out
}

fn without_io(examples: &[Example]) -> Vec<Example> {
    examples.iter().cloned().map(|e| Example { inputs: Value::Null, output: Value::Null, ..e }).collect()
}

/// Dataset row refs read together are read as one by one.
fn check_resolved_inputs(store: &dyn Store, project: &str) {
    let p = project.to_string();
    let (table, digests) = write(store, move |w| {
        objects::create_table(w, &p, &[json!({"q": 1}), json!({"q": 2}), json!({"q": 3})], None)
    })
    .unwrap();
    let p = project.to_string();
    let val = json!({"_type": "Dataset", "_class_name": "Dataset", "_bases": ["Object", "BaseModel"],
        "rows": format!("weave:///{project}/table/{table}")});
    let dataset = write(store, move |w| objects::create(w, &p, "D", val, None, None, None)).unwrap();
    let row = |d: &str| json!(format!("weave:///{project}/object/D:{}/attr/rows/id/{d}", dataset.digest));
    let inputs = [
        row(&digests[2]),
        json!({"inline": true}),
        row(&digests[0]),
        row("missing"),
        row(&digests[2]),
        json!(format!("weave:///{project}/object/Nothing:abc/attr/rows/id/{}", digests[1])),
        json!(format!("weave:///{project}/object/D:{}", dataset.digest)),
    ];
    let refs: Vec<&Value> = inputs.iter().collect();
    let one_by_one: Vec<Value> = inputs.iter().map(|v| resolved_inputs(store, v)).collect();
    assert_eq!(resolved_inputs_of(store, &refs), one_by_one);
    assert_eq!(one_by_one[0], json!({"q": 3}));
    assert_eq!(one_by_one[3], inputs[3], "a missing row stays a ref");
}

/// Two runs of `n` examples each, read back; the time is printed (it is measured in release
/// builds elsewhere; here only the answer is checked).
pub(crate) fn check_large(store: &dyn Store, project: &str, n: usize) {
    let mut runs = vec![];
    for _ in 0..2 {
        let (run, calls) = sdk_run(project, n);
        let mut all = vec![run.clone()];
        all.extend(calls);
        write_calls(store, all);
        runs.push(run.id);
    }
    let t = Instant::now();
    for run in &runs {
        assert_eq!(examples(store, project, run).len(), n);
    }
    eprintln!("{n} examples of 2 runs read in {:?}", t.elapsed());
}

#[test]
fn examples_of_runs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::sqlite::SqliteStore::open(dir.path()).unwrap();
    check(&store, "e/p");
    check_large(&store, "e/big", 10_000);
}

#[test]
fn examples_of_runs_on_clickhouse() {
    let Ok(url) = std::env::var("WEFT_TEST_CLICKHOUSE_URL") else {
        eprintln!("skipped: needs WEFT_TEST_CLICKHOUSE_URL");
        return;
    };
    let database = format!("weft_examples_{}", std::process::id());
    let config = crate::store::clickhouse::Config {
        url,
        database,
        user: std::env::var("WEFT_CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
        password: std::env::var("WEFT_CLICKHOUSE_PASSWORD").unwrap_or_default(),
    };
    let store = crate::store::clickhouse::ClickHouseStore::open(config).unwrap();
    check(&store, "e/p");
    check_large(&store, "e/big", 2_000);
}
