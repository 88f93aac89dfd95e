//! OAuth clients, with the built-in public client `posts-web`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Clients::ClientId)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    // Hex SHA-256 of the secret; NULL for public clients.
                    .col(ColumnDef::new(Clients::SecretHash).string_len(64).null())
                    .col(ColumnDef::new(Clients::GrantTypes).string().not_null())
                    .col(ColumnDef::new(Clients::Scopes).string().not_null())
                    .col(
                        ColumnDef::new(Clients::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The contract's built-in public client: a password grant without a client_id is
        // attributed to it. Operators may narrow its grants (for example to switch the
        // legacy password grant off) like any other client's.
        let insert = Query::insert()
            .into_table(Clients::Table)
            .columns([
                Clients::ClientId,
                Clients::GrantTypes,
                Clients::Scopes,
                Clients::CreatedAt,
            ])
            .values_panic([
                "posts-web".into(),
                "password refresh_token".into(),
                "posts:read posts:write".into(),
                Expr::current_timestamp(),
            ])
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Clients::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    SecretHash,
    GrantTypes,
    Scopes,
    CreatedAt,
}
