//! Read-only SQLite connections used synchronously, on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own: a query is a message to that
//! thread, every row a message back, and each message a thread wake-up. For the hottest
//! reads of the servers (a client by id at every token request, a page of posts at every
//! `GET /posts/me`) that hop costs several times the query itself: 0.05 ms for a bare
//! `SELECT 1`, while SQLite answers a lookup by primary key from its page cache in a few
//! microseconds (BENCHMARKS.md, issue 14). [`Readers`] keeps a few read-only connections to
//! the same file and runs such a query right where it is asked, on the async worker; no
//! statement here waits for a lock (busy timeout 0: WAL readers do not block on the
//! writer), so a call costs what the query costs.
//!
//! It is a fast path, never the only path: [`Readers::read`] answers `None` on any error
//! (the file cannot be opened, SQLITE_BUSY, a value in an unexpected format), and the
//! caller then runs the same query through sea-orm, which classifies failures (503 on an
//! outage) as everywhere else. The answers must be the same either way; each caller has a
//! test that compares both paths.
//!
//! Each statement runs in autocommit, so it reads a fresh snapshot: whatever the writer
//! committed before the call (every acknowledged write) is seen.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
pub use rusqlite;
use rusqlite::{Connection, OpenFlags, types::ValueRef};

/// Connections kept for reuse; more may be open at once under a burst, and are closed
/// when returned to a full pool.
const MAX_IDLE: usize = 8;

/// A small pool of read-only connections to one SQLite file.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Readers {
    /// Readers for the database that the sqlx URL `url` names, or `None` when it is not an
    /// SQLite file (PostgreSQL, or an in-memory database, which exists once per
    /// connection). Nothing is opened yet.
    pub fn for_url(url: &str) -> Option<Self> {
        let path = sqlite_file_path(url)?;
        Some(Self {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `query` on a read-only connection. `None` when it fails in any way (logged at
    /// debug); the connection it failed on is closed, not reused.
    pub fn read<T>(&self, query: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let connection = match self.take() {
            Ok(connection) => connection,
            Err(error) => {
                tracing::debug!(%error, path = %self.path.display(), "no SQLite reader; the query goes through sqlx");
                return None;
            }
        };
        match query(&connection) {
            Ok(answer) => {
                self.give_back(connection);
                Some(answer)
            }
            Err(error) => {
                tracing::debug!(%error, "SQLite reader failed; the query goes through sqlx");
                None
            }
        }
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait on the async thread: a lock means "use sqlx this time".
        connection.busy_timeout(std::time::Duration::ZERO)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }
}

/// The file of an SQLite URL as sqlx reads it (`sqlite://data/auth.db?mode=rwc`,
/// `sqlite:auth.db`): the part between the scheme and the query string. `None` for other
/// schemes and for in-memory databases.
pub fn sqlite_file_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory");
    (!in_memory).then(|| PathBuf::from(path))
}

/// A timestamp as sqlx writes it for sea-orm's `DateTimeUtc` (RFC 3339 text); any other
/// storage is an error, so that the caller falls back to sqlx, which reads every format.
pub fn datetime(value: ValueRef<'_>) -> rusqlite::Result<DateTime<Utc>> {
    let text = value.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, value.data_type(), Box::new(e)))
}

/// [`datetime`] for a column that may be NULL.
pub fn optional_datetime(value: ValueRef<'_>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match value {
        ValueRef::Null => Ok(None),
        value => datetime(value).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_name_their_path_and_memory_urls_none() {
        assert_eq!(
            sqlite_file_path("sqlite://data/auth.db?mode=rwc"),
            Some(PathBuf::from("data/auth.db"))
        );
        assert_eq!(
            sqlite_file_path("sqlite:///tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file_path("sqlite:a.db"), Some(PathBuf::from("a.db")));
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(
            sqlite_file_path("sqlite://file.db?mode=memory&cache=shared"),
            None
        );
        assert_eq!(sqlite_file_path("postgres://localhost/db"), None);
    }

    #[test]
    fn a_reader_sees_commits_refuses_writes_and_gives_up_on_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a');",
            )
            .unwrap();
        let readers = Readers::for_url(&format!("sqlite://{}?mode=rwc", path.display())).unwrap();
        let count = |readers: &Readers| {
            readers.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
        };
        assert_eq!(count(&readers), Some(1));
        writer.execute("INSERT INTO t VALUES ('b')", []).unwrap();
        assert_eq!(
            count(&readers),
            Some(2),
            "a commit is seen by the next read"
        );
        assert_eq!(
            readers.read(|c| c.execute("INSERT INTO t VALUES ('c')", [])),
            None
        );
        assert_eq!(count(&readers), Some(2));

        let missing = Readers::for_url(&format!("sqlite://{}", dir.path().join("no.db").display()));
        assert_eq!(count(&missing.unwrap()), None);
    }

    #[test]
    fn timestamps_read_as_sqlx_writes_them_and_other_formats_fail() {
        let c = Connection::open_in_memory().unwrap();
        let t: DateTime<Utc> = c
            .query_row("SELECT '2026-12-02T15:04:05.123456+00:00'", [], |r| {
                datetime(r.get_ref(0)?)
            })
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-02T15:04:05.123456+00:00");
        assert!(
            c.query_row("SELECT 1764687845", [], |r| datetime(r.get_ref(0)?))
                .is_err()
        );
        assert!(
            c.query_row("SELECT '2026-12-02 15:04:05'", [], |r| datetime(
                r.get_ref(0)?
            ))
            .is_err()
        );
        assert_eq!(
            c.query_row("SELECT NULL", [], |r| optional_datetime(r.get_ref(0)?))
                .unwrap(),
            None
        );
    }
}
