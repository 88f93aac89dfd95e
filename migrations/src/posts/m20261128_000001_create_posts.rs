//! The `posts` table and the two indexes keyset pagination walks.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .if_not_exists()
                    // Ids are UUID v7 strings minted by the server; text keeps SQLite and
                    // PostgreSQL identical and the API's "ids are strings" promise literal.
                    .col(ColumnDef::new(Posts::Id).string().not_null().primary_key())
                    // The `sub` of the access token: a user id or a client id. The posts
                    // database shares nothing with the auth database, so no foreign key.
                    .col(ColumnDef::new(Posts::AuthorId).string().not_null())
                    .col(ColumnDef::new(Posts::Title).text().not_null())
                    .col(ColumnDef::new(Posts::Body).text().not_null())
                    .col(
                        ColumnDef::new(Posts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Posts::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        // Keyset pagination: newest first over (created_at, id), globally and per author.
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_created_at_id")
                    .table(Posts::Table)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_author_id_created_at_id")
                    .table(Posts::Table)
                    .col(Posts::AuthorId)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Posts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    AuthorId,
    Title,
    Body,
    CreatedAt,
    UpdatedAt,
}
