//! The HTTP client the workloads send their requests with, and what they read in answers.

use std::time::Duration;

use serde_json::Value;

#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) auth: String,
}

impl Http {
    pub(crate) fn new(base: String, auth: String) -> Http {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(900))
            .build()
            .expect("HTTP client");
        Http { client, base, auth }
    }

    async fn check(resp: reqwest::Response) -> Result<bytes::Bytes, String> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])))
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<bytes::Bytes, String> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::check(resp).await
    }

    pub(crate) async fn post(&self, path: &str, body: Vec<u8>) -> Result<bytes::Bytes, String> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Self::check(resp).await
    }
}

pub(crate) fn lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

pub(crate) fn first_id(b: &[u8]) -> String {
    let first = b.split(|&c| c == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<Value>(first)
        .ok()
        .and_then(|v| v.get("evaluation_run_id").and_then(Value::as_str).map(String::from))
        .unwrap_or_default()
}

pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
