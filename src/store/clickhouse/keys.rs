//! API keys in ClickHouse: the lookup by hash, the list, and revoking a key in a batch.

use super::ClickHouseStore;
use super::client::Query;
use super::rows::{KEY_COLUMNS, KeyTuple, key_from_tuple};
use super::writes::Tx;
use crate::domain::call::Micros;
use crate::domain::error::Result;
use crate::domain::keys::ApiKey;

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
