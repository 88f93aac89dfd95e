//! Signing keys: their lifecycle (next, active, retired, revoked), where they are kept
//! (the keys directory or the auth database), and the public key set published as the
//! JWKS.
//!
//! A key is published as `next` for `AUTH_KEY_PUBLISH_LEAD` before it signs, so every
//! verifier has it cached before the first token it signed arrives. Which key signs is a
//! function of the stored metadata and the clock ([`lifecycle`]), so replicas agree
//! without talking to each other; each re-reads the store every few seconds.

mod database;
mod encryption;
mod files;
mod jwks;
pub mod lifecycle;
mod material;
pub mod rotation;
mod storage;
mod store;

use std::sync::Arc;

pub use database::KeyDatabase;
pub use encryption::EncryptionKey;
pub use files::KeyFiles;
pub use jwks::{Jwk, JwkSet, thumbprint};
pub use lifecycle::{KeyMeta, KeyState};
pub use material::{PrivateKey, SigningKey};
pub use storage::{Change, KeySet, KeyStorage, WriteError};
pub use store::{KeyPolicy, KeyStore};

use crate::config::{KeyStoreKind, Settings};

/// The store the settings name: the keys directory, or the auth database behind
/// `reader`/`writer` (migrated already) once the encryption key is checked against it.
pub async fn open_storage(
    settings: &Settings,
    reader: &sea_orm::DatabaseConnection,
    writer: &sea_orm::DatabaseConnection,
) -> anyhow::Result<Arc<dyn KeyStorage>> {
    Ok(match settings.keys_store {
        KeyStoreKind::Files => Arc::new(KeyFiles::new(&settings.keys_dir)),
        KeyStoreKind::Database => {
            let key = encryption_key(settings)?;
            Arc::new(KeyDatabase::open(reader.clone(), writer.clone(), key).await?)
        }
    })
}

/// `AUTH_KEYS_ENCRYPTION_KEY`, required by the database store.
pub fn encryption_key(settings: &Settings) -> anyhow::Result<EncryptionKey> {
    let text = settings.keys_encryption_key.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "AUTH_KEYS_ENCRYPTION_KEY is required to keep signing keys in the database; \
             generate one with `openssl rand -base64 32` and give every replica the same"
        )
    })?;
    EncryptionKey::parse(text.expose()).map_err(anyhow::Error::msg)
}

/// The key policy the settings describe.
pub fn policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        bits: settings.key_bits,
        publish_lead: settings.key_publish_lead(),
        // A retired key stays published while any token it signed may be checked: access
        // tokens, and ID tokens (which relying parties verify, and logout accepts expired).
        max_token_lifetime: settings.access_token_ttl.max(settings.id_token_ttl),
        rotate_every: settings.key_rotation_days,
    }
}
