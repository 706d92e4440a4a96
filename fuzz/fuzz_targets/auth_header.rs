//! `Authorization` headers: Basic and Bearer credentials from arbitrary header bytes.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use weft::http::auth::secret_from_headers;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    if let Some(secret) = secret_from_headers(&headers) {
        assert!(!secret.is_empty(), "empty secret from {data:?}");
    }
});
