//! The few W&B GraphQL operations `weave.init` sends.

use axum::Extension;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_response;
use crate::domain::error::Result;
use crate::domain::trace::from_body;
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;

#[derive(Deserialize)]
pub(crate) struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Value,
}

/// `POST /graphql`: the few W&B API operations the SDK sends during `weave.init`.
pub(crate) async fn graphql(
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: GraphqlBody = from_body(body)?;
    let var = |name: &str| req.variables.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let data = if req.query.contains("viewer") {
        let entity = if who.key.admin { None } else { who.key.entities.first().cloned() };
        json!({ "viewer": {
            "id": who.user_id(),
            "username": who.user_id(),
            "entity": entity,
            "defaultEntity": entity.as_ref().map(|e| json!({ "name": e })),
            "teams": { "edges": [] },
        }})
    } else if req.query.contains("upsertModel") {
        who.check_entity(&var("entity"))?;
        json!({ "upsertModel": { "model": { "name": var("name"), "description": req.variables.get("description") } } })
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
