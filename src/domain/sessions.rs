//! Web UI sessions: signing in with an API key opens a session, kept server-side. The browser
//! holds only a random token; the store keeps its hash, the hash of the key it was opened
//! with, a CSRF token for the session's forms, and when it expires. A session is valid while
//! it is unexpired, not signed out, and its key is not revoked: revoking a key ends its
//! sessions at their next request.

use super::call::{Micros, now};
use super::digest::sha256_hex;
use super::error::{Error, Result};
use super::keys::{ApiKey, hash_secret};
use super::store::{Store, write};

/// How long a session lasts after it is opened.
pub const SESSION_TTL: Micros = 7 * 24 * 3600 * 1_000_000;

/// A stored session (never its token).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Hex SHA-256 of the session token.
    pub hash: String,
    /// Hash of the API key it was opened with.
    pub key_hash: String,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
    /// When it was opened.
    pub created_at: Micros,
    /// When it stops being valid.
    pub expires_at: Micros,
    /// When it was signed out, if it was.
    pub ended_at: Option<Micros>,
}

/// A valid session and the key it acts with.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// Its (unrevoked) key.
    pub key: ApiKey,
}

/// 32 random bytes as hex.
fn token() -> Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| Error::Storage(format!("no randomness: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Hex SHA-256 of a session token.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Opens a session for the key whose secret is `secret`; returns the session's token (to be
/// sent once, in a cookie) and the signed-in session; `None` if no unrevoked key has the secret.
pub fn sign_in(store: &dyn Store, secret: &str) -> Result<Option<(String, SignedIn)>> {
    let Some(key) = store.key_by_hash(&hash_secret(secret.trim()))? else {
        return Ok(None);
    };
    let token = token()?;
    let at = now();
    let session = Session {
        hash: hash_token(&token),
        key_hash: key.hash.clone(),
        csrf: self::token()?,
        created_at: at,
        expires_at: at.saturating_add(SESSION_TTL),
        ended_at: None,
    };
    let stored = session.clone();
    write(store, move |w| w.put_session(&stored, at))?;
    Ok(Some((token, SignedIn { session, key })))
}

/// The valid session whose token is `token`, with its key; `None` if there is none (unknown,
/// expired, signed out, or its key revoked).
pub fn current(store: &dyn Store, token: &str) -> Result<Option<SignedIn>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(session) = store.session(&hash_token(token))? else {
        return Ok(None);
    };
    if session.ended_at.is_some() || session.expires_at <= now() {
        return Ok(None);
    }
    Ok(store.key_by_hash(&session.key_hash)?.map(|key| SignedIn { session, key }))
}

/// Ends the session whose token is `token` (nothing if there is none).
pub fn sign_out(store: &dyn Store, token: &str) -> Result<()> {
    let hash = hash_token(token);
    write(store, move |w| w.end_session(&hash, now()).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashed() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }
}
