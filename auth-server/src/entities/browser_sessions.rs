//! A browser session: a user signed in to the auth server in one browser (single sign-on).

use sea_orm::entity::prelude::*;

/// A row of `browser_sessions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_sessions")]
pub struct Model {
    /// Public id: the `sid` claim of ID tokens issued in this session.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sid: String,
    /// Hex SHA-256 of the cookie value; the value itself is never stored.
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// The user signed in.
    pub user_id: String,
    /// When the user last entered their password here.
    pub auth_time: DateTimeUtc,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// End of the session unless signed in again.
    pub expires_at: DateTimeUtc,
    /// Set by logout, or when another user signs in in the same browser.
    pub ended_at: Option<DateTimeUtc>,
}

/// A session belongs to a user.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The signed-in user.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
