//! Handlers of the v1 trace API that the official SDK calls, one file per resource. Project
//! ids travel in the bodies; access is checked per request.

/// Implements [`crate::http::extract::InProject`] for request bodies whose project id is at the given field.
macro_rules! in_project {
    ($($body:ty => $($field:ident).+;)*) => {
        $(impl InProject for $body {
            fn project_id(&self) -> &str {
                &self.$($field).+
            }
        })*
    };
}

pub mod calls;
pub mod costs;
pub mod feedback;
pub mod files;
pub mod graphql;
pub mod objects;
pub mod refs;
pub mod tables;
pub mod threads;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The Weave trace API version whose wire format weft speaks.
pub const TRACE_API_VERSION: &str = "0.54.0";

fn json_response(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// `GET /server_info`.
pub(crate) async fn server_info() -> Response {
    json_response(json!({
        "min_required_weave_python_version": "0.52.0",
        "trace_server_version": TRACE_API_VERSION,
        "server": "weft",
        "server_version": env!("CARGO_PKG_VERSION"),
    }))
}
