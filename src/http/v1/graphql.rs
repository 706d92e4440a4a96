//! The few W&B GraphQL operations `weave.init` sends.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::body::OutputOnly;
use crate::domain::error::Result;
use crate::domain::trace::from_body;
use crate::http::AppState;
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;

#[derive(Deserialize)]
pub(crate) struct GraphqlBody {
    query: String,
    /// An object, or `null` or absent for none.
    #[serde(default)]
    variables: Option<serde_json::Map<String, Value>>,
    /// Output only: the operation to run (weft tells its few operations apart by the query).
    #[serde(rename = "operationName")]
    #[allow(dead_code)]
    operation_name: Option<OutputOnly>,
    /// Output only: protocol extensions a GraphQL client may send.
    #[allow(dead_code)]
    extensions: Option<OutputOnly>,
}

/// `POST /graphql`: the few W&B API operations the SDK sends during `weave.init`.
pub(crate) async fn graphql(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: GraphqlBody = from_body(body)?;
    let variables = req.variables.unwrap_or_default();
    let var = |name: &str| variables.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let data = if req.query.contains("viewer") {
        // Every key has a default entity, so `weave.init("project")` works without one: an
        // admin key's is the server's `--default-entity`, a scoped key's its first entity.
        let entity = match who.key.entities.first() {
            Some(first) if !who.key.admin => first.clone(),
            _ => state.default_entity.to_string(),
        };
        json!({ "viewer": {
            "id": who.user_id(),
            "username": who.user_id(),
            "entity": entity,
            "defaultEntity": { "name": entity },
            "teams": { "edges": [] },
        }})
    } else if req.query.contains("upsertModel") {
        who.check_entity(&var("entity"))?;
        json!({ "upsertModel": { "model": { "name": var("name"), "description": variables.get("description") } } })
    } else if req.query.contains("project(") {
        who.check_entity(&var("entityName"))?;
        json!({ "project": { "name": var("name") } })
    } else {
        return Ok(json_response(json!({
            "data": null,
            "errors": [{ "message": "weft answers only the viewer, project and upsertModel operations" }],
        })));
    };
    Ok(json_response(json!({ "data": data })))
}
