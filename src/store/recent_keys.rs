//! API keys found unrevoked lately, by the hash of their secret, each served for a time to
//! live: what the two backends' key caches hold. Each cache locks it and adds its own rules
//! for revocations (`sqlite::key_cache`, `clickhouse::key_cache`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::domain::keys::ApiKey;

/// Most keys held; past it, expired entries are dropped, and all of them if none had expired.
const MAX_KEYS: usize = 10_000;

/// Keys by the hash of their secret, each with when it was found.
#[derive(Debug)]
pub struct RecentKeys {
    ttl: Duration,
    keys: HashMap<String, (ApiKey, Instant)>,
}

impl RecentKeys {
    /// Keys served for `ttl` after they are found.
    pub fn new(ttl: Duration) -> Self {
        RecentKeys { ttl, keys: HashMap::new() }
    }

    /// The key of `hash` if it was found less than the TTL ago; an older entry is dropped.
    pub fn get(&mut self, hash: &str) -> Option<ApiKey> {
        match self.keys.get(hash) {
            Some((key, at)) if at.elapsed() < self.ttl => Some(key.clone()),
            Some(_) => {
                self.keys.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Keeps a key just found, unless it is revoked, within [`MAX_KEYS`].
    pub fn put(&mut self, key: &ApiKey) {
        if key.revoked_at.is_some() {
            return;
        }
        if self.keys.len() >= MAX_KEYS {
            let ttl = self.ttl;
            self.keys.retain(|_, (_, at)| at.elapsed() < ttl);
            if self.keys.len() >= MAX_KEYS {
                self.keys.clear();
            }
        }
        self.keys.insert(key.hash.clone(), (key.clone(), Instant::now()));
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.keys.clear();
    }

    /// Drops the entries of the key `id`.
    pub fn forget_id(&mut self, id: &str) {
        self.keys.retain(|_, (k, _)| k.id != id);
    }
}

/// A key for the caches' tests: `id`, its hash `h-<id>`, revoked at `revoked_at`.
#[cfg(test)]
pub fn test_key(id: &str, revoked_at: Option<i64>) -> ApiKey {
    ApiKey {
        id: id.into(),
        hash: format!("h-{id}"),
        entities: vec![],
        admin: false,
        created_at: 1,
        revoked_at,
    }
}
