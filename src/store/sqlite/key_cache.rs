//! The API keys this process found unrevoked lately, so that a request's key is not looked up
//! in SQLite each time (a read transaction on the keys connection, whose pages every commit
//! of the writer makes it read again).
//!
//! Only keys found unrevoked are kept, each for [`KEY_RECHECK`]; an unknown or revoked key is
//! looked up every time, so a key just created works at once. A key this process revokes is
//! refused at once: the writer drops every entry when it writes the revocation and again once
//! the transaction has ended, and a lookup that began before then never adds what it found. A
//! revocation by another process (`weft keys revoke` on the same file) is not seen here: a
//! key is looked up again once its entry is [`KEY_RECHECK`] old, so such a revocation takes
//! effect within that bound.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::domain::keys::ApiKey;
use crate::store::recent_keys::RecentKeys;

/// How long a key found unrevoked is served without a lookup: the bound on how long a key
/// revoked by another process keeps working here.
pub const KEY_RECHECK: Duration = Duration::from_millis(250);

/// Verified keys by the hash of their secret, each with when it was looked up.
pub(super) struct KeyCache {
    entries: Mutex<Entries>,
}

struct Entries {
    /// Counts the times every entry was dropped for a revocation: a lookup begun before the
    /// last one may have read the key unrevoked, and adds nothing.
    generation: u64,
    /// Whether the writer's open transaction revokes a key: nothing is added until it ends.
    revoking: bool,
    keys: RecentKeys,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(KEY_RECHECK)
    }
}

impl KeyCache {
    /// A cache whose entries are served for `ttl`.
    pub(super) fn new(ttl: Duration) -> Self {
        KeyCache {
            entries: Mutex::new(Entries { generation: 0, revoking: false, keys: RecentKeys::new(ttl) }),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of `hash` if it was found unrevoked less than the TTL ago; else the generation
    /// to hand to [`KeyCache::put`] with what the lookup about to begin finds.
    pub(super) fn get(&self, hash: &str) -> Result<ApiKey, u64> {
        let mut entries = self.entries();
        entries.keys.get(hash).ok_or(entries.generation)
    }

    /// Keeps a key found unrevoked by a lookup begun at `generation`, unless a revocation was
    /// written since it began or is being written.
    pub(super) fn put(&self, generation: u64, key: &ApiKey) {
        let mut entries = self.entries();
        if !entries.revoking && entries.generation == generation {
            entries.keys.put(key);
        }
    }

    /// Drops every entry: the writer's transaction revokes a key. Nothing is kept again until
    /// [`KeyCache::settle`].
    pub(super) fn revoking(&self) {
        let mut entries = self.entries();
        entries.revoking = true;
        entries.generation += 1;
        entries.keys.clear();
    }

    /// The writer's transaction has ended, committed or not: if it revoked a key, drops every
    /// entry again (a lookup may have read the key before the commit) and keeps keys again.
    pub(super) fn settle(&self) {
        let mut entries = self.entries();
        if entries.revoking {
            entries.revoking = false;
            entries.generation += 1;
            entries.keys.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::recent_keys::test_key as key;

    #[test]
    fn a_found_key_is_served_until_its_entry_expires() {
        let c = KeyCache::new(Duration::from_millis(50));
        let generation = c.get("h-a").unwrap_err();
        c.put(generation, &key("a", None));
        assert_eq!(c.get("h-a").map(|k| k.id), Ok("a".to_string()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("h-a").is_err(), "an expired entry is looked up again");
    }

    #[test]
    fn revoked_keys_are_never_kept() {
        let c = KeyCache::default();
        let generation = c.get("h-r").unwrap_err();
        c.put(generation, &key("r", Some(5)));
        assert!(c.get("h-r").is_err());
    }

    #[test]
    fn nothing_read_before_a_revocation_ends_is_kept() {
        let c = KeyCache::default();
        let before = c.get("h-a").unwrap_err();
        c.put(before, &key("a", None));
        assert!(c.get("h-a").is_ok());
        // The writer revokes: every entry goes, and lookups made meanwhile add nothing.
        c.revoking();
        assert!(c.get("h-a").is_err());
        let during = c.get("h-a").unwrap_err();
        c.put(before, &key("a", None));
        c.put(during, &key("a", None));
        assert!(c.get("h-a").is_err());
        // Its transaction ends: a lookup begun during it still adds nothing, a later one does.
        c.settle();
        c.put(during, &key("a", None));
        assert!(c.get("h-a").is_err());
        let after = c.get("h-a").unwrap_err();
        c.put(after, &key("a", None));
        assert!(c.get("h-a").is_ok());
        // A transaction that revoked nothing drops nothing.
        c.settle();
        assert!(c.get("h-a").is_ok());
    }
}
