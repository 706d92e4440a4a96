//! LLM token prices per project (`cost/create`, `cost/query`, `cost/purge`) and pricing a
//! call's `summary.usage` with them into `summary.weave.costs` (`include_costs`), as Weave
//! does: for each model in the usage, the project's price effective at the call's start (the
//! latest whose `effective_date` is not after it; failing that, the latest of all, as Weave
//! ranks them). weft ships no default price table: a model without a
//! project price is not priced (see docs/differences.md).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::call::{Micros, format_time};
use super::call_query::SortBy;
use super::row_query::Columns;

/// A stored price of one model's tokens in one project.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmPrice {
    pub project_id: String,
    pub id: String,
    pub llm_id: String,
    pub provider_id: String,
    pub effective_date: Micros,
    pub prompt_token_cost: f64,
    pub completion_token_cost: f64,
    pub cache_read_input_token_cost: f64,
    pub cache_creation_input_token_cost: f64,
    pub prompt_token_cost_unit: String,
    pub completion_token_cost_unit: String,
    pub created_by: Option<String>,
    pub created_at: Micros,
}

/// `CostCreateInput`: the price of one model.
#[derive(Debug, Clone, Deserialize)]
pub struct CostInput {
    pub prompt_token_cost: f64,
    pub completion_token_cost: f64,
    #[serde(default)]
    pub cache_read_input_token_cost: f64,
    #[serde(default)]
    pub cache_creation_input_token_cost: f64,
    pub prompt_token_cost_unit: Option<String>,
    pub completion_token_cost_unit: Option<String>,
    /// When the price starts to apply; now if absent.
    pub effective_date: Option<String>,
    /// `default` if absent.
    pub provider_id: Option<String>,
}

/// `CostCreateReq`: prices by model id.
#[derive(Debug, Clone, Deserialize)]
pub struct CostCreate {
    pub project_id: String,
    pub costs: std::collections::BTreeMap<String, CostInput>,
    /// Output only: the creator is the key's user.
    pub wb_user_id: Option<super::body::OutputOnly>,
}

/// `CostQueryReq`.
#[derive(Debug, Clone, Deserialize)]
pub struct CostQuery {
    pub project_id: String,
    pub fields: Option<Vec<String>>,
    pub query: Option<Value>,
    pub sort_by: Option<Vec<SortBy>>,
    #[serde(default, deserialize_with = "super::body::opt_int")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "super::body::opt_int")]
    pub offset: Option<i64>,
}

/// `CostPurgeReq`.
#[derive(Debug, Clone, Deserialize)]
pub struct CostPurge {
    pub project_id: String,
    pub query: Value,
}

/// What Weave answers a purge whose query does not name prices by id.
pub const PURGE_REFUSED: &str = "Can only purge costs by specifying one or more cost ids";

/// The columns of a price row, for `query`, `fields` and `sort_by`.
pub const COLUMNS: Columns = Columns {
    all: &[
        "id",
        "pricing_level",
        "pricing_level_id",
        "provider_id",
        "llm_id",
        "effective_date",
        "prompt_token_cost",
        "completion_token_cost",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
        "prompt_token_cost_unit",
        "completion_token_cost_unit",
        "created_by",
        "created_at",
    ],
    json: &[],
};

/// The fields `cost/query` answers (`CostQueryOutput`); those not asked for are `null`.
pub const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "llm_id",
    "prompt_token_cost",
    "completion_token_cost",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "prompt_token_cost_unit",
    "completion_token_cost_unit",
    "effective_date",
    "provider_id",
];

impl LlmPrice {
    /// Every column, as a query expression and `sort_by` see the row.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "pricing_level": "project",
            "pricing_level_id": self.project_id,
            "provider_id": self.provider_id,
            "llm_id": self.llm_id,
            "effective_date": format_time(self.effective_date),
            "prompt_token_cost": self.prompt_token_cost,
            "completion_token_cost": self.completion_token_cost,
            "cache_read_input_token_cost": self.cache_read_input_token_cost,
            "cache_creation_input_token_cost": self.cache_creation_input_token_cost,
            "prompt_token_cost_unit": self.prompt_token_cost_unit,
            "completion_token_cost_unit": self.completion_token_cost_unit,
            "created_by": self.created_by,
            "created_at": format_time(self.created_at),
        })
    }
}

/// A row as `cost/query` answers it: the [`OUTPUT_FIELDS`], those not in `fields` (when
/// given) `null`.
pub fn output_row(row: &Value, fields: Option<&[String]>) -> Value {
    let mut out = Map::new();
    for f in OUTPUT_FIELDS {
        let asked = fields.is_none_or(|fs| fs.iter().any(|x| x == f));
        out.insert(
            (*f).to_string(),
            if asked { row.get(*f).cloned().unwrap_or(Value::Null) } else { Value::Null },
        );
    }
    Value::Object(out)
}

/// A project's prices by model, to price calls with.
#[derive(Debug, Clone, Default)]
pub struct Prices(HashMap<String, Vec<LlmPrice>>);

impl Prices {
    /// Keeps `p` among the prices.
    pub fn add(&mut self, p: LlmPrice) {
        self.0.entry(p.llm_id.clone()).or_default().push(p);
    }

    /// The price of `llm` for a call started at `at`: the latest effective at `at`; if none
    /// is, the latest of all (Weave ranks prices so); the newest written among equal dates.
    fn price(&self, llm: &str, at: Micros) -> Option<&LlmPrice> {
        let prices = self.0.get(llm)?;
        let before =
            prices.iter().filter(|p| p.effective_date <= at).max_by_key(|p| (p.effective_date, p.created_at));
        before.or_else(|| prices.iter().max_by_key(|p| (p.effective_date, p.created_at)))
    }

    /// `summary.weave.costs` of a call started at `at` whose `summary.usage` is `usage`: one
    /// entry per model of the usage that has a price; `None` if none has.
    pub fn costs(&self, usage: &Value, at: Micros) -> Option<Value> {
        let Value::Object(models) = usage else { return None };
        let mut out = Map::new();
        for (llm, u) in models {
            let Some(p) = self.price(llm, at) else { continue };
            let int = |k: &str| u.get(k).and_then(|v| v.as_f64()).map_or(0, |x| x as i64);
            let prompt = int("prompt_tokens") + int("input_tokens");
            let completion = int("completion_tokens") + int("output_tokens");
            let (cache_read, cache_creation) =
                (int("cache_read_input_tokens"), int("cache_creation_input_tokens"));
            out.insert(
                llm.clone(),
                json!({
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "requests": int("requests"),
                    "total_tokens": int("total_tokens"),
                    "cache_read_input_tokens": cache_read,
                    "cache_creation_input_tokens": cache_creation,
                    "prompt_token_cost": p.prompt_token_cost,
                    "completion_token_cost": p.completion_token_cost,
                    "cache_read_input_token_cost": p.cache_read_input_token_cost,
                    "cache_creation_input_token_cost": p.cache_creation_input_token_cost,
                    "prompt_tokens_total_cost":
                        (prompt - cache_read - cache_creation) as f64 * p.prompt_token_cost,
                    "completion_tokens_total_cost": completion as f64 * p.completion_token_cost,
                    "cache_read_input_tokens_total_cost": cache_read as f64 * p.cache_read_input_token_cost,
                    "cache_creation_input_tokens_total_cost":
                        cache_creation as f64 * p.cache_creation_input_token_cost,
                    "prompt_token_cost_unit": p.prompt_token_cost_unit,
                    "completion_token_cost_unit": p.completion_token_cost_unit,
                    "effective_date": format_time(p.effective_date),
                    "provider_id": p.provider_id,
                    "pricing_level": "project",
                    "pricing_level_id": p.project_id,
                    "created_by": p.created_by.clone().unwrap_or_default(),
                    "created_at": format_time(p.created_at),
                }),
            );
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(id: &str, llm: &str, at: Micros, prompt: f64) -> LlmPrice {
        LlmPrice {
            project_id: "e/p".into(),
            id: id.into(),
            llm_id: llm.into(),
            provider_id: "default".into(),
            effective_date: at,
            prompt_token_cost: prompt,
            completion_token_cost: 2.0 * prompt,
            cache_read_input_token_cost: 0.0,
            cache_creation_input_token_cost: 0.0,
            prompt_token_cost_unit: "USD".into(),
            completion_token_cost_unit: "USD".into(),
            created_by: None,
            created_at: 0,
        }
    }

    #[test]
    fn the_price_effective_at_the_start_prices_each_model() {
        let mut prices = Prices::default();
        prices.add(price("old", "m", 10, 1.0));
        prices.add(price("new", "m", 20, 3.0));
        let usage = json!({"m": {"prompt_tokens": 2, "input_tokens": 1, "completion_tokens": 5, "requests": 1},
                           "unpriced": {"prompt_tokens": 7}});
        let at_15 = prices.costs(&usage, 15).unwrap();
        assert_eq!(at_15["m"]["prompt_tokens"], 3);
        assert_eq!(at_15["m"]["prompt_tokens_total_cost"], 3.0);
        assert_eq!(at_15["m"]["completion_tokens_total_cost"], 10.0);
        assert!(at_15.get("unpriced").is_none());
        assert_eq!(prices.costs(&usage, 25).unwrap()["m"]["prompt_token_cost"], 3.0);
        // Before any price is effective, the latest one applies (as Weave ranks them).
        assert_eq!(prices.costs(&usage, 5).unwrap()["m"]["prompt_token_cost"], 3.0);
        assert!(prices.costs(&json!({"unpriced": {}}), 15).is_none());
    }
}
