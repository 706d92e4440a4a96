//! Writes of LLM token prices.

use crate::domain::call::{new_id, now};
use crate::domain::costs::{CostCreate, LlmPrice};
use crate::domain::error::Result;
use crate::domain::store::Writer;
use crate::domain::trace::parse_stored_time;

/// Stores the prices of `cost/create`; returns (price id, model id) pairs, as Weave does.
pub fn create(w: &mut dyn Writer, req: &CostCreate, user: Option<&str>) -> Result<Vec<(String, String)>> {
    let created_at = now();
    let mut ids = Vec::with_capacity(req.costs.len());
    for (llm_id, c) in &req.costs {
        let price = LlmPrice {
            project_id: req.project_id.clone(),
            id: new_id(),
            llm_id: llm_id.clone(),
            provider_id: c.provider_id.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "default".into()),
            effective_date: c
                .effective_date
                .as_deref()
                .map(|d| parse_stored_time(d, "effective_date"))
                .transpose()?
                .unwrap_or(created_at),
            prompt_token_cost: c.prompt_token_cost,
            completion_token_cost: c.completion_token_cost,
            cache_read_input_token_cost: c.cache_read_input_token_cost,
            cache_creation_input_token_cost: c.cache_creation_input_token_cost,
            prompt_token_cost_unit: c.prompt_token_cost_unit.clone().unwrap_or_else(|| "USD".into()),
            completion_token_cost_unit: c.completion_token_cost_unit.clone().unwrap_or_else(|| "USD".into()),
            created_by: user.map(String::from),
            created_at,
        };
        w.insert_cost(&price)?;
        ids.push((price.id, price.llm_id));
    }
    Ok(ids)
}

/// Deletes the prices of `project` with these ids.
pub fn purge(w: &mut dyn Writer, project: &str, ids: &[String]) -> Result<u64> {
    w.delete_costs(project, ids)
}
