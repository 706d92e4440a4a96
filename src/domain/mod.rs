//! The domain: calls, refs, evaluation runs and their children, validation, and the storage
//! interface they need ([`store`]). No axum, no SQL, no backend: the wire format of Weave's API
//! (request bodies, FastAPI-shaped validation issues, the JSON of calls and runs) is the
//! domain's own, because every backend and every route must agree on it. See ARCHITECTURE.md.

pub mod body;
pub mod call;
pub mod call_query;
pub mod call_tree;
pub mod compare;
pub mod compare_view;
pub mod costs;
pub mod digest;
pub mod error;
pub mod eval_filters;
pub mod eval_results;
pub mod eval_run;
pub mod examples;
pub mod feedback;
pub mod keys;
pub mod leaderboard;
pub mod metrics;
pub mod object;
pub mod page;
pub mod prediction;
pub mod pyjson;
pub mod query;
pub mod reads;
pub mod refs;
pub mod resolve;
pub mod row_query;
pub mod run_rows;
pub mod run_table;
pub mod run_view;
pub mod score;
pub mod sessions;
pub mod stats;
pub mod store;
pub mod table;
pub mod threads;
pub mod trace;
pub mod v2_objects;
pub mod validate;
pub mod view;
pub mod writes;
