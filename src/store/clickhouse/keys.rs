//! API keys and web UI sessions in ClickHouse: the lookups by hash, the list, and revoking a
//! key or ending a session in a batch.

use super::ClickHouseStore;
use super::client::{Client, Query};
use super::rows::{KEY_COLUMNS, KeyTuple, SESSION_COLUMNS, SessionTuple, key_from_tuple, session_from_tuple};
use super::writes::Tx;
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::keys::ApiKey;
use crate::domain::sessions::Session;

/// The key whose `column` is `value`: an unrevoked one if `live_only`.
fn key_where(client: &Client, column: &str, value: &str, live_only: bool) -> Result<Option<ApiKey>> {
    let mut q = Query::default();
    let v = q.string(value);
    let live = if live_only { " AND revoked_at IS NULL" } else { "" };
    q.push(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys FINAL WHERE {column} = {v}{live} LIMIT 1 FORMAT JSONCompactEachRow"
    ));
    Ok(client.query_all::<KeyTuple>(&q)?.pop().map(key_from_tuple))
}

/// The session of a token's hash, ended or not.
fn session_by_hash(client: &Client, hash: &str) -> Result<Option<Session>> {
    let mut q = Query::default();
    let h = q.string(hash);
    q.push(&format!(
        "SELECT {SESSION_COLUMNS} FROM ui_sessions FINAL WHERE hash = {h} LIMIT 1 FORMAT JSONCompactEachRow"
    ));
    Ok(client.query_all::<SessionTuple>(&q)?.pop().map(session_from_tuple))
}

impl ClickHouseStore {
    /// Finds an unrevoked key by the hash of its secret: from the cache of keys verified less
    /// than [`super::KEY_CACHE_TTL`] ago, or else from ClickHouse.
    pub(super) fn find_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        if let Some(key) = self.keys.get(hash) {
            return Ok(Some(key));
        }
        let found = key_where(&self.client, "hash", hash, true)?;
        if let Some(key) = &found {
            self.keys.put(key);
        }
        Ok(found)
    }

    /// Finds a session by the hash of its token.
    pub(super) fn find_session(&self, hash: &str) -> Result<Option<Session>> {
        session_by_hash(&self.client, hash)
    }

    /// All keys, revoked ones included, oldest first.
    pub(super) fn list_keys(&self) -> Result<Vec<ApiKey>> {
        let q = Query::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys FINAL ORDER BY created_at, id FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<KeyTuple>(&q)?.into_iter().map(key_from_tuple).collect())
    }
}

impl Tx<'_> {
    /// Revokes a key by id in the batch; `false` if no such unrevoked key exists.
    pub(super) fn revoke(&mut self, id: &str, at: Micros) -> Result<bool> {
        let client = self.client;
        match self.keys.get_or_read(id.to_string(), || key_where(client, "id", id, false))? {
            Some(k) if k.revoked_at.is_none() => {
                self.keys.put(id.to_string(), ApiKey { revoked_at: Some(at), ..k });
                self.revoked.push(id.to_string());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Ends a live session in the batch; `false` if there is none with that hash.
    pub(super) fn end(&mut self, hash: &str, at: Micros) -> Result<bool> {
        let client = self.client;
        match self.sessions.get_or_read(hash.to_string(), || session_by_hash(client, hash))? {
            Some(s) if s.ended_at.is_none() => {
                self.sessions.put(hash.to_string(), Session { ended_at: Some(at), ..s });
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
