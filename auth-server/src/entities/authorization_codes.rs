//! An authorization code, stored only as a hash, usable once.

use sea_orm::entity::prelude::*;

/// A row of `authorization_codes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_codes")]
pub struct Model {
    /// Hex SHA-256 of the code.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request, as sent.
    pub redirect_uri: String,
    /// The user who authorized.
    pub user_id: String,
    /// The granted scope.
    pub scope: String,
    /// The OpenID Connect `nonce`, exactly as sent.
    pub nonce: Option<String>,
    /// The PKCE challenge, as oxide-auth encodes it.
    pub code_challenge: String,
    /// When the user entered their password.
    pub auth_time: DateTimeUtc,
    /// The browser session.
    pub sid: Option<String>,
    /// Issue time.
    pub created_at: DateTimeUtc,
    /// Expiry.
    pub expires_at: DateTimeUtc,
    /// Set by the exchange that won.
    pub used_at: Option<DateTimeUtc>,
    /// The login that exchange started.
    pub family_id: Option<String>,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
