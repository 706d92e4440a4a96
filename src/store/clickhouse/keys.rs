//! API keys and web UI sessions in ClickHouse: the lookups by hash, the list, and revoking a
//! key or ending a session in a batch.

use super::ClickHouseStore;
use super::client::Query;
use super::rows::{KEY_COLUMNS, KeyTuple, SESSION_COLUMNS, SessionTuple, key_from_tuple, session_from_tuple};
use super::writes::Tx;
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::keys::ApiKey;
use crate::domain::sessions::Session;

impl ClickHouseStore {
    /// Finds an unrevoked key by the hash of its secret.
    pub(super) fn find_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let mut q = Query::default();
        let h = q.string(hash);
        q.push(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys FINAL WHERE hash = {h} AND revoked_at IS NULL LIMIT 1 \
             FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<KeyTuple>(&q)?.pop().map(key_from_tuple))
    }

    /// Finds a session by the hash of its token.
    pub(super) fn find_session(&self, hash: &str) -> Result<Option<Session>> {
        let mut q = Query::default();
        let h = q.string(hash);
        q.push(&format!(
            "SELECT {SESSION_COLUMNS} FROM ui_sessions FINAL WHERE hash = {h} LIMIT 1 FORMAT JSONCompactEachRow"
        ));
        Ok(self.client.query_all::<SessionTuple>(&q)?.pop().map(session_from_tuple))
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
        let key = id.to_string();
        let found = match self.keys.get(&key) {
            Some(known) => known.cloned(),
            None => {
                let mut q = Query::default();
                let i = q.string(id);
                q.push(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys FINAL WHERE id = {i} LIMIT 1 FORMAT JSONCompactEachRow"
                ));
                let found = self.client.query_all::<KeyTuple>(&q)?.pop().map(key_from_tuple);
                self.keys.remember(key.clone(), found.clone());
                found
            }
        };
        match found {
            Some(k) if k.revoked_at.is_none() => {
                self.keys.put(key, ApiKey { revoked_at: Some(at), ..k });
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Tx<'_> {
    /// Ends a live session in the batch; `false` if there is none with that hash.
    pub(super) fn end(&mut self, hash: &str, at: Micros) -> Result<bool> {
        let key = hash.to_string();
        let found = match self.sessions.get(&key) {
            Some(known) => known.cloned(),
            None => {
                let mut q = Query::default();
                let h = q.string(hash);
                q.push(&format!(
                    "SELECT {SESSION_COLUMNS} FROM ui_sessions FINAL WHERE hash = {h} LIMIT 1 \
                     FORMAT JSONCompactEachRow"
                ));
                let found = self.client.query_all::<SessionTuple>(&q)?.pop().map(session_from_tuple);
                self.sessions.remember(key.clone(), found.clone());
                found
            }
        };
        match found {
            Some(s) if s.ended_at.is_none() => {
                self.sessions.put(key, Session { ended_at: Some(at), ..s });
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
