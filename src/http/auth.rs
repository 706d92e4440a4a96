//! Authentication (HTTP Basic with the API key as password, or Bearer) and entity scoping.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use std::net::IpAddr;

use super::AppState;
use super::error::ApiError;
use super::extract::MAX_BODY;
use crate::domain::error::Error;
use crate::domain::keys::{ApiKey, hash_secret};

/// The key a request was authenticated with; handlers record its id as the writing user.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key (its hash and scope, never its secret).
    pub key: ApiKey,
}

impl Principal {
    /// The key's public id, recorded as `wb_user_id` on what it writes.
    pub fn user_id(&self) -> &str {
        &self.key.id
    }

    /// Checks that the key may act on `entity` (403 otherwise).
    pub fn check_entity(&self, entity: &str) -> Result<(), ApiError> {
        if self.key.allows(entity) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("This API key has no access to entity {entity}")))
        }
    }

    /// Checks a `"{entity}/{project}"` project id from a request body (400 if malformed).
    pub fn check_project(&self, project_id: &str) -> Result<(), ApiError> {
        match project_id.split_once('/') {
            Some((entity, project))
                if !entity.is_empty() && !project.is_empty() && !project.contains('/') =>
            {
                self.check_entity(entity)
            }
            _ => Err(Error::BadRequest(format!(
                "Invalid project_id {project_id:?}: expected \"entity/project\""
            ))
            .into()),
        }
    }
}

/// Failed authentications per client address, to slow down key guessing.
#[derive(Default)]
pub struct FailureLog {
    recent: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
}

/// Failed attempts one address may make per [`FAILURE_WINDOW`] before it gets 429s.
pub const MAX_FAILURES: u32 = 20;
/// The window over which failures are counted.
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses remembered at most (older ones are forgotten first when full).
const MAX_TRACKED: usize = 10_000;

impl FailureLog {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>) -> T,
    ) -> T {
        f(&mut self.recent.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records a failure of `ip`; `true` if it is past [`MAX_FAILURES`] in the window.
    pub fn failed(&self, ip: std::net::IpAddr) -> bool {
        self.with(|m| {
            if m.len() >= MAX_TRACKED {
                m.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
                if m.len() >= MAX_TRACKED {
                    m.clear();
                }
            }
            let entry = m.entry(ip).or_insert((0, std::time::Instant::now()));
            if entry.1.elapsed() >= FAILURE_WINDOW {
                *entry = (0, std::time::Instant::now());
            }
            entry.0 = entry.0.saturating_add(1);
            entry.0 > MAX_FAILURES
        })
    }
}

/// The API key in an `Authorization` header: Basic's password, or a Bearer token.
pub fn secret_from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        (!password.is_empty()).then(|| password.to_string())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        (!rest.is_empty()).then(|| rest.to_string())
    } else {
        None
    }
}

/// The address a request came from: the peer's, or, when the peer is one of the trusted
/// proxies, the nearest address in `X-Forwarded-For` that is not itself a trusted proxy (the
/// entries to its right were added by proxies weft trusts; those to its left, by anyone).
pub fn client_address(req: &Request, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.extensions().get::<super::Peer>().map(|p| p.0.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => break,
        }
    }
    Some(peer)
}

/// Middleware: rejects requests without a valid, unrevoked key (401); otherwise passes the
/// [`Principal`] on. Entity access is checked where the entity is known (path or body).
///
/// Failed attempts are counted per client address: past [`MAX_FAILURES`] in a minute, that
/// address's failures get 429 instead of 401. A valid key is always served, so one client
/// that keeps failing (or many behind one proxy) cannot lock out the others.
pub async fn require_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(secret) = secret_from_headers(req.headers()) else {
        return refused(req, &state, ApiError::Unauthenticated("Not authenticated")).await;
    };
    // The lookup is by the secret's hash (which reveals nothing about the secret); the match
    // is then confirmed with a constant-time comparison.
    let hash = hash_secret(&secret);
    let key = if state.store.keys_read_at_once() {
        // A point lookup on a connection of its own: microseconds, so it runs inline rather
        // than paying for a hop to the blocking pool on every request.
        state.store.key_by_hash(&hash)?
    } else {
        let (store, hash) = (state.store.clone(), hash.clone());
        let lookup = move || store.key_by_hash(&hash);
        tokio::task::spawn_blocking(lookup)
            .await
            .map_err(|e| Error::Storage(format!("blocking task failed: {e}")))??
    };
    let Some(key) = key.filter(|k| k.has_hash(&hash)) else {
        let client = client_address(&req, &state.trusted_proxies);
        if client.is_some_and(|ip| state.auth_failures.failed(ip)) {
            let err = Error::TooMany("Too many failed authentication attempts; retry later".into());
            return refused(req, &state, err.into()).await;
        }
        return refused(req, &state, ApiError::Unauthenticated("Invalid API key")).await;
    };
    req.extensions_mut().insert(Principal { key });
    Ok(next.run(req).await)
}

/// Refuses `req` with `err`, once what is left of its body is read (see [`drain`]).
async fn refused(req: Request, state: &AppState, err: ApiError) -> Result<Response, ApiError> {
    drain(req.into_body(), state.deadlines.body).await;
    Err(err)
}

/// Reads and drops a refused request's body, at most [`MAX_BODY`] bytes within `limit`.
///
/// hyper closes a connection whose request body was left unread; a client still writing that
/// body (a file upload) then meets a reset connection, not the answer: Node's `fetch` reports
/// `EPIPE` and the TypeScript SDK retries, never seeing the 401. Read to its end, the body no
/// longer stands between the client and the answer, and the connection stays open.
async fn drain(body: axum::body::Body, limit: std::time::Duration) {
    use futures_util::StreamExt;
    let mut chunks = body.into_data_stream();
    let mut left = MAX_BODY;
    let read = async {
        while let Some(Ok(chunk)) = chunks.next().await {
            left = left.saturating_sub(chunk.len());
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(limit, read).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn keys_come_from_basic_passwords_and_bearer_tokens() {
        let basic = base64::engine::general_purpose::STANDARD.encode("api:sekret");
        assert_eq!(secret_from_headers(&headers(&format!("Basic {basic}"))).as_deref(), Some("sekret"));
        assert_eq!(secret_from_headers(&headers("Bearer tok")).as_deref(), Some("tok"));
        assert_eq!(secret_from_headers(&headers("Basic !!!")), None);
        assert_eq!(secret_from_headers(&headers("Digest x")), None);
        assert_eq!(secret_from_headers(&HeaderMap::new()), None);
    }
}
