//! Database connection and migrations.

use std::time::Duration;

use anyhow::Context;
use migrations::posts::Migrator;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::DatabaseSettings;
use sqlite_readers::sqlite_file;

use crate::page_reads::SqliteReaders;

/// The server's database handles.
///
/// SQLite lets one connection write at a time. Writes go through `writer`, a pool of one
/// connection, so concurrent writers queue in the pool, first come first served, instead
/// of in SQLite's busy handler, which sleeps 1–100 ms between retries. Reads run in
/// parallel on `reader`, whose connections refuse writes (`PRAGMA query_only`): a write
/// sent there by mistake fails in the tests instead of silently contending. WAL lets those
/// readers proceed while the writer commits. On PostgreSQL both are the same pool.
///
/// On an SQLite file, the page query also has `sync_readers`, read-only connections used on
/// the calling thread without sqlx's hop (see [`crate::page_reads`]).
#[derive(Debug, Clone)]
pub struct Databases {
    /// For queries that only read.
    pub reader: DatabaseConnection,
    /// For every statement that writes.
    pub writer: DatabaseConnection,
    /// For the page query on an SQLite file; `None` on PostgreSQL and in memory.
    pub sync_readers: Option<SqliteReaders>,
}

/// Opens the writer (migrating the schema through it) and the readers.
pub async fn open(settings: &DatabaseSettings) -> anyhow::Result<Databases> {
    let writer = connect(settings).await?;
    migrate(&writer).await?;
    // An in-memory database exists once per connection (or per shared cache).
    let file = if settings.url.is_sqlite() {
        sqlite_file(settings.url.expose())
    } else {
        None
    };
    let Some(file) = file else {
        return Ok(Databases {
            reader: writer.clone(),
            writer,
            sync_readers: None,
        });
    };
    let reader = Database::connect(options(settings, settings.max_connections, true))
        .await
        .with_context(|| format!("cannot connect to the database {}", settings.url))?;
    // A URL naming another VFS or an immutable file is left to sqlx alone.
    let sync_readers = file
        .plain
        .then(|| SqliteReaders::new(file.path, settings.max_connections as usize));
    Ok(Databases {
        reader,
        writer,
        sync_readers,
    })
}

/// Opens the pool: on SQLite one connection (the writer, or the CLI's), on PostgreSQL
/// `max_connections`. For SQLite the file's directory is created first.
#[tracing::instrument(skip_all, fields(url = %settings.url))]
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.url.expose();
    let size = if settings.url.is_sqlite() {
        create_sqlite_parent_dir(url)?;
        1
    } else {
        settings.max_connections
    };
    Database::connect(options(settings, size, false))
        .await
        .with_context(|| format!("cannot connect to the database {}", settings.url))
}

fn options(settings: &DatabaseSettings, size: u32, query_only: bool) -> ConnectOptions {
    let mut options = ConnectOptions::new(settings.url.expose().to_owned());
    options
        .max_connections(size.max(1))
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings a connection on every checkout by default: one more round trip to
        // the database (for SQLite, to its worker thread) per query. Only a connection
        // idle long enough to have been dropped by a server or a proxy is checked.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        // sqlx logs every statement at info; request tracing is enough.
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| {
            // "Acknowledged means stored": a 201 is sent only after the INSERT committed.
            // With WAL, synchronous=NORMAL would already survive a crash of this process
            // (SIGKILL: the committed WAL frames sit in the OS page cache), but could lose
            // the last commits on a power cut or kernel crash. FULL fsyncs the WAL on every
            // commit, so an acknowledged post survives those too; the price, one fsync per
            // write, is small next to a request. The SIGKILL test in
            // tests/api/crash_safety.rs holds us to it. The busy timeout makes another
            // process's writer wait instead of failing with SQLITE_BUSY.
            let opts = opts
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            if query_only {
                opts.pragma("query_only", "ON")
            } else {
                opts
            }
        });
    sqlite_readers::stable_plans(&mut options);
    options
}

/// Applies every pending migration, one replica at a time ([`migrations::up_exclusively`]).
#[tracing::instrument(skip_all)]
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migrations::up_exclusively::<Migrator>(db, migrations::POSTS_LOCK)
        .await
        .context("cannot apply the database migrations")
}

/// `sqlite://data/posts.db?mode=rwc` names a file under `data/`; SQLite creates the file but
/// not the directory.
fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let Some(file) = sqlite_file(url) else {
        return Ok(());
    };
    if let Some(parent) = file.path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    Ok(())
}

/// For unit tests: the databases of a new SQLite file in a temporary directory, which
/// lives as long as the returned `TempDir`.
#[cfg(test)]
pub(crate) async fn temporary_sqlite() -> (tempfile::TempDir, Databases) {
    let dir = tempfile::tempdir().unwrap();
    let settings = DatabaseSettings {
        url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())
            .parse()
            .unwrap(),
        max_connections: 2,
    };
    let dbs = open(&settings).await.unwrap();
    (dir, dbs)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::temporary_sqlite;

    #[tokio::test]
    async fn sqlite_readers_refuse_writes_and_see_the_writers_commits() {
        let (_dir, dbs) = temporary_sqlite().await;
        let insert = "INSERT INTO posts (id, author_id, title, body, created_at, updated_at) \
                      VALUES ('p', 'a', 't', 'b', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')";
        assert!(dbs.reader.execute_unprepared(insert).await.is_err());
        dbs.writer.execute_unprepared(insert).await.unwrap();
        let rows = dbs
            .reader
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT id FROM posts",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
    }
}
