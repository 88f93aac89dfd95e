//! A login: the chain of refresh tokens that one password grant started.

use sea_orm::entity::prelude::*;

/// A row of `refresh_families`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_families")]
pub struct Model {
    /// UUID v4.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The user who logged in.
    pub user_id: String,
    /// The client the login belongs to.
    pub client_id: String,
    /// The scope granted at login; refreshes may narrow, never widen it.
    pub scope: String,
    /// Login time.
    pub created_at: DateTimeUtc,
    /// Absolute end of the login.
    pub expires_at: DateTimeUtc,
    /// Set when the login was revoked (logout, reuse detection).
    pub revoked_at: Option<DateTimeUtc>,
    /// The browser session the login was made in, if any (`sid` of its ID tokens).
    pub sid: Option<String>,
    /// When the user entered their password for this login (`auth_time` of its ID
    /// tokens); `None` for logins made before it was recorded.
    pub auth_time: Option<DateTimeUtc>,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
