use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use chrono::Utc;

use super::{
    Jwk, JwkSet, KeyFiles, KeyMeta,
    lifecycle::{is_published, pick_active},
};

/// Resource servers accept tokens this much past `exp` (posts-server defaults to 30 s);
/// a retired key stays published at least this long after its last token expires.
const PUBLICATION_MARGIN: Duration = Duration::from_secs(60);

/// A parsed private key, ready to sign, with its public half.
pub struct SigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// The public key as published.
    pub jwk: Jwk,
    /// Verifies tokens this key signed.
    pub decoding: jsonwebtoken::DecodingKey,
    pair: RsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(super) fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| anyhow::anyhow!("not an RSA PKCS#8 private key: {e}"))?;
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let jwk = Jwk::rsa(&n, &e);
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e)?;
        Ok(Self {
            kid: jwk.kid.clone(),
            jwk,
            decoding,
            pair,
        })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256) over `message`. The key pair is parsed once
    /// at load time, which is most of what a signature costs besides the RSA operation.
    pub fn sign_rs256(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(signature)
    }
}

/// The loaded keys of a running server: the active signer and every published key.
struct Loaded {
    active: Arc<SigningKey>,
    published: HashMap<String, Arc<SigningKey>>,
    jwks: JwkSet,
}

/// The keys in memory, re-read from disk by [`KeyStore::reload`].
pub struct KeyStore {
    files: KeyFiles,
    max_token_lifetime: Duration,
    loaded: RwLock<Arc<Loaded>>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads the keys, generating the first one if the directory has no usable active key.
    pub async fn open(files: KeyFiles, max_token_lifetime: Duration) -> anyhow::Result<Self> {
        let loaded = {
            let files = files.clone();
            tokio::task::spawn_blocking(move || {
                let metas = files.list()?;
                if pick_active(&metas).is_none() {
                    files.generate()?;
                }
                load_all(&files, max_token_lifetime, &HashMap::new())
            })
            .await??
        };
        Ok(Self {
            files,
            max_token_lifetime,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Re-reads the directory: picks up keys rotated by the CLI or another replica and
    /// drops retired keys whose tokens have all expired. Keeps the current keys on error.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let previous = self.snapshot().published.clone();
        let files = self.files.clone();
        let ttl = self.max_token_lifetime;
        let loaded =
            tokio::task::spawn_blocking(move || load_all(&files, ttl, &previous)).await??;
        let mut guard = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if guard.active.kid != loaded.active.kid {
            tracing::info!(kid = %loaded.active.kid, "now signing with a new key");
        }
        *guard = Arc::new(loaded);
        Ok(())
    }

    /// Rotates when the active key is older than `every` (automatic rotation), then
    /// reloads. Returns the new kid if it rotated.
    pub async fn rotate_if_due(&self, every: Option<Duration>) -> anyhow::Result<Option<String>> {
        let files = self.files.clone();
        let rotated = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<KeyMeta>> {
            let metas = files.list()?;
            let Some(active) = pick_active(&metas) else {
                return Ok(None);
            };
            if !super::lifecycle::rotation_due(active.created_at, Utc::now(), every) {
                return Ok(None);
            }
            Ok(Some(files.rotate()?))
        })
        .await??;
        if rotated.is_some() {
            self.reload().await?;
        }
        Ok(rotated.map(|m| m.kid))
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Arc<SigningKey> {
        self.snapshot().active.clone()
    }

    /// A published key by kid, for verifying tokens this server issued.
    pub fn published(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.snapshot().published.get(kid).cloned()
    }

    /// The RFC 7517 key set: every key that may still verify a live token, active first.
    pub fn jwks(&self) -> JwkSet {
        self.snapshot().jwks.clone()
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn load_all(
    files: &KeyFiles,
    max_token_lifetime: Duration,
    cache: &HashMap<String, Arc<SigningKey>>,
) -> anyhow::Result<Loaded> {
    let metas = files.list()?;
    let now = Utc::now();
    let active_meta = pick_active(&metas)
        .ok_or_else(|| anyhow::anyhow!("no active signing key in the keys directory"))?;
    let mut published = HashMap::new();
    let mut ordered = Vec::new();
    // Newest first, so the active key leads the JWKS.
    for meta in metas.iter().rev() {
        if !is_published(meta, now, max_token_lifetime, PUBLICATION_MARGIN) {
            continue;
        }
        let key = match cache.get(&meta.kid) {
            Some(key) => key.clone(),
            None => match files.load(meta) {
                Ok(key) => Arc::new(key),
                Err(e) if meta.kid == active_meta.kid => return Err(e),
                Err(e) => {
                    tracing::warn!(kid = %meta.kid, error = %e, "skipping unloadable key");
                    continue;
                }
            },
        };
        ordered.push(key.clone());
        published.insert(meta.kid.clone(), key);
    }
    let active = published
        .get(&active_meta.kid)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the active key is not loadable"))?;
    ordered.sort_by_key(|k| k.kid != active.kid);
    let jwks = JwkSet {
        keys: ordered.iter().map(|k| k.jwk.clone()).collect(),
    };
    Ok(Loaded {
        active,
        published,
        jwks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_retires_the_previous_key_and_keeps_it_published() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), 2048);
        let first = files.generate().unwrap();
        let second = files.rotate().unwrap();
        let loaded = load_all(&files, Duration::from_secs(900), &HashMap::new()).unwrap();
        assert_eq!(loaded.active.kid, second.kid);
        assert_eq!(loaded.jwks.keys[0].kid, second.kid);
        assert!(loaded.published.contains_key(&first.kid));
        let metas = files.list().unwrap();
        assert!(
            metas
                .iter()
                .find(|m| m.kid == first.kid)
                .unwrap()
                .retired_at
                .is_some()
        );
    }
}
