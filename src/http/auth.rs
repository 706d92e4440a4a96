//! Authentication (HTTP Basic with the API key as password, or Bearer) and entity scoping.

use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;

use super::AppState;
use super::error::ApiError;
use crate::domain::error::Error;
use crate::domain::keys::hash_secret;

/// The key a request was authenticated with; handlers record its id as the writing user.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Public id of the API key.
    pub key_id: String,
}

/// The API key in an `Authorization` header: Basic's password, or a Bearer token.
pub fn secret_from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        (!password.is_empty()).then(|| password.to_string())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        (!rest.is_empty()).then(|| rest.to_string())
    } else {
        None
    }
}

/// The entity named by a `/v2/{entity}/...` path, percent-decoded.
fn entity_of(path: &str) -> Option<String> {
    let raw = path.strip_prefix("/v2/")?.split('/').next()?;
    let decoded: String =
        form_urlencoded::parse(format!("e={}", raw.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
    Some(decoded)
}

/// Middleware: rejects requests without a valid key (401) or whose key may not act on the
/// path's entity (403); otherwise passes the [`Principal`] on to the handler.
pub async fn require_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(secret) = secret_from_headers(req.headers()) else {
        return Err(ApiError::Unauthenticated("Not authenticated"));
    };
    let store = state.store.clone();
    let key = tokio::task::spawn_blocking(move || store.key_by_hash(&hash_secret(&secret)))
        .await
        .map_err(|e| Error::Storage(format!("auth task failed: {e}")))??;
    let Some(key) = key else {
        return Err(ApiError::Unauthenticated("Invalid API key"));
    };
    // Inside the nested /v2 router the URI is stripped of its prefix: read the original.
    let path = match req.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.path().to_string(),
        None => req.uri().path().to_string(),
    };
    let entity = entity_of(&path).unwrap_or_default();
    if !key.allows(&entity) {
        return Err(ApiError::Forbidden(format!(
            "This API key has no access to entity {entity}"
        )));
    }
    req.extensions_mut().insert(Principal { key_id: key.id });
    Ok(next.run(req).await)
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
        assert_eq!(
            secret_from_headers(&headers(&format!("Basic {basic}"))).as_deref(),
            Some("sekret")
        );
        assert_eq!(
            secret_from_headers(&headers("Bearer tok")).as_deref(),
            Some("tok")
        );
        assert_eq!(secret_from_headers(&headers("Basic !!!")), None);
        assert_eq!(secret_from_headers(&headers("Digest x")), None);
        assert_eq!(secret_from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn entity_is_the_first_v2_segment() {
        assert_eq!(
            entity_of("/v2/acme/proj/evaluation_runs").as_deref(),
            Some("acme")
        );
        assert_eq!(entity_of("/v2/a%20b/p").as_deref(), Some("a b"));
        assert_eq!(entity_of("/health"), None);
    }
}
