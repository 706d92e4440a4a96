//! API keys and web UI sessions in the SQLite store: their rows, the lookups by hash on a
//! connection of their own, the list, and the writes.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, lock, storage};
use crate::domain::call::Micros;
use crate::domain::error::{Error, Result};
use crate::domain::keys::ApiKey;
use crate::domain::sessions::Session;

pub(super) fn key_from_row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let entities: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        hash: r.get(1)?,
        entities: serde_json::from_str(&entities).unwrap_or_default(),
        admin: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

pub(super) const KEY_COLUMNS: &str = "id, hash, entities, admin, created_at, revoked_at";

impl SqliteStore {
    /// Runs `f` on the keys' own connection, opened on first use: key and session lookups
    /// never wait behind the pool's reads.
    fn on_keys_connection<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = lock(&self.keys_reader);
        if conn.is_none() {
            *conn = Some(self.open_reader()?);
        }
        let Some(conn) = conn.as_ref() else {
            return Err(Error::Storage("the keys connection is not open".into()));
        };
        f(conn).map_err(storage)
    }

    /// Finds an unrevoked key by the hash of its secret: from the keys found lately
    /// (`key_cache`), else on the keys connection.
    pub(super) fn find_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let generation = match self.key_cache.get(hash) {
            Ok(key) => return Ok(Some(key)),
            Err(generation) => generation,
        };
        let key = self.on_keys_connection(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL"
            ))?
            .query_row([hash], key_from_row)
            .optional()
        })?;
        if let Some(key) = &key {
            self.key_cache.put(generation, key);
        }
        Ok(key)
    }

    /// Finds a session by the hash of its token.
    pub(super) fn find_session(&self, hash: &str) -> Result<Option<Session>> {
        self.on_keys_connection(|conn| {
            conn.prepare_cached(
                "SELECT hash, key_hash, csrf, created_at, expires_at, ended_at FROM ui_sessions \
                 WHERE hash = ?1",
            )?
            .query_row([hash], |r| {
                Ok(Session {
                    hash: r.get(0)?,
                    key_hash: r.get(1)?,
                    csrf: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    ended_at: r.get(5)?,
                })
            })
            .optional()
        })
    }

    /// All keys, revoked ones included, oldest first.
    pub(super) fn list_keys(&self) -> Result<Vec<ApiKey>> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"))
            .map_err(storage)?;
        let rows = stmt.query_map([], key_from_row).map_err(storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
    }
}

/// Stores a new API key.
pub(super) fn insert_key(conn: &Connection, k: &ApiKey) -> Result<()> {
    let entities = serde_json::to_string(&k.entities).map_err(|e| Error::Storage(e.to_string()))?;
    conn.execute(
        &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![k.id, k.hash, entities, k.admin, k.created_at, k.revoked_at],
    )
    .map(drop)
    .map_err(storage)
}

/// Revokes a key by id; `false` if no such unrevoked key exists.
pub(super) fn revoke_key(conn: &Connection, id: &str, at: Micros) -> Result<bool> {
    conn.execute("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, at])
        .map(|n| n > 0)
        .map_err(storage)
}

/// Stores a new session, dropping those that expired before `now`.
pub(super) fn insert_session(conn: &Connection, s: &Session, now: Micros) -> Result<()> {
    conn.execute("DELETE FROM ui_sessions WHERE expires_at < ?1", [now]).map_err(storage)?;
    conn.execute(
        "INSERT INTO ui_sessions (hash, key_hash, csrf, created_at, expires_at, ended_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![s.hash, s.key_hash, s.csrf, s.created_at, s.expires_at, s.ended_at],
    )
    .map(drop)
    .map_err(storage)
}

/// Ends a live session; `false` if there is none with that hash.
pub(super) fn end_session(conn: &Connection, hash: &str, at: Micros) -> Result<bool> {
    conn.execute(
        "UPDATE ui_sessions SET ended_at = ?2 WHERE hash = ?1 AND ended_at IS NULL",
        params![hash, at],
    )
    .map(|n| n > 0)
    .map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::super::key_cache::KEY_RECHECK;
    use super::*;
    use crate::domain::keys::hash_secret;
    use crate::domain::store::{self, Store};

    fn new_key(store: &SqliteStore) -> (ApiKey, String) {
        let (key, secret) = ApiKey::generate(vec!["acme".into()], false, 1).unwrap();
        let k = key.clone();
        store::write(store, move |w| w.put_key(&k)).unwrap();
        (key, secret)
    }

    #[test]
    fn a_key_revoked_by_this_process_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (key, secret) = new_key(&store);
        let hash = hash_secret(&secret);
        for _ in 0..2 {
            assert_eq!(store.key_by_hash(&hash).unwrap().map(|k| k.id), Some(key.id.clone()));
        }
        assert!(store::revoke_key(&store, &key.id, 2).unwrap());
        assert!(store.key_by_hash(&hash).unwrap().is_none());
        // Another key is found and kept as before.
        let (other, secret) = new_key(&store);
        for _ in 0..2 {
            assert_eq!(
                store.key_by_hash(&hash_secret(&secret)).unwrap().map(|k| k.id),
                Some(other.id.clone())
            );
        }
    }

    #[test]
    fn a_key_revoked_by_another_process_is_refused_within_the_recheck_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (key, secret) = new_key(&store);
        let hash = hash_secret(&secret);
        assert!(store.key_by_hash(&hash).unwrap().is_some());
        // A store of its own on the same file, as `weft keys revoke` opens.
        let other = SqliteStore::open(dir.path()).unwrap();
        assert!(store::revoke_key(&other, &key.id, 2).unwrap());
        drop(other);
        let revoked = std::time::Instant::now();
        loop {
            let asked = std::time::Instant::now();
            if store.key_by_hash(&hash).unwrap().is_none() {
                break;
            }
            assert!(asked - revoked < KEY_RECHECK, "the revoked key still works");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
