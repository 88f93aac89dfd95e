//! Database connection and migrations.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use migrations::posts::Migrator;
use migrations::sea_orm_migration::MigratorTrait;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::DatabaseSettings;

/// Opens the pool. For SQLite the file's directory is created first and every connection
/// gets WAL, a busy timeout and foreign keys.
#[tracing::instrument(skip_all, fields(url = %settings.url))]
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.url.expose();
    if settings.url.is_sqlite() {
        create_sqlite_parent_dir(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.max_connections.max(1))
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx logs every statement at info; request tracing is enough.
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets readers proceed while one writer commits; the busy timeout makes a
            // second writer wait instead of failing with SQLITE_BUSY.
            //
            // "Acknowledged means stored": a 201 is sent only after the INSERT committed.
            // With WAL, synchronous=NORMAL would already survive a crash of this process
            // (SIGKILL: the committed WAL frames sit in the OS page cache), but could lose
            // the last commits on a power cut or kernel crash. FULL fsyncs the WAL on every
            // commit, so an acknowledged post survives those too; the price, one fsync per
            // write, is small next to a request. The SIGKILL test in
            // tests/api/crash_safety.rs holds us to it.
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to the database {}", settings.url))
}

/// Applies every pending migration.
#[tracing::instrument(skip_all)]
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("cannot apply the database migrations")
}

/// `sqlite://data/posts.db?mode=rwc` names a file under `data/`; SQLite creates the file but
/// not the directory.
fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    Ok(())
}
