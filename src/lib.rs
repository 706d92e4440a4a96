//! weft: a self-hostable server for the HTTP API of W&B Weave's trace server.

pub mod domain;
pub mod http;
pub mod store;
