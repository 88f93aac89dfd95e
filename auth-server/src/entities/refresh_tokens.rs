//! One refresh token of a login, stored only as a hash.

use sea_orm::entity::prelude::*;

/// A row of `refresh_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Hex SHA-256 of the token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// The login it belongs to.
    pub family_id: String,
    /// Issue time.
    pub created_at: DateTimeUtc,
    /// Rotation time; a used token presented again is reuse.
    pub used_at: Option<DateTimeUtc>,
}

/// A token belongs to one login.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The login (family) the token belongs to.
    #[sea_orm(
        belongs_to = "super::refresh_families::Entity",
        from = "Column::FamilyId",
        to = "super::refresh_families::Column::Id"
    )]
    Family,
}

impl Related<super::refresh_families::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Family.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
