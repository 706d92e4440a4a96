//! A per-process cache of verified API keys, so that a request does not wait for a lookup in
//! `api_keys` (a `FINAL` read of ClickHouse) each time.
//!
//! Only keys found unrevoked are cached, each for [`KEY_CACHE_TTL`]; an unknown key is looked
//! up every time. Revoking a key (`weft keys revoke`, from any process) writes a new version of
//! its row: a process that cached the key serves it until the entry expires, so a revoked key
//! is refused by every weft process within [`KEY_CACHE_TTL`] of the revocation. A process that
//! revokes a key itself drops its own entry at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::keys::ApiKey;

/// How long a verified key is served from the cache: the bound on how long a revoked key keeps
/// working on a process that looked it up before the revocation.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// Most keys held; past it, expired entries are dropped, and all of them if none had expired.
const MAX_KEYS: usize = 10_000;

/// Verified keys by the hash of their secret, each with when it was looked up.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (ApiKey, Instant)>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(KEY_CACHE_TTL)
    }
}

impl KeyCache {
    /// A cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        KeyCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ApiKey, Instant)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key of `hash` if it was verified less than the TTL ago.
    pub fn get(&self, hash: &str) -> Option<ApiKey> {
        let mut entries = self.entries();
        match entries.get(hash) {
            Some((key, at)) if at.elapsed() < self.ttl => Some(key.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Records a key just found unrevoked.
    pub fn put(&self, key: &ApiKey) {
        if key.revoked_at.is_some() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= MAX_KEYS {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
        }
        entries.insert(key.hash.clone(), (key.clone(), Instant::now()));
    }

    /// Drops the entry of the key `id` (revoked by this process).
    pub fn forget_id(&self, id: &str) {
        self.entries().retain(|_, (k, _)| k.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, revoked_at: Option<i64>) -> ApiKey {
        ApiKey {
            id: id.into(),
            hash: format!("h-{id}"),
            entities: vec![],
            admin: false,
            created_at: 1,
            revoked_at,
        }
    }

    #[test]
    fn a_verified_key_is_served_until_its_entry_expires() {
        let c = KeyCache::new(Duration::from_millis(50));
        c.put(&key("a", None));
        assert_eq!(c.get("h-a").map(|k| k.id), Some("a".to_string()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("h-a").is_none(), "an expired entry is looked up again");
    }

    #[test]
    fn revoked_keys_are_never_cached_and_a_local_revocation_drops_the_entry() {
        let c = KeyCache::default();
        c.put(&key("r", Some(5)));
        assert!(c.get("h-r").is_none());
        c.put(&key("a", None));
        c.forget_id("a");
        assert!(c.get("h-a").is_none());
    }
}
