//! A signing key kept in the database (`AUTH_KEYS_STORE=database`).

use sea_orm::entity::prelude::*;

/// A row of `signing_keys`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// RFC 7638 thumbprint of the public key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// The n-th key written; unique, the precondition of concurrent inserts.
    #[sea_orm(unique)]
    pub seq: i64,
    /// When the key was written, which is when it counts as published.
    pub created_at: DateTimeUtc,
    /// When it starts (or started) signing; `NULL` for a next key not yet scheduled.
    pub active_from: Option<DateTimeUtc>,
    /// An explicit retirement (keys moved from an old keys directory only).
    pub retired_at: Option<DateTimeUtc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// PKCS#8 DER under AES-256-GCM: nonce ‖ ciphertext ‖ tag, the kid as associated data.
    pub encrypted_key: Vec<u8>,
}

// Hand-written so that no log line ever carries key material, even encrypted.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("signing_keys::Model")
            .field("kid", &self.kid)
            .field("seq", &self.seq)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// No relations are navigated from signing keys.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
