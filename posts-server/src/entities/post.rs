//! The `posts` table.

use sea_orm::entity::prelude::*;

/// One stored post.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    /// Hyphenated UUID v7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The `sub` of the token that created the post.
    pub author_id: String,
    /// 1–200 characters.
    #[sea_orm(column_type = "Text")]
    pub title: String,
    /// 1–100,000 characters.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// Creation time, microsecond precision.
    pub created_at: DateTimeUtc,
    /// Last change, microsecond precision.
    pub updated_at: DateTimeUtc,
}

/// Posts relate to nothing else in this database.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
