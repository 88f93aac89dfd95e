//! A version number of the `clients` table, bumped by triggers at every insert, update and
//! delete, whoever makes it (the CLI, another replica, an operator's own SQL). The auth
//! server caches client rows and reads this number to know when its copies are stale
//! (`auth-server/src/clients/cache.rs`).

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The triggers on SQLite, one per kind of change (SQLite has no statement triggers).
const SQLITE_TRIGGERS: [(&str, &str); 3] = [
    ("clients_insert_bumps_version", "INSERT"),
    ("clients_update_bumps_version", "UPDATE"),
    ("clients_delete_bumps_version", "DELETE"),
];

const BUMP: &str = "UPDATE client_changes SET version = version + 1 WHERE id = 1";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClientChanges::Table)
                    .if_not_exists()
                    // Always 1: the table has one row.
                    .col(
                        ColumnDef::new(ClientChanges::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ClientChanges::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Every statement may run twice (two replicas migrating a new database at once).
        db.execute_unprepared(
            "INSERT INTO client_changes (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
        )
        .await?;
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                for (name, event) in SQLITE_TRIGGERS {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON clients BEGIN {BUMP}; END"
                    ))
                    .await?;
                }
            }
            DbBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE OR REPLACE FUNCTION client_changes_bump() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN {BUMP}; RETURN NULL; END $$"
                ))
                .await?;
                db.execute_unprepared(
                    "CREATE OR REPLACE TRIGGER clients_bump_version AFTER INSERT OR UPDATE OR DELETE \
                     ON clients FOR EACH STATEMENT EXECUTE FUNCTION client_changes_bump()",
                )
                .await?;
            }
            backend => {
                return Err(DbErr::Migration(format!(
                    "no client-change triggers for {backend:?}"
                )));
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("DROP TRIGGER IF EXISTS clients_bump_version ON clients")
                    .await?;
                db.execute_unprepared("DROP FUNCTION IF EXISTS client_changes_bump()")
                    .await?;
            }
            _ => {
                for (name, _) in SQLITE_TRIGGERS {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}"))
                        .await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table(ClientChanges::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ClientChanges {
    Table,
    Id,
    Version,
}
