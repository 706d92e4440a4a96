//! The API tests: one test binary, so the harness in `helpers` is compiled once and every
//! helper in it is used by some test. Each module holds the tests of one area.
//!
//! Binaries of their own, as they must not share their process or their time with other tests:
//! `tests/crash.rs` and `tests/soak.rs` (long loads), `tests/starvation.rs` (a latency
//! measurement) and `tests/disk_full.rs` (runs a copy of the binary it has just written).

mod helpers;

mod auth;
mod backup;
mod calls_surface;
mod cluster;
mod complete_stream;
mod denial_of_service;
mod eval_runs;
mod feedback_costs;
mod graph_walks;
mod hostile_http;
mod hostile_lists;
mod isolation;
mod keyset;
mod limits;
mod logged_predictions;
mod object_labels;
mod odd_values;
mod openapi;
mod predictions_scores;
mod store_cli;
mod streaming;
mod tables;
mod trace_api;
mod ts_sdk;
mod ui_calls;
mod ui_runs;
mod ui_session;
mod ui_views;
mod v2_fields;
mod v2_objects;
mod wire_details;
