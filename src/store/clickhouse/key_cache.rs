//! A per-process cache of verified API keys, so that a request does not wait for a lookup in
//! `api_keys` (a `FINAL` read of ClickHouse) each time.
//!
//! Only keys found unrevoked are cached, each for [`KEY_CACHE_TTL`]; an unknown key is looked
//! up every time. Revoking a key (`weft keys revoke`, from any process) writes a new version of
//! its row: a process that cached the key serves it until the entry expires, so a revoked key
//! is refused by every weft process within [`KEY_CACHE_TTL`] of the revocation. A process that
//! revokes a key itself drops its own entry at once.

use std::sync::Mutex;
use std::time::Duration;

use crate::domain::keys::ApiKey;
use crate::store::recent_keys::RecentKeys;

/// How long a verified key is served from the cache: the bound on how long a revoked key keeps
/// working on a process that looked it up before the revocation.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// Verified keys by the hash of their secret, each with when it was looked up.
#[derive(Debug)]
pub struct KeyCache {
    entries: Mutex<RecentKeys>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(KEY_CACHE_TTL)
    }
}

impl KeyCache {
    /// A cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        KeyCache { entries: Mutex::new(RecentKeys::new(ttl)) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, RecentKeys> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key of `hash` if it was verified less than the TTL ago.
    pub fn get(&self, hash: &str) -> Option<ApiKey> {
        self.entries().get(hash)
    }

    /// Records a key just found unrevoked.
    pub fn put(&self, key: &ApiKey) {
        self.entries().put(key);
    }

    /// Drops the entry of the key `id` (revoked by this process).
    pub fn forget_id(&self, id: &str) {
        self.entries().forget_id(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::recent_keys::test_key as key;

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
