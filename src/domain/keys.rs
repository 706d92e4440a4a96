//! API keys: random secrets, stored only as hashes, each scoped to entities or admin.

use subtle::ConstantTimeEq;

use super::call::Micros;

/// Length of a key's secret (what W&B clients expect of an API key).
pub const SECRET_LEN: usize = 40;

/// A stored API key (never the secret itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Public id, used to list and revoke.
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// Entities the key may act on (ignored for admin keys).
    pub entities: Vec<String>,
    /// May act on every entity.
    pub admin: bool,
    /// Creation time.
    pub created_at: Micros,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Micros>,
}

impl ApiKey {
    /// Creates a key and returns it with its secret, which is shown once and never stored.
    pub fn generate(entities: Vec<String>, admin: bool, now: Micros) -> std::io::Result<(ApiKey, String)> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut raw = [0u8; SECRET_LEN];
        getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
        // 36 letters: 256 % 36 = 4, so reject the top 4 values to keep the draw uniform.
        let mut secret = String::with_capacity(SECRET_LEN);
        let mut buf = raw.to_vec();
        while secret.len() < SECRET_LEN {
            for b in buf.iter().copied() {
                if b < 252 && secret.len() < SECRET_LEN {
                    secret.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
                }
            }
            getrandom::fill(&mut buf).map_err(std::io::Error::other)?;
        }
        let id = hash_secret(&secret)[..12].to_string();
        let key =
            ApiKey { id, hash: hash_secret(&secret), entities, admin, created_at: now, revoked_at: None };
        Ok((key, secret))
    }

    /// Whether this key may act on `entity`.
    pub fn allows(&self, entity: &str) -> bool {
        self.revoked_at.is_none() && (self.admin || self.entities.iter().any(|e| e == entity))
    }

    /// Whether `secret` is this key's secret, compared in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        self.has_hash(&hash_secret(secret))
    }

    /// Whether `hash` (from [`hash_secret`]) is this key's, compared in constant time.
    pub fn has_hash(&self, hash: &str) -> bool {
        hash.as_bytes().ct_eq(self.hash.as_bytes()).into()
    }
}

/// Hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    super::digest::sha256_hex(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_match_only_their_secret() {
        let (k, s) = ApiKey::generate(vec!["acme".into()], false, 0).unwrap();
        assert_eq!(s.len(), SECRET_LEN);
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert!(k.matches(&s));
        assert!(!k.matches("x"));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "the SHA-256 test vector, in lowercase hex"
        );
        assert!(k.allows("acme") && !k.allows("other"));
        let (k2, s2) = ApiKey::generate(vec![], true, 0).unwrap();
        assert_ne!(s, s2);
        assert!(k2.allows("anything"));
    }
}
