//! The API tests: one test binary, so the harness in `helpers` is compiled once and every
//! helper in it is used by some test. Each module holds the tests of one area.
//!
//! The slow tests and those that must run alone are binaries of their own: `tests/crash.rs`,
//! `tests/soak.rs`, `tests/starvation.rs` and `tests/disk_full.rs`.

mod helpers;

mod auth;
mod backup;
mod denial_of_service;
mod eval_runs;
mod graph_walks;
mod hostile_http;
mod hostile_lists;
mod isolation;
mod limits;
mod odd_values;
mod openapi;
mod predictions_scores;
mod store_cli;
mod streaming;
mod trace_api;
mod wire_details;
