//! A bounded cache of tokens that passed verification, so that a client's repeated
//! requests pay for the RSA check once (Envoy's `jwt_authn` keeps the same kind of cache).
//!
//! Three rules keep a cached answer from outliving what it vouches for:
//!
//! - An entry is keyed by the SHA-256 of the whole compact token, so only the very same
//!   bytes hit it; a token differing in one character is verified from scratch.
//! - An entry is used only before the token's `exp` (the leeway is not applied to cached
//!   entries: after `exp` the token is verified again, and the full check decides).
//! - An entry remembers the key that verified it, and is used only while the key set in use
//!   still holds that very key under its kid. When a refresh drops the kid (`keys revoke`
//!   on the auth server) or replaces the set, every entry of the old key stops matching at
//!   once, and the token is verified again against the new set.
//!
//! The cache holds at most `capacity` entries. When it is full, expired entries go first;
//! if too few have expired, an arbitrary eighth of the entries makes room: the cost of an
//! eviction is one more verification, never a wrong answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use jsonwebtoken::DecodingKey;

use crate::Claims;

type TokenHash = [u8; 32];

pub(crate) struct VerifiedTokens {
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, Entry>>,
}

struct Entry {
    claims: Claims,
    kid: Arc<str>,
    key: Arc<DecodingKey>,
}

/// A cached verification: the claims, and the key that must still be in use for them to
/// count.
pub(crate) struct Hit<'a> {
    pub(crate) claims: Claims,
    pub(crate) kid: Arc<str>,
    key: Arc<DecodingKey>,
    hash: TokenHash,
    cache: &'a VerifiedTokens,
}

impl Hit<'_> {
    /// The claims, if `current` (the key the set now holds under the entry's kid) is the
    /// key that verified the token; otherwise the entry is dropped.
    pub(crate) fn confirm(self, current: Option<&Arc<DecodingKey>>) -> Option<Claims> {
        if current.is_some_and(|key| Arc::ptr_eq(key, &self.key)) {
            Some(self.claims)
        } else {
            self.cache.lock().remove(&self.hash);
            None
        }
    }
}

impl VerifiedTokens {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// How many verified tokens are held.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn hash(token: &str) -> TokenHash {
        let mut hash = [0; 32];
        hash.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        hash
    }

    /// The cached verification of the token with this hash, if it has not expired.
    pub(crate) fn get(&self, hash: TokenHash) -> Option<Hit<'_>> {
        let now = unix_now();
        let mut entries = self.lock();
        let entry = entries.get(&hash)?;
        if entry.claims.exp <= now {
            entries.remove(&hash);
            return None;
        }
        Some(Hit {
            claims: entry.claims.clone(),
            kid: entry.kid.clone(),
            key: entry.key.clone(),
            hash,
            cache: self,
        })
    }

    /// Remembers that `key` (the set's key for `kid`) verified the token with this hash.
    pub(crate) fn insert(
        &self,
        hash: TokenHash,
        claims: &Claims,
        kid: &str,
        key: &Arc<DecodingKey>,
    ) {
        let now = unix_now();
        if claims.exp <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            entries.retain(|_, entry| entry.claims.exp > now);
            if entries.len() >= self.capacity {
                // An eighth at a time, so that a full cache does not scan itself on every
                // insert.
                let victims: Vec<TokenHash> = entries
                    .keys()
                    .take((self.capacity / 8).max(1))
                    .copied()
                    .collect();
                for victim in victims {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(
            hash,
            Entry {
                claims: claims.clone(),
                kid: kid.into(),
                key: key.clone(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Entry>> {
        // Every update is a single insert or remove: a panic cannot leave a torn map.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        serde_json::from_value(serde_json::json!({
            "sub": "u", "client_id": "c", "scope": "posts:read", "jti": "j", "exp": exp, "iat": 0
        }))
        .unwrap()
    }

    fn key() -> Arc<DecodingKey> {
        Arc::new(DecodingKey::from_secret(
            b"not used to verify anything here",
        ))
    }

    #[test]
    fn a_hit_counts_only_while_the_same_key_is_in_use() {
        let cache = VerifiedTokens::new(8);
        let (hash, key) = (VerifiedTokens::hash("a.b.c"), key());
        cache.insert(hash, &claims(unix_now() + 60), "k1", &key);
        let hit = cache.get(hash).unwrap();
        assert_eq!(&*hit.kid, "k1");
        assert!(hit.confirm(Some(&key)).is_some());
        // A key set without the kid, or with other key material under it, drops the entry.
        assert!(cache.get(hash).unwrap().confirm(None).is_none());
        assert!(cache.get(hash).is_none());
        cache.insert(hash, &claims(unix_now() + 60), "k1", &key);
        assert!(
            cache
                .get(hash)
                .unwrap()
                .confirm(Some(&self::key()))
                .is_none()
        );
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn expired_tokens_are_neither_stored_nor_served() {
        let cache = VerifiedTokens::new(8);
        let key = key();
        let hash = VerifiedTokens::hash("expired");
        cache.insert(hash, &claims(unix_now() - 1), "k", &key);
        assert!(cache.get(hash).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = VerifiedTokens::new(3);
        let key = key();
        for i in 0..10 {
            let hash = VerifiedTokens::hash(&format!("token-{i}"));
            cache.insert(hash, &claims(unix_now() + 60), "k", &key);
            assert!(cache.len() <= 3);
        }
        // The newest entry is always kept.
        assert!(cache.get(VerifiedTokens::hash("token-9")).is_some());
    }

    #[test]
    fn only_the_same_bytes_hit() {
        assert_ne!(VerifiedTokens::hash("a.b.c"), VerifiedTokens::hash("a.b.d"));
    }
}
