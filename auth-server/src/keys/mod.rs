//! Signing keys: their lifecycle (next, active, retired, revoked), where they are kept
//! (the keys directory), and the public key set published as the JWKS.
//!
//! A key is published as `next` for `AUTH_KEY_PUBLISH_LEAD` before it signs, so every
//! verifier has it cached before the first token it signed arrives. Which key signs is a
//! function of the stored metadata and the clock ([`lifecycle`]), so replicas agree
//! without talking to each other; each re-reads the store every few seconds.

mod files;
mod jwks;
pub mod lifecycle;
mod material;
pub mod rotation;
mod storage;
mod store;

use std::sync::Arc;

pub use files::KeyFiles;
pub use jwks::{Jwk, JwkSet, thumbprint};
pub use lifecycle::{KeyMeta, KeyState};
pub use material::{PrivateKey, SigningKey};
pub use storage::{Change, KeySet, KeyStorage, WriteError};
pub use store::{KeyPolicy, KeyStore};

use crate::config::Settings;

/// The store the settings name: the keys directory.
pub fn open_storage(settings: &Settings) -> Arc<dyn KeyStorage> {
    Arc::new(KeyFiles::new(&settings.keys_dir))
}

/// The key policy the settings describe.
pub fn policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        bits: settings.key_bits,
        publish_lead: settings.key_publish_lead(),
        max_token_lifetime: settings.access_token_ttl,
        rotate_every: settings.key_rotation_days,
    }
}
