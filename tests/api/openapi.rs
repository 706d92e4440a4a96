//! `/openapi.json` describes exactly the routes the server answers.

use crate::helpers::*;

use serde_json::Value;

#[tokio::test]
async fn openapi_keeps_the_seed_names() {
    let server = Server::start();
    let doc = json_ok(server.client.get(format!("{}/openapi.json", server.base))).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let list = &doc["paths"]["/v2/{entity}/{project}/evaluation_runs"]["get"];
    assert_eq!(list["operationId"], "evaluation_run_list_v2__entity___project__evaluation_runs_get");
    assert!(list["responses"]["200"]["content"]["application/jsonl"].is_object());
    for name in ["EvaluationRunReadRes", "HTTPValidationError", "ValidationError"] {
        assert!(doc["components"]["schemas"][name].is_object(), "schema {name}");
    }
    let fields: Vec<&str> = doc["components"]["schemas"]["EvaluationRunReadRes"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for f in RUN_FIELDS {
        assert!(fields.contains(&f), "field {f}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = Server::start();
    let doc = json_ok(server.client.get(format!("{}/openapi.json", server.base))).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (template, ops) in paths {
        let path = template
            .replace("{entity}", "acme")
            .replace("{project}", "proj")
            .replace("{evaluation_run_id}", "x")
            .replace("{prediction_id}", "x")
            .replace("{score_id}", "x")
            .replace("{object_id}", "x")
            .replace("{digest}", "x");
        assert!(!path.contains('{'), "unknown parameter in {template}");
        for method in ops.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = status_json(
                server
                    .client
                    .request(m, format!("{}{path}", server.base))
                    .basic_auth("api", Some(&server.key))
                    .body("{}"),
            )
            .await;
            assert_ne!(status, 405, "{method} {template} is not routed");
            let unrouted = status == 404 && body.get("detail") == Some(&Value::from("Not Found"));
            assert!(!unrouted, "{method} {template} is not routed");
            assert!(status < 500, "{method} {template} answered {status}");
            operations += 1;
        }
    }
    assert_eq!(operations, 78, "documented operations");
}
