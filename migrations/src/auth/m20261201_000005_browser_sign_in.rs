//! Browser sign-in (authorization code + PKCE) and OpenID Connect: client redirect URIs,
//! browser sessions, remembered consent, pending authorization requests, authorization
//! codes, and the session and login time of each login.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            // Space-separated; a redirect URI never holds a space.
            ColumnDef::new(Clients::RedirectUris)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Clients::PostLogoutRedirectUris)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            // Skips the consent page.
            ColumnDef::new(Clients::Trusted)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            // Shown on the consent page; the client id when unset.
            ColumnDef::new(Clients::Name)
                .string_len(200)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // The built-in public client signs users in through the browser too. An operator
        // who already narrowed it (say, switched the password grant off) keeps their
        // choice: only the row as the first migration wrote it is widened.
        let widen = Query::update()
            .table(Clients::Table)
            .value(
                Clients::GrantTypes,
                "password authorization_code refresh_token",
            )
            .value(
                Clients::Scopes,
                "posts:read posts:write openid profile email",
            )
            .and_where(Expr::col(Clients::ClientId).eq("posts-web"))
            .and_where(Expr::col(Clients::GrantTypes).eq("password refresh_token"))
            .and_where(Expr::col(Clients::Scopes).eq("posts:read posts:write"))
            .to_owned();
        manager.exec_stmt(widen).await?;
        let trust = Query::update()
            .table(Clients::Table)
            .value(Clients::Trusted, true)
            .value(Clients::Name, "Posts API documentation")
            .and_where(Expr::col(Clients::ClientId).eq("posts-web"))
            .to_owned();
        manager.exec_stmt(trust).await?;

        manager
            .create_table(
                Table::create()
                    .table(BrowserSessions::Table)
                    .if_not_exists()
                    // Public id: the `sid` of ID tokens. The cookie holds another value.
                    .col(
                        ColumnDef::new(BrowserSessions::Sid)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    // Hex SHA-256 of the cookie value: the value itself is never stored.
                    .col(
                        ColumnDef::new(BrowserSessions::SecretHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::UserId)
                            .string_len(36)
                            .not_null(),
                    )
                    // When the user last entered their password in this session.
                    .col(
                        ColumnDef::new(BrowserSessions::AuthTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::EndedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(BrowserSessions::Table, BrowserSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_browser_sessions_expires")
                    .table(BrowserSessions::Table)
                    .col(BrowserSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Consents::UserId).string_len(36).not_null())
                    .col(
                        ColumnDef::new(Consents::ClientId)
                            .string_len(128)
                            .not_null(),
                    )
                    // Every scope the user allowed this client, space-separated.
                    .col(ColumnDef::new(Consents::Scope).text().not_null())
                    .col(
                        ColumnDef::new(Consents::GrantedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Consents::UserId)
                            .col(Consents::ClientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // A client deleted and registered again under the same id asks again.
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthorizationRequests::Table)
                    .if_not_exists()
                    // Random, in the URLs of the pages; bound to the browser below.
                    .col(
                        ColumnDef::new(AuthorizationRequests::Id)
                            .string_len(43)
                            .not_null()
                            .primary_key(),
                    )
                    // Hex SHA-256 of the browser cookie of the browser that sent it.
                    .col(
                        ColumnDef::new(AuthorizationRequests::BrowserHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationRequests::ClientId)
                            .string_len(128)
                            .not_null(),
                    )
                    // The validated request, as JSON.
                    .col(
                        ColumnDef::new(AuthorizationRequests::Parameters)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationRequests::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationRequests::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // Set once, by the step that answered the client (code or error).
                    .col(
                        ColumnDef::new(AuthorizationRequests::CompletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                AuthorizationRequests::Table,
                                AuthorizationRequests::ClientId,
                            )
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_authorization_requests_expires")
                    .table(AuthorizationRequests::Table)
                    .col(AuthorizationRequests::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .if_not_exists()
                    // Hex SHA-256 of the code: the code itself is never stored.
                    .col(
                        ColumnDef::new(AuthorizationCodes::CodeHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::ClientId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::RedirectUri)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::UserId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthorizationCodes::Scope).text().not_null())
                    .col(ColumnDef::new(AuthorizationCodes::Nonce).text().null())
                    // The PKCE challenge as oxide-auth encodes it (challenge + method).
                    .col(
                        ColumnDef::new(AuthorizationCodes::CodeChallenge)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::AuthTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::Sid)
                            .string_len(36)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthorizationCodes::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // Set by the one exchange that wins; a later one is a replay.
                    .col(
                        ColumnDef::new(AuthorizationCodes::UsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // The login the exchange started, revoked if the code is replayed.
                    .col(
                        ColumnDef::new(AuthorizationCodes::FamilyId)
                            .string_len(36)
                            .null(),
                    )
                    // A deleted user's or client's codes go with them (a client registered
                    // again under the same id inherits nothing).
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthorizationCodes::Table, AuthorizationCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthorizationCodes::Table, AuthorizationCodes::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_authorization_codes_expires")
                    .table(AuthorizationCodes::Table)
                    .col(AuthorizationCodes::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        for column in [
            // The browser session the login was made in (ended by logout).
            ColumnDef::new(RefreshFamilies::Sid)
                .string_len(36)
                .null()
                .to_owned(),
            // When the user entered their password for this login (ID tokens' auth_time).
            ColumnDef::new(RefreshFamilies::AuthTime)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RefreshFamilies::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_families_sid")
                    .table(RefreshFamilies::Table)
                    .col(RefreshFamilies::Sid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_refresh_families_sid")
                    .table(RefreshFamilies::Table)
                    .to_owned(),
            )
            .await?;
        for column in [RefreshFamilies::Sid, RefreshFamilies::AuthTime] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RefreshFamilies::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            AuthorizationCodes::Table.into_iden(),
            AuthorizationRequests::Table.into_iden(),
            Consents::Table.into_iden(),
            BrowserSessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [
            Clients::RedirectUris,
            Clients::PostLogoutRedirectUris,
            Clients::Trusted,
            Clients::Name,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    GrantTypes,
    Scopes,
    RedirectUris,
    PostLogoutRedirectUris,
    Trusted,
    Name,
}

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    Sid,
    SecretHash,
    UserId,
    AuthTime,
    CreatedAt,
    ExpiresAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    UserId,
    ClientId,
    Scope,
    GrantedAt,
}

#[derive(DeriveIden)]
enum AuthorizationRequests {
    Table,
    Id,
    BrowserHash,
    ClientId,
    Parameters,
    CreatedAt,
    ExpiresAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ClientId,
    RedirectUri,
    UserId,
    Scope,
    Nonce,
    CodeChallenge,
    AuthTime,
    Sid,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    FamilyId,
}

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    Sid,
    AuthTime,
}
