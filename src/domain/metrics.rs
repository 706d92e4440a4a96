//! Metrics: the numbers the compare and leaderboard views show, flattened out of what scorers
//! return and out of a run's summary.
//!
//! A scorer returns a number, a boolean, or an object of them (nested any depth). Each numeric
//! or boolean leaf becomes a [`Metric`] named by its path: `scorer` for a bare value,
//! `scorer.field` for a field, `scorer.field.sub` deeper. A run's summary (Weave's aggregate
//! shape, `{"scorer": {"correct": {"true_count": 3, "true_fraction": 0.75}},
//! "model_latency": {"mean": 0.2}}`) flattens the same way. Strings, nulls, arrays and
//! non-finite numbers are not metrics and are left out.

use serde::Serialize;
use serde_json::{Map, Value};

use super::examples::Example;

/// What a metric's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Pass / fail, stored as 1.0 / 0.0.
    Boolean,
    /// Any other number.
    Number,
}

/// Which way a metric gets better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More is better (accuracy, scores).
    HigherIsBetter,
    /// Less is better (latency, cost, tokens, errors, losses, distances).
    LowerIsBetter,
}

/// Words that, as a word of a metric's name (or the start of one: `tokens`, `errors`), make
/// lower better.
const LOWER_IS_BETTER: [&str; 7] = ["latency", "cost", "token", "error", "loss", "distance", "duration"];

impl Direction {
    /// The direction a metric's name suggests: lower is better when a word of the name starts
    /// with one of latency, cost, token, error, loss, distance, duration (words split at
    /// anything not a letter or digit, and at camelCase humps); higher otherwise.
    pub fn of(name: &str) -> Direction {
        let mut word = String::new();
        let mut lower = false;
        let mut prev_lower = false;
        let mut check = |word: &mut String| {
            if LOWER_IS_BETTER.iter().any(|k| word.starts_with(k)) {
                lower = true;
            }
            word.clear();
        };
        for ch in name.chars() {
            if !ch.is_alphanumeric() {
                check(&mut word);
                prev_lower = false;
                continue;
            }
            if ch.is_uppercase() && prev_lower {
                check(&mut word);
            }
            prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
            word.extend(ch.to_lowercase());
        }
        check(&mut word);
        if lower { Direction::LowerIsBetter } else { Direction::HigherIsBetter }
    }

    /// Whether going from `from` to `to` is an improvement (`Some(true)`), a regression
    /// (`Some(false)`) or no change (`None`).
    pub fn judge(self, from: f64, to: f64) -> Option<bool> {
        if unchanged(from, to) {
            return None;
        }
        Some((to > from) == (self == Direction::HigherIsBetter))
    }
}

/// Whether two values are the same up to rounding (means over trials differ in the last bits).
pub fn unchanged(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// One metric's value: its path name, its kind and the value (booleans as 1.0 / 0.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Path name: `scorer`, `scorer.field`, `scorer.field.sub`.
    pub name: String,
    /// Boolean or number.
    pub kind: MetricKind,
    /// The value; always finite.
    pub value: f64,
}

impl Metric {
    /// Which way this metric gets better, from its name.
    pub fn direction(&self) -> Direction {
        Direction::of(&self.name)
    }
}

/// The name the latency of an example is given, as Weave's run summary names it.
pub const MODEL_LATENCY: &str = "model_latency";

/// The metrics of a scores map (scorer name → result), in the map's order.
pub fn score_metrics(scores: &Map<String, Value>) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut path = String::new();
    for (name, value) in scores {
        walk(&mut path, name, value, &mut out);
    }
    out
}

/// The metrics of one example: its scores, then its latency as `model_latency` when known.
pub fn example_metrics(example: &Example) -> Vec<Metric> {
    let mut out = score_metrics(&example.scores);
    if let Some(l) = example.latency.filter(|l| l.is_finite()) {
        out.push(Metric { name: MODEL_LATENCY.to_string(), kind: MetricKind::Number, value: l });
    }
    out
}

/// The metrics of a run's summary: every numeric or boolean leaf with its path (the run list's
/// columns, the leaderboard's metrics). The top-level `weave` key, bookkeeping weft derives
/// (status, counts, trace name), is left out.
pub fn summary_metrics(summary: &Value) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut path = String::new();
    if let Value::Object(m) = summary {
        for (name, value) in m.iter().filter(|(k, _)| k.as_str() != "weave") {
            walk(&mut path, name, value, &mut out);
        }
    }
    out
}

/// Depth bound of a walk: deeper leaves are not metrics (and a hostile object cannot recurse
/// without end). serde_json's parser already bounds depth at 128.
const MAX_DEPTH: usize = 16;

fn walk(path: &mut String, key: &str, value: &Value, out: &mut Vec<Metric>) {
    walk_at(path, key, value, out, 0)
}

fn walk_at(path: &mut String, key: &str, value: &Value, out: &mut Vec<Metric>, depth: usize) {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
    match value {
        Value::Bool(b) => out.push(Metric {
            name: path.clone(),
            kind: MetricKind::Boolean,
            value: if *b { 1.0 } else { 0.0 },
        }),
        Value::Number(n) => {
            if let Some(v) = n.as_f64().filter(|v| v.is_finite()) {
                out.push(Metric { name: path.clone(), kind: MetricKind::Number, value: v });
            }
        }
        Value::Object(m) if depth < MAX_DEPTH => {
            for (k, v) in m {
                walk_at(path, k, v, out, depth + 1);
            }
        }
        _ => {}
    }
    path.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(ms: &[Metric]) -> Vec<(&str, MetricKind, f64)> {
        ms.iter().map(|m| (m.name.as_str(), m.kind, m.value)).collect()
    }

    #[test]
    fn scores_flatten_to_paths() {
        let scores = json!({
            "exact": true,
            "f1": 0.5,
            "judge": {"correct": false, "score": 3, "reason": "text", "detail": {"depth": 2}},
            "none": null,
            "list": [1, 2],
        });
        let ms = score_metrics(scores.as_object().unwrap());
        use MetricKind::*;
        assert_eq!(
            names(&ms),
            vec![
                ("exact", Boolean, 1.0),
                ("f1", Number, 0.5),
                ("judge.correct", Boolean, 0.0),
                ("judge.score", Number, 3.0),
                ("judge.detail.depth", Number, 2.0),
            ]
        );
    }

    #[test]
    fn an_example_adds_its_latency() {
        let ex = Example {
            id: "p".into(),
            call_id: "c".into(),
            row_key: "r".into(),
            inputs: json!({}),
            output: json!(null),
            scores: json!({"ok": true}).as_object().unwrap().clone(),
            latency: Some(0.25),
            error: None,
            started_at: 0,
        };
        let ms = example_metrics(&ex);
        assert_eq!(
            names(&ms),
            vec![("ok", MetricKind::Boolean, 1.0), ("model_latency", MetricKind::Number, 0.25)]
        );
        assert_eq!(ms[1].direction(), Direction::LowerIsBetter);
    }

    #[test]
    fn a_summary_flattens_to_its_numeric_leaves() {
        let summary = json!({
            "correct": {"true_count": 3, "true_fraction": 0.75},
            "judge": {"score": {"mean": 4.5}, "ok": {"true_count": 1, "true_fraction": 0.25}},
            "model_latency": {"mean": 0.2},
            "output": {"mean": 7},
            "usage": {"gpt-4o": {"prompt_tokens": 120, "requests": 4}},
            "weave": {"status": "success", "latency_ms": 250},
        });
        let ms = summary_metrics(&summary);
        let got: Vec<(&str, f64, Direction)> =
            ms.iter().map(|m| (m.name.as_str(), m.value, m.direction())).collect();
        use Direction::*;
        assert_eq!(
            got,
            vec![
                ("correct.true_count", 3.0, HigherIsBetter),
                ("correct.true_fraction", 0.75, HigherIsBetter),
                ("judge.score.mean", 4.5, HigherIsBetter),
                ("judge.ok.true_count", 1.0, HigherIsBetter),
                ("judge.ok.true_fraction", 0.25, HigherIsBetter),
                ("model_latency.mean", 0.2, LowerIsBetter),
                ("output.mean", 7.0, HigherIsBetter),
                ("usage.gpt-4o.prompt_tokens", 120.0, LowerIsBetter),
                ("usage.gpt-4o.requests", 4.0, HigherIsBetter),
            ]
        );
        assert!(summary_metrics(&json!(null)).is_empty());
        assert!(summary_metrics(&json!(3)).is_empty());
    }

    #[test]
    fn directions_follow_the_words_of_a_name() {
        use Direction::*;
        for lower in [
            "latency",
            "model_latency.mean",
            "cost_usd",
            "usage.total_tokens",
            "mean_squared_error",
            "errors",
            "val-loss",
            "edit_distance",
            "judge.modelLatency",
            "TotalCost",
            "duration_s",
        ] {
            assert_eq!(Direction::of(lower), LowerIsBetter, "{lower}");
        }
        // `glossary` holds "loss" inside a word, not at a word's start.
        for higher in ["accuracy", "f1", "correct.true_fraction", "exact_match", "relevance", "glossary"] {
            assert_eq!(Direction::of(higher), HigherIsBetter, "{higher}");
        }
    }

    #[test]
    fn judging_respects_the_direction() {
        assert_eq!(Direction::HigherIsBetter.judge(0.5, 0.7), Some(true));
        assert_eq!(Direction::HigherIsBetter.judge(0.7, 0.5), Some(false));
        assert_eq!(Direction::LowerIsBetter.judge(0.7, 0.5), Some(true));
        assert_eq!(Direction::LowerIsBetter.judge(0.5, 0.5), None);
        assert_eq!(Direction::HigherIsBetter.judge(0.1 + 0.2, 0.3), None);
    }

    #[test]
    fn deep_objects_stop_at_the_depth_bound() {
        let mut v = json!(1);
        for _ in 0..40 {
            v = json!({ "a": v });
        }
        let ms = score_metrics(json!({ "s": v }).as_object().unwrap());
        assert!(ms.is_empty());
        let ms = score_metrics(json!({"s": {"a": {"b": 1}}}).as_object().unwrap());
        assert_eq!(ms[0].name, "s.a.b");
    }
}
