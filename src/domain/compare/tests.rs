use super::*;
use crate::domain::stats::paired_bootstrap;

fn num(name: &str, value: f64) -> Metric {
    Metric { name: name.into(), kind: MetricKind::Number, value }
}

fn flag(name: &str, value: bool) -> Metric {
    Metric { name: name.into(), kind: MetricKind::Boolean, value: if value { 1.0 } else { 0.0 } }
}

fn run(id: &str, rows: Vec<(&str, Vec<Metric>)>) -> RunExamples {
    RunExamples {
        run_id: id.into(),
        examples: rows
            .into_iter()
            .map(|(k, metrics)| ExampleMetrics { row_key: k.into(), metrics })
            .collect(),
    }
}

fn opts() -> Bootstrap {
    Bootstrap { resamples: 500, seed: 11, ..Bootstrap::default() }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn two_runs_on_the_same_examples() {
    let base = run(
        "a",
        vec![
            ("r1", vec![flag("correct", true), num("score", 0.5), num("model_latency", 1.0)]),
            ("r2", vec![flag("correct", false), num("score", 0.2), num("model_latency", 2.0)]),
            ("r3", vec![flag("correct", false), num("score", 0.9), num("model_latency", 1.0)]),
            ("r4", vec![flag("correct", true), num("score", 0.4), num("model_latency", 3.0)]),
        ],
    );
    // Examples in another order: alignment is by row key.
    let cand = run(
        "b",
        vec![
            ("r4", vec![flag("correct", true), num("score", 0.4), num("model_latency", 2.0)]),
            ("r3", vec![flag("correct", true), num("score", 0.7), num("model_latency", 1.0)]),
            ("r2", vec![flag("correct", true), num("score", 0.6), num("model_latency", 3.0)]),
            ("r1", vec![flag("correct", true), num("score", 0.5), num("model_latency", 0.5)]),
        ],
    );
    let c = compare(&base, std::slice::from_ref(&cand), &opts()).unwrap();
    assert!(c.same_examples && c.same_metrics);
    assert_eq!(c.shared_by_all, 4);
    assert_eq!((c.level, c.resamples), (0.95, 500));
    assert_eq!(c.runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(c.runs[1].shared_with_baseline, 4);
    let names: Vec<&str> = c.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["correct", "score", "model_latency"]);

    let correct = &c.metrics[0];
    assert_eq!((correct.kind, correct.direction), (MetricKind::Boolean, Direction::HigherIsBetter));
    assert_eq!(correct.runs[0], RunMetric { n: 4, mean: Some(0.5), vs_baseline: None });
    let vs = correct.runs[1].vs_baseline.as_ref().unwrap();
    assert_eq!((vs.n_shared, vs.baseline_mean, vs.mean, vs.delta), (4, 0.5, 1.0, 0.5));
    assert_eq!((vs.improved, vs.regressed, vs.unchanged), (2, 0, 2));
    assert_eq!(vs.p_value, Some(mcnemar_exact(0, 2)));
    assert!(vs.low <= vs.delta && vs.delta <= vs.high);

    let score = &c.metrics[1];
    assert_eq!(score.kind, MetricKind::Number);
    let vs = score.runs[1].vs_baseline.as_ref().unwrap();
    assert!(close(vs.delta, 0.05), "{}", vs.delta);
    assert_eq!((vs.improved, vs.regressed, vs.unchanged, vs.p_value), (1, 1, 2, None));
    // The same interval the bootstrap gives the differences alone, in baseline order.
    let alone = paired_bootstrap(&[0.5, 0.2, 0.9, 0.4], &[0.5, 0.6, 0.7, 0.4], 0.95, 500, 11).unwrap();
    assert_eq!((vs.low, vs.high), (alone.low, alone.high), "{vs:?} {alone:?}");

    // Lower latency is better: r1 and r4 improved, r2 regressed.
    let latency = &c.metrics[2];
    assert_eq!(latency.direction, Direction::LowerIsBetter);
    let vs = latency.runs[1].vs_baseline.as_ref().unwrap();
    assert_eq!((vs.improved, vs.regressed, vs.unchanged), (2, 1, 1));

    // Deterministic for a seed.
    assert_eq!(compare(&base, std::slice::from_ref(&cand), &opts()).unwrap(), c);
}

#[test]
fn different_examples_and_scorers_are_flagged() {
    let base = run(
        "a",
        vec![
            ("r1", vec![num("score", 1.0), flag("ok", true)]),
            ("r2", vec![num("score", 2.0), flag("ok", false)]),
            ("r3", vec![num("score", 3.0)]),
        ],
    );
    let b = run(
        "b",
        vec![
            ("r1", vec![num("score", 2.0)]),
            ("r2", vec![num("score", 2.0)]),
            ("r9", vec![num("score", 5.0)]),
        ],
    );
    let c = run("c", vec![("r2", vec![num("score", 1.0), num("judge.relevance", 0.3)])]);
    let cmp = compare(&base, &[b, c], &opts()).unwrap();
    assert!(!cmp.same_examples && !cmp.same_metrics);
    assert_eq!(cmp.shared_by_all, 1);
    let sides: Vec<(usize, usize, Vec<String>)> =
        cmp.runs.iter().map(|r| (r.examples, r.shared_with_baseline, r.missing_metrics.clone())).collect();
    assert_eq!(
        sides,
        vec![
            (3, 3, vec!["judge.relevance".to_string()]),
            (3, 2, vec!["ok".to_string(), "judge.relevance".to_string()]),
            (1, 1, vec!["ok".to_string()]),
        ]
    );
    let score = &cmp.metrics[0];
    assert_eq!(
        score.runs.iter().map(|r| (r.n, r.mean)).collect::<Vec<_>>(),
        [(3, Some(2.0)), (3, Some(3.0)), (1, Some(1.0))]
    );
    let vs = score.runs[1].vs_baseline.as_ref().unwrap();
    assert_eq!((vs.n_shared, vs.baseline_mean, vs.mean, vs.delta), (2, 1.5, 2.0, 0.5));
    // A metric the candidate lacks, or the baseline lacks, has no difference.
    assert_eq!(cmp.metrics[1].runs[1], RunMetric { n: 0, mean: None, vs_baseline: None });
    assert_eq!(cmp.metrics[2].name, "judge.relevance");
    assert_eq!(cmp.metrics[2].runs[0].mean, None);
    assert_eq!(cmp.metrics[2].runs[2], RunMetric { n: 1, mean: Some(0.3), vs_baseline: None });
}

#[test]
fn a_metric_some_examples_lack_is_paired_where_both_have_it() {
    let base = run(
        "a",
        vec![
            ("r1", vec![num("s", 1.0), num("t", 1.0)]),
            ("r2", vec![num("s", 1.0)]),
            ("r3", vec![num("s", 1.0)]),
        ],
    );
    let cand = run(
        "b",
        vec![
            ("r1", vec![num("s", 2.0), num("t", 4.0)]),
            ("r2", vec![num("s", 2.0), num("t", 9.0)]),
            ("r3", vec![num("s", 0.0)]),
        ],
    );
    let c = compare(&base, &[cand], &opts()).unwrap();
    assert!(c.same_examples && c.same_metrics);
    let s = c.metrics[0].runs[1].vs_baseline.as_ref().unwrap();
    assert_eq!((s.n_shared, s.improved, s.regressed), (3, 2, 1));
    let t = c.metrics[1].runs[1].vs_baseline.as_ref().unwrap();
    assert_eq!((t.n_shared, t.delta, t.low, t.high), (1, 3.0, 3.0, 3.0));
    assert_eq!(c.metrics[1].runs[1].n, 2);
}

#[test]
fn trials_count_by_their_mean() {
    let base = run(
        "a",
        vec![("r1", vec![flag("ok", true)]), ("r1", vec![flag("ok", false)]), ("r2", vec![flag("ok", true)])],
    );
    let cand = run("b", vec![("r1", vec![flag("ok", true)]), ("r2", vec![flag("ok", true)])]);
    let c = compare(&base, &[cand], &opts()).unwrap();
    assert_eq!((c.runs[0].examples, c.runs[0].repeated_examples), (2, 1));
    let ok = &c.metrics[0];
    assert_eq!(ok.kind, MetricKind::Boolean);
    assert_eq!(ok.runs[0].mean, Some(0.75));
    let vs = ok.runs[1].vs_baseline.as_ref().unwrap();
    assert_eq!((vs.delta, vs.improved, vs.unchanged), (0.25, 1, 1));
    // A mean of trials is not a pass or a fail: no McNemar test.
    assert_eq!(vs.p_value, None);
}

#[test]
fn mixed_kinds_are_numbers_and_the_candidate_count_is_bounded() {
    let base = run("a", vec![("r1", vec![flag("x", true)])]);
    let cand = run("b", vec![("r1", vec![num("x", 0.5)])]);
    let c = compare(&base, std::slice::from_ref(&cand), &opts()).unwrap();
    assert_eq!(c.metrics[0].kind, MetricKind::Number);
    assert!(matches!(compare(&base, &[], &opts()), Err(Error::BadRequest(_))));
    let eight = vec![cand; 8];
    assert!(matches!(compare(&base, &eight, &opts()), Err(Error::BadRequest(_))));
    assert!(compare(&base, &eight[..7], &opts()).is_ok());
    assert!(matches!(align(&base, &eight, "x"), Err(Error::BadRequest(_))));
}

#[test]
fn alignment_lists_every_example_and_sorts_by_delta() {
    let base = run(
        "a",
        vec![
            ("r1", vec![num("cost", 1.0)]),
            ("r2", vec![num("cost", 2.0)]),
            ("r3", vec![num("cost", 3.0)]),
            ("r4", vec![]),
        ],
    );
    let b = run(
        "b",
        vec![("r3", vec![num("cost", 1.0)]), ("r1", vec![num("cost", 4.0)]), ("r5", vec![num("cost", 7.0)])],
    );
    let c = run("c", vec![("r2", vec![num("cost", 2.5)])]);
    let mut al = align(&base, &[b, c], "cost").unwrap();
    assert_eq!(al.direction, Direction::LowerIsBetter);
    assert_eq!(al.run_ids, ["a", "b", "c"]);
    let keys = |al: &Alignment| al.rows.iter().map(|r| r.row_key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&al), ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(al.rows[0].values, [Some(1.0), Some(4.0), None]);
    assert_eq!(al.rows[0].deltas, [Some(3.0), None]);
    assert_eq!(al.rows[1].deltas, [None, Some(0.5)]);
    assert_eq!(al.rows[4].values, [None, Some(7.0), None]);

    al.sort(0, Sort::Ascending);
    assert_eq!(keys(&al), ["r3", "r1", "r2", "r4", "r5"]);
    al.sort(0, Sort::Descending);
    assert_eq!(keys(&al), ["r1", "r3", "r2", "r4", "r5"]);
    // Cost: lower is better, so the rise of r1 is the worst change.
    al.sort(0, Sort::RegressedFirst);
    assert_eq!(keys(&al)[..2], ["r1", "r3"]);
    al.sort(0, Sort::ImprovedFirst);
    assert_eq!(keys(&al)[..2], ["r3", "r1"]);
    al.sort(1, Sort::Ascending);
    assert_eq!(keys(&al)[0], "r2");
    al.sort(9, Sort::Ascending); // no such candidate: nothing to sort by, order kept
    assert_eq!(keys(&al)[0], "r2");

    assert!(matches!(align(&base, &[run("b", vec![])], "nope"), Err(Error::NotFound(_))));
}

#[test]
fn examples_convert_with_their_latency() {
    let ex = Example {
        id: "p".into(),
        call_id: "c".into(),
        row_key: "k".into(),
        inputs: serde_json::json!({}),
        output: serde_json::Value::Null,
        scores: serde_json::json!({"ok": true}).as_object().unwrap().clone(),
        latency: Some(0.5),
        error: None,
        started_at: 0,
    };
    let e = ExampleMetrics::of(&ex);
    assert_eq!(e.row_key, "k");
    assert_eq!(e.metrics, [flag("ok", true), num("model_latency", 0.5)]);
}
