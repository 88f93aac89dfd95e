//! Signing keys: files on disk (private keys mode 0600), their lifecycle (active, retired)
//! and the public key set published as the JWKS.
//!
//! Keys live in the keys directory rather than in the database so that a deployment can
//! mount them as a secret volume shared by every replica; each replica re-reads the
//! directory every few seconds, so a rotation made by the CLI reaches all of them without
//! a restart.

mod files;
mod jwks;
mod lifecycle;
mod store;

pub use files::KeyFiles;
pub use jwks::{Jwk, JwkSet, thumbprint};
pub use lifecycle::{KeyMeta, KeyState, is_published, rotation_due};
pub use store::{KeyStore, SigningKey};
