//! weft: a self-hostable server for the HTTP API of W&B Weave's trace server.
//!
//! - [`domain`]: what weft means (calls, refs, runs, validation) and the storage interface;
//! - [`store`]: the backends implementing that interface (SQLite, ClickHouse);
//! - [`http`]: routing, authentication, limits, error mapping and streaming over the domain.
//!
//! The arrows point one way: `http` → `domain` ← `store`. ARCHITECTURE.md is the code map.

pub mod domain;
pub mod http;
pub mod store;
