//! A registered OAuth client.

use sea_orm::entity::prelude::*;

/// A row of `clients`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    /// The client identifier.
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// Hex SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    /// Allowed grant types, space-separated.
    pub grant_types: String,
    /// Allowed scopes, space-separated.
    pub scopes: String,
    /// Registration time.
    pub created_at: DateTimeUtc,
    /// Registered redirect URIs, space-separated.
    pub redirect_uris: String,
    /// Registered post-logout redirect URIs, space-separated.
    pub post_logout_redirect_uris: String,
    /// Skips the consent page.
    pub trusted: bool,
    /// Shown on the consent page; the client id when unset.
    pub name: Option<String>,
}

/// No relations are navigated from clients.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
