//! Database migrations, one migrator per database.
//!
//! The auth and posts databases are separate (the servers share only the public key set),
//! so each has its own migrator and its own `seaql_migrations` table. Never edit a migration
//! that has been released; add a new one.

pub mod auth;
pub mod posts;

pub use sea_orm_migration;

use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};

/// Key of the PostgreSQL advisory lock that [`up_exclusively`] takes for the auth database.
pub const AUTH_LOCK: i64 = 0x6175_7468_5f6d_6967; // "auth_mig"
/// Key of the PostgreSQL advisory lock that [`up_exclusively`] takes for the posts database.
pub const POSTS_LOCK: i64 = 0x706f_7374_5f6d_6967; // "post_mig"

/// Applies `M`'s pending migrations, one process at a time.
///
/// Replicas started together on a new database would otherwise each find every migration
/// pending and run it: the second `CREATE TABLE` fails and that replica does not start
/// (a PostgreSQL migration runs in a transaction of its own, but two such transactions do
/// not see each other's tables before COMMIT). So the whole run is one transaction that
/// first takes a lock every other run waits for: on PostgreSQL the transaction-scoped
/// advisory lock `lock`, released at COMMIT or when the connection dies; on SQLite the
/// file's write lock (`BEGIN IMMEDIATE`, waiting for the busy timeout). Whoever comes next
/// finds the migrations applied and has nothing left to do. Both databases roll DDL back
/// with the transaction, so a run that fails leaves the schema as it found it.
pub async fn up_exclusively<M: MigratorTrait>(
    db: &DatabaseConnection,
    lock: i64,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let options = TransactionOptions {
        sqlite_transaction_mode: (backend == DbBackend::Sqlite)
            .then_some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let transaction = db.begin_with_options(options).await?;
    if backend == DbBackend::Postgres {
        transaction
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "SELECT pg_advisory_xact_lock($1)",
                [lock.into()],
            ))
            .await?;
    }
    M::up(&transaction, None).await?;
    transaction.commit().await
}
