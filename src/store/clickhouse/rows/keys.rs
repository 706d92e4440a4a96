//! API keys and web UI sessions.

use serde_json::json;

use super::{opt_time, time};
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::keys::ApiKey;
use crate::domain::sessions::Session;

/// The columns of an API key as [`KeyTuple`] reads them.
pub const KEY_COLUMNS: &str = "id, hash, entities, admin, toUnixTimestamp64Micro(created_at), \
    toUnixTimestamp64Micro(revoked_at)";

/// A row of [`KEY_COLUMNS`].
pub type KeyTuple = (String, String, Vec<String>, bool, Micros, Option<Micros>);

/// Decodes a row of [`KEY_COLUMNS`].
pub fn key_from_tuple(t: KeyTuple) -> ApiKey {
    ApiKey { id: t.0, hash: t.1, entities: t.2, admin: t.3, created_at: t.4, revoked_at: t.5 }
}

/// The columns of a session as [`SessionTuple`] reads them.
pub const SESSION_COLUMNS: &str = "hash, key_hash, csrf, toUnixTimestamp64Micro(created_at), \
    toUnixTimestamp64Micro(expires_at), toUnixTimestamp64Micro(ended_at)";

/// A row of [`SESSION_COLUMNS`].
pub type SessionTuple = (String, String, String, Micros, Micros, Option<Micros>);

/// Decodes a row of [`SESSION_COLUMNS`].
pub fn session_from_tuple(t: SessionTuple) -> Session {
    Session { hash: t.0, key_hash: t.1, csrf: t.2, created_at: t.3, expires_at: t.4, ended_at: t.5 }
}

/// Encodes a session.
pub fn session_line(s: &Session, version: u64) -> Result<String> {
    Ok(json!({
        "hash": s.hash,
        "key_hash": s.key_hash,
        "csrf": s.csrf,
        "created_at": time(s.created_at)?,
        "expires_at": time(s.expires_at)?,
        "ended_at": opt_time(s.ended_at)?,
        "version": version,
    })
    .to_string())
}

/// Encodes an API key.
pub fn key_line(k: &ApiKey, version: u64) -> Result<String> {
    Ok(json!({
        "id": k.id,
        "hash": k.hash,
        "entities": k.entities,
        "admin": k.admin,
        "created_at": time(k.created_at)?,
        "revoked_at": opt_time(k.revoked_at)?,
        "version": version,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::store::clickhouse::client::parse_row;

    #[test]
    fn keys_round_trip() {
        let k = ApiKey {
            id: "k1".into(),
            hash: "h".into(),
            entities: vec!["acme".into()],
            admin: false,
            created_at: 1,
            revoked_at: None,
        };
        let line: Value = serde_json::from_str(&key_line(&k, 1).expect("line")).expect("json");
        assert_eq!(line["entities"], json!(["acme"]));
        let t: KeyTuple = parse_row(r#"["k1","h",["acme"],false,1,null]"#).expect("row");
        assert_eq!(key_from_tuple(t), k);
    }
}
