//! Signing keys in the auth database (`AUTH_KEYS_STORE=database`), so that replicas on
//! different hosts share them without a shared disk.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    // RFC 7638 thumbprint: 43 characters of base64url.
                    .col(
                        ColumnDef::new(SigningKeys::Kid)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    // The n-th key written. Unique, so of two replicas adding a key after
                    // seeing the same keys only one succeeds (first start, rotation).
                    .col(
                        ColumnDef::new(SigningKeys::Seq)
                            .big_integer()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(SigningKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SigningKeys::ActiveFrom)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // Only keys moved from an old keys directory carry an explicit one.
                    .col(
                        ColumnDef::new(SigningKeys::RetiredAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SigningKeys::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // PKCS#8 DER under AES-256-GCM: nonce ‖ ciphertext ‖ tag, kid as AAD.
                    .col(
                        ColumnDef::new(SigningKeys::EncryptedKey)
                            .binary()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Seq,
    CreatedAt,
    ActiveFrom,
    RetiredAt,
    RevokedAt,
    EncryptedKey,
}
