//! Which views a call belongs to: the columns a store materialises so that evaluation runs,
//! predictions and scores can be listed without reading every call.

use super::call::Call;

/// What a call is, for the views over calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An evaluation run (the root `Evaluation.evaluate` call).
    EvaluationRun,
    /// A prediction: a flagged `<Model>.predict` call (written by `POST /predictions`), or a
    /// `predict_and_score` child of a run logged through the trace API (see [`ViewColumns::of`]).
    Prediction,
    /// A score (`<Scorer>.score` beside a prediction).
    Score,
    /// Any other call.
    Other,
}

impl Kind {
    /// The stored tag of this kind, `None` for [`Kind::Other`].
    pub fn tag(self) -> Option<&'static str> {
        match self {
            Kind::EvaluationRun => Some("run"),
            Kind::Prediction => Some("prediction"),
            Kind::Score => Some("score"),
            Kind::Other => None,
        }
    }
}

/// The view columns of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewColumns {
    /// What the call is.
    pub kind: Kind,
    /// Evaluation ref of a run (or of the run a child belongs to, when known).
    pub evaluation: Option<String>,
    /// Model ref of a run or prediction.
    pub model: Option<String>,
    /// The evaluation run a prediction or score belongs to; for a run, its source run.
    pub run_id: Option<String>,
    /// A run logged through the trace API (the SDK's `Evaluation.evaluate`), not through the
    /// evaluation-run endpoints: its output (the scorers' aggregates) leads its summary.
    pub logged_run: bool,
}

/// Op name of an evaluation run's root call.
pub const EVALUATE_OP: &str = "Evaluation.evaluate";

/// Op names of the call holding one example's prediction and scores: the Python SDK's and
/// the TypeScript SDK's.
pub const PREDICT_AND_SCORE_OPS: [&str; 2] = ["Evaluation.predict_and_score", "Evaluation.predictAndScore"];

/// The attribute (`weave.holds_prediction = "true"`) marking a `predict_and_score` call that
/// `POST /predictions` wrote around a flagged prediction: that prediction is listed, not it.
pub const HOLDS_PREDICTION: &str = "holds_prediction";

/// Marks `call` [`HOLDS_PREDICTION`] (when its attributes are an object, as every writer's are).
pub fn mark_holds_prediction(call: &mut Call) {
    if let Some(attrs) = call.attributes.as_object_mut() {
        let weave = attrs.entry("weave").or_insert_with(|| serde_json::json!({}));
        if let Some(weave) = weave.as_object_mut() {
            weave.insert(HOLDS_PREDICTION.into(), serde_json::json!("true"));
        }
    }
}

/// Whether `call` is flagged a prediction: its `weave.prediction` attribute is `"true"` (as
/// `POST /predictions` writes it) or JSON `true` (as Weave reads the flag either way).
pub fn is_flagged_prediction(call: &Call) -> bool {
    match call.attributes.get("weave").and_then(|w| w.get("prediction")) {
        Some(serde_json::Value::String(s)) => s == "true",
        Some(serde_json::Value::Bool(b)) => *b,
        _ => false,
    }
}

/// Whether `call` is a `predict_and_score` call (of either SDK).
pub fn is_predict_and_score(call: &Call) -> bool {
    PREDICT_AND_SCORE_OPS.contains(&call.op_short_name())
}

/// The model's output in a logged `predict_and_score` call's output: `output` as the Python
/// SDK names it, or `model_output` as the TypeScript SDK does.
pub fn logged_output(output: &serde_json::Value) -> Option<&serde_json::Value> {
    output.get("output").or_else(|| output.get("model_output"))
}

/// Whether `call` is a prediction logged through the trace API: a `predict_and_score` child of
/// a call that `POST /predictions` did not write. Its id is the prediction's id, its parent
/// the run, `inputs.example` the example and [`logged_output`] the model's output.
pub fn is_logged_prediction(call: &Call) -> bool {
    call.parent_id.is_some()
        && !is_flagged_prediction(call)
        && call.weave_attr(HOLDS_PREDICTION) != Some("true")
        && is_predict_and_score(call)
}

impl ViewColumns {
    /// Derives the view columns of `call`. A run is a call flagged
    /// `weave.evaluation_run = "true"`, or any root call of `Evaluation.evaluate`. A prediction
    /// is a call flagged `weave.prediction` ([`is_flagged_prediction`]), or a `predict_and_score` call under a
    /// parent (the run: the SDKs call it from the run's root call) not marked
    /// [`HOLDS_PREDICTION`]; its run is its parent and its model `inputs.model`.
    pub fn of(call: &Call) -> Self {
        let flag = |k: &str| call.weave_attr(k) == Some("true");
        let input = |k: &str| call.inputs.get(k).and_then(|v| v.as_str());
        let logged_run =
            !flag("evaluation_run") && call.parent_id.is_none() && call.op_short_name() == EVALUATE_OP;
        let kind = if flag("evaluation_run") || logged_run {
            Kind::EvaluationRun
        } else if is_flagged_prediction(call) || is_logged_prediction(call) {
            Kind::Prediction
        } else if flag("score") {
            Kind::Score
        } else {
            Kind::Other
        };
        let owned = |s: Option<&str>| s.map(String::from);
        match kind {
            Kind::EvaluationRun => ViewColumns {
                kind,
                evaluation: owned(
                    call.weave_attr("evaluation").or_else(|| input("self")).or_else(|| input("this")),
                ),
                model: owned(call.weave_attr("model").or_else(|| input("model"))),
                run_id: owned(call.weave_attr("source_evaluation_run_id")),
                logged_run,
            },
            Kind::Prediction if !is_flagged_prediction(call) => ViewColumns {
                kind,
                evaluation: None,
                model: owned(input("model")),
                run_id: call.parent_id.clone(),
                logged_run: false,
            },
            Kind::Prediction | Kind::Score => ViewColumns {
                kind,
                evaluation: None,
                model: owned(call.weave_attr("model")),
                run_id: owned(call.weave_attr("evaluation_run_id")),
                logged_run: false,
            },
            Kind::Other => {
                ViewColumns { kind, evaluation: None, model: None, run_id: None, logged_run: false }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_are_flagged_calls_or_root_evaluate_calls() {
        let mut c = Call::new("e/p", "weave:///e/p/op/Evaluation.evaluate:abc", 0);
        c.inputs = json!({"self": "weave:///e/p/object/Ev:1", "model": "weave:///e/p/object/M:2"});
        let v = ViewColumns::of(&c);
        assert_eq!(v.kind, Kind::EvaluationRun);
        assert_eq!(v.evaluation.as_deref(), Some("weave:///e/p/object/Ev:1"));
        assert_eq!(v.model.as_deref(), Some("weave:///e/p/object/M:2"));

        let parent = Call::new("e/p", "x", 0);
        let child = c.clone().under(&parent);
        assert_eq!(ViewColumns::of(&child).kind, Kind::Other);

        let mut flagged = Call::new("e/p", "anything", 0);
        flagged.attributes = json!({"weave": {"evaluation_run": "true", "evaluation": "E", "model": "M"}});
        let v = ViewColumns::of(&flagged);
        assert_eq!(
            (v.kind, v.evaluation.as_deref(), v.model.as_deref()),
            (Kind::EvaluationRun, Some("E"), Some("M"))
        );
    }

    #[test]
    fn predict_and_score_children_are_predictions_of_their_parent() {
        let run = Call::new("e/p", "weave:///e/p/op/Evaluation.evaluate:abc", 0);
        for op in ["weave:///e/p/op/Evaluation.predict_and_score:d", "Evaluation.predictAndScore"] {
            let mut c = Call::new("e/p", op, 1).under(&run);
            c.inputs = json!({"self": "E", "model": "weave:///e/p/object/M:2", "example": {"q": 1}});
            let v = ViewColumns::of(&c);
            assert_eq!(v.kind, Kind::Prediction, "{op}");
            assert_eq!(v.run_id.as_deref(), Some(run.id.as_str()));
            assert_eq!(v.model.as_deref(), Some("weave:///e/p/object/M:2"));
            // The parent `POST /predictions` writes holds a flagged prediction: not itself one.
            c.attributes = json!({"weave": {"holds_prediction": "true"}});
            assert_eq!(ViewColumns::of(&c).kind, Kind::Other);
        }
        // A prediction is flagged with the text "true" or JSON true.
        let mut flagged = Call::new("e/p", "M.predict", 0);
        flagged.attributes = json!({"weave": {"prediction": true, "evaluation_run_id": "r", "model": "M"}});
        let v = ViewColumns::of(&flagged);
        assert_eq!(
            (v.kind, v.run_id.as_deref(), v.model.as_deref()),
            (Kind::Prediction, Some("r"), Some("M"))
        );
        flagged.attributes = json!({"weave": {"prediction": false}});
        assert_eq!(ViewColumns::of(&flagged).kind, Kind::Other);
        // A root predict_and_score call belongs to no run.
        let root = Call::new("e/p", "Evaluation.predict_and_score", 0);
        assert_eq!(ViewColumns::of(&root).kind, Kind::Other);
    }
}
