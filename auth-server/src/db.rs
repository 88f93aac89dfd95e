//! Database connection and migrations.

use std::time::Duration;

use migrations::auth::Migrator;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// The server's database handles.
///
/// SQLite lets one connection write at a time. Writes go through `writer`, a pool of one
/// connection, so concurrent writers queue in the pool, first come first served, instead
/// of in SQLite's busy handler, which sleeps 1–100 ms between retries. Reads run in
/// parallel on `reader`, whose connections refuse writes (`PRAGMA query_only`): a write
/// sent there by mistake fails in the tests instead of silently contending. WAL mode lets
/// those readers proceed while the writer commits. On PostgreSQL both are the same pool.
#[derive(Debug, Clone)]
pub struct Databases {
    /// For queries that only read.
    pub reader: DatabaseConnection,
    /// For every statement that writes, and every transaction.
    pub writer: DatabaseConnection,
}

/// Opens the writer (migrating the schema through it) and the readers.
pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Databases> {
    if url.starts_with("postgres") {
        let mut options = options(url, false);
        options
            .max_connections(max_connections.max(1))
            .min_connections(1);
        let pool = Database::connect(options).await?;
        migrate(&pool).await?;
        return Ok(Databases {
            reader: pool.clone(),
            writer: pool,
        });
    }
    let writer = connect(url).await?;
    migrate(&writer).await?;
    if sqlite_path(url).is_none() || url.contains("mode=memory") {
        // An in-memory database exists once per connection (or per shared cache).
        return Ok(Databases {
            reader: writer.clone(),
            writer,
        });
    }
    let mut options = options(url, true);
    options.max_connections(max_connections.max(1));
    let reader = Database::connect(options).await?;
    Ok(Databases { reader, writer })
}

/// Connects to SQLite (one connection) or PostgreSQL (a pool), creating a SQLite file's
/// directory if needed. The CLI uses this connection alone.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    if let Some(parent) = sqlite_path(url).and_then(|p| std::path::Path::new(p).parent())
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = options(url, false);
    if url.starts_with("postgres") {
        options.max_connections(16).min_connections(1);
    } else {
        options.max_connections(1);
    }
    Ok(Database::connect(options).await?)
}

fn options(url: &str, query_only: bool) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings a connection on every checkout by default: one more round trip to
        // the database (for SQLite, to its worker thread) per query. Only a connection
        // idle long enough to have been dropped by a server or a proxy is checked.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .map_sqlx_sqlite_opts(move |o| {
            // WAL lets readers proceed during a write; the busy timeout makes a second
            // process (the CLI while the server runs) wait instead of failing.
            let o = o
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if query_only {
                o.pragma("query_only", "ON")
            } else {
                o
            }
        });
    sqlite_readers::stable_plans(&mut options);
    options
}

/// Applies every pending migration, one replica at a time ([`migrations::up_exclusively`]).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migrations::up_exclusively::<Migrator>(db, migrations::AUTH_LOCK).await?;
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// For the tests that compare a synchronous read with sea-orm's: a migrated SQLite file
/// in a temporary directory (dropped with it), its writer, and readers of the same file.
#[cfg(test)]
pub(crate) async fn temporary_sqlite() -> (
    tempfile::TempDir,
    DatabaseConnection,
    sqlite_readers::Readers,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = open(&url, 2).await.unwrap().writer;
    let readers = sqlite_readers::Readers::for_url(&url).unwrap();
    (dir, db, readers)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::{open, sqlite_path};

    #[tokio::test]
    async fn sqlite_readers_refuse_writes_and_see_the_writers_commits() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let dbs = open(&url, 2).await.unwrap();
        let create = "CREATE TABLE probe (x INTEGER)";
        assert!(dbs.reader.execute_unprepared(create).await.is_err());
        dbs.writer.execute_unprepared(create).await.unwrap();
        dbs.writer
            .execute_unprepared("INSERT INTO probe VALUES (1)")
            .await
            .unwrap();
        assert!(
            dbs.reader
                .execute_unprepared("INSERT INTO probe VALUES (2)")
                .await
                .is_err()
        );
        let rows = dbs
            .reader
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT x FROM probe",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(
            sqlite_path("sqlite://data/auth.db?mode=rwc"),
            Some("data/auth.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/db"), None);
    }
}
