//! The examples of an evaluation run: one row per example the run predicted and scored,
//! however the run was logged (the SDKs' `Evaluation.evaluate`, `EvaluationLogger`, or the v2
//! prediction and score routes). The web UI's run and compare views and their exports read
//! runs through this view; `GET /predictions?evaluation_run_id=` agrees with it.

use serde_json::{Map, Value};

use super::call::Micros;

/// One example of a run: the model's prediction on it and every score it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The prediction's id, as `GET /predictions` lists it.
    pub id: String,
    /// The call whose subtree holds the prediction and its scores (the run's
    /// `predict_and_score` child): the root of the example's call tree.
    pub call_id: String,
    /// What aligns the same example across runs: the dataset row's digest when the example
    /// is a ref to a table row, else the digest of the example's JSON.
    pub row_key: String,
    /// The example as logged (a row ref stays a ref; readers resolve the ones they show).
    pub inputs: Value,
    /// The model's output.
    pub output: Value,
    /// Each scorer's result by scorer name: a number, a boolean or an object of them.
    pub scores: Map<String, Value>,
    /// The model's latency in seconds, when known.
    pub latency: Option<f64>,
    /// The exception, when the prediction or a scorer failed.
    pub error: Option<String>,
    /// When the example started.
    pub started_at: Micros,
}
