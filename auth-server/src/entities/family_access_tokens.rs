//! The `jti` of an access token issued within a login, so that revoking the login marks
//! its access tokens inactive too.

use sea_orm::entity::prelude::*;

/// A row of `family_access_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "family_access_tokens")]
pub struct Model {
    /// The access token's `jti`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti: String,
    /// The login.
    pub family_id: String,
    /// The token's `exp`; the row is purged after it.
    pub expires_at: DateTimeUtc,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
