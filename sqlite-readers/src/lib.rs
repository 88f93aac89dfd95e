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
//!
//! Three helpers for the SQLite the servers share live here too: the times as sqlx stores
//! them ([`datetime`], [`sqlx_datetime_text`]), [`stable_plans`], which gives sqlx's own
//! connections the planner setting these readers have, and [`with_handle`], which lends
//! sqlx's writer connection to rusqlite for the servers' batched commits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use rusqlite;
use rusqlite::{Connection, OpenFlags};

mod plans;
mod times;
mod writer_handle;
pub use plans::stable_plans;
pub use times::{datetime, optional_datetime, sqlx_datetime_text};
pub use writer_handle::with_handle;

/// Connections kept for reuse by [`Readers::for_url`]. A connection is used between two
/// `.await`s, never across one, so no more are ever in use than there are threads calling.
const MAX_IDLE: usize = 8;

/// A small pool of read-only connections to one SQLite file; cheap to clone (the pool is
/// shared).
#[derive(Clone)]
pub struct Readers {
    inner: Arc<Pool>,
}

struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    failures: AtomicU64,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Readers {
    /// Readers for the database that the sqlx URL `url` names, or `None` when it is not an
    /// SQLite file that another connection can open by its name alone (PostgreSQL, an
    /// in-memory database, a URL with options other than `mode` and `cache`). Nothing is
    /// opened yet.
    pub fn for_url(url: &str) -> Option<Self> {
        let file = sqlite_file(url)?;
        file.plain.then(|| Self::new(file.path, MAX_IDLE))
    }

    /// Readers of the file at `path`, keeping at most `max_idle` connections between
    /// queries. Connections are opened on first use.
    pub fn new(path: PathBuf, max_idle: usize) -> Self {
        Self {
            inner: Arc::new(Pool {
                path,
                idle: Mutex::new(Vec::new()),
                max_idle: max_idle.max(1),
                failures: AtomicU64::new(0),
            }),
        }
    }

    /// Runs `query` on a read-only connection. `None` when it fails in any way (logged at
    /// debug: the error names a statement or a column, never a row's content); the
    /// connection it failed on is closed, not reused.
    pub fn read<T>(&self, query: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let idle = self.lock().pop();
        let answer = idle.map_or_else(|| self.open(), Ok).and_then(|connection| {
            let answer = query(&connection)?;
            let mut idle = self.lock();
            if idle.len() < self.inner.max_idle {
                idle.push(connection);
            }
            Ok(answer)
        });
        match answer {
            Ok(answer) => Some(answer),
            Err(error) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, path = %self.inner.path.display(), "SQLite reader failed; the query goes through sqlx");
                None
            }
        }
    }

    /// Reads that failed here (and so went through sqlx) since these readers were made.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Connections waiting for the next read.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    // Nothing panics while holding the lock, and a Vec of connections stays valid anyway.
    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // The flags sqlx opens with (URI file names, no connection mutex: one thread at a
        // time), but read-only.
        let connection = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        // rusqlite sets 5 s; a reader must never sleep on the async thread: a lock means
        // "through sqlx this time".
        connection.busy_timeout(std::time::Duration::ZERO)?;
        connection.pragma_update(None, "query_only", true)?;
        // A statement whose plan SQLite lets depend on a bound value (`LIMIT ?` is one:
        // the page query's) is marked to be compiled again whenever that value is bound or
        // the bindings are cleared, which the statement cache does after every use: each
        // query paid for parsing and planning. With the query planner stability guarantee
        // a plan never depends on bound values, so a cached statement stays compiled.
        connection.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        Ok(connection)
    }
}

/// On every scrape of the registry it is registered with
/// ([`prometheus_client::registry::Registry::register_collector`]), the counter
/// `sqlite_reader_fallbacks_total`: the reads that failed here and went through sqlx. It
/// stays at zero in normal operation; a rising count means the fast path is lost (a file
/// it cannot open, a stored value in a format it does not read) and every such query pays
/// the hop again.
impl prometheus_client::collector::Collector for Readers {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric;
        let counter = prometheus_client::metrics::counter::ConstCounter::new(self.failures());
        let metric = encoder.encode_descriptor(
            "sqlite_reader_fallbacks",
            "Reads of the synchronous SQLite readers that failed and went through sqlx",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// The database file of an `sqlite:` URL.
#[derive(Debug, PartialEq, Eq)]
pub struct SqliteFile {
    /// The file name sqlx hands to SQLite.
    pub path: PathBuf,
    /// Whether the URL sets nothing but `mode` and `cache`, so that another connection
    /// opened on `path` alone reads the same database the same way.
    pub plain: bool,
}

/// The file an `sqlite:` URL names, read as sqlx reads it: after `sqlite://` or `sqlite:`,
/// the percent-decoded path up to `?`. `None` for other schemes, for an in-memory database
/// (`:memory:`, `mode=memory`) and for an empty path (a temporary database of each
/// connection's own).
pub fn sqlite_file(url: &str) -> Option<SqliteFile> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut plain = true;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match (&*key, &*value) {
            ("mode", "memory") => return None,
            ("mode" | "cache", _) => {}
            _ => plain = false,
        }
    }
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    Some(SqliteFile {
        path: PathBuf::from(&*path),
        plain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database file in WAL mode, as the servers keep theirs, made by running `sql`;
    /// its directory, its path and the connection that made it (a writer).
    fn wal_file(sql: &str) -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.execute_batch(sql).unwrap();
        (dir, path, writer)
    }

    #[test]
    fn sqlite_is_built_without_the_process_wide_mutexes_of_the_default_build() {
        // `.cargo/config.toml` sets these through LIBSQLITE3_FLAGS; a build that lost them
        // would serialise every reader on two global mutexes again.
        let connection = Connection::open_in_memory().unwrap();
        let mut statement = connection.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[test]
    fn a_cached_statement_with_a_bound_limit_is_not_compiled_again_at_each_use() {
        let (_dir, path, _writer) = wal_file(
            "CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT);
             INSERT INTO t (y) VALUES ('a'), ('b'), ('c');",
        );
        let readers = Readers::new(path, 1);
        let sql = "SELECT x FROM t WHERE y > ?2 ORDER BY x DESC LIMIT ?1";

        let mut recompiled = 0;
        for limit in [1_i64, 2, 2, 3] {
            recompiled = readers
                .read(|c| {
                    let mut statement = c.prepare_cached(sql)?;
                    let rows: Vec<i64> = statement
                        .query_map(rusqlite::params![limit, ""], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    assert_eq!(rows.len() as i64, limit);
                    Ok(statement.get_status(rusqlite::StatementStatus::RePrepare))
                })
                .unwrap();
        }

        assert_eq!(recompiled, 0);
    }

    #[test]
    fn sqlite_urls_name_their_file_as_sqlx_reads_them() {
        let file = |path: &str, plain| {
            Some(SqliteFile {
                path: path.into(),
                plain,
            })
        };
        assert_eq!(
            sqlite_file("sqlite://data/posts.db?mode=rwc"),
            file("data/posts.db", true)
        );
        assert_eq!(sqlite_file("sqlite:/tmp/p.db"), file("/tmp/p.db", true));
        assert_eq!(
            sqlite_file("sqlite:///tmp/a%20b%3F.db?cache=shared"),
            file("/tmp/a b?.db", true)
        );
        assert_eq!(
            sqlite_file("sqlite://p.db?mode=ro&immutable=true"),
            file("p.db", false)
        );
        assert!(Readers::for_url("sqlite://p.db?mode=ro&immutable=true").is_none());
        for memory in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://shared?mode=memory",
            "sqlite://",
            "postgres://localhost/db",
        ] {
            assert_eq!(sqlite_file(memory), None, "{memory}");
        }
    }

    #[test]
    fn a_reader_sees_commits_refuses_writes_and_gives_up_on_a_missing_file() {
        let (dir, path, writer) = wal_file("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a');");
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
        assert_eq!(
            readers.failures(),
            1,
            "the refused write counts as a fallback"
        );

        let missing = Readers::for_url(&format!("sqlite://{}", dir.path().join("no.db").display()));
        assert_eq!(count(&missing.unwrap()), None);
    }

    #[test]
    fn fallbacks_are_exposed_as_a_prometheus_counter() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::new(dir.path().join("missing.db"), 2);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(readers.clone()));
        let scrape = |registry: &prometheus_client::registry::Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
            text
        };
        assert!(scrape(&registry).contains("sqlite_reader_fallbacks_total 0\n"));
        assert_eq!(readers.read(|_| Ok(())), None, "the file does not exist");
        assert_eq!(readers.read(|_| Ok(())), None);
        let text = scrape(&registry);
        assert!(
            text.contains("# TYPE sqlite_reader_fallbacks counter"),
            "{text}"
        );
        assert!(text.contains("sqlite_reader_fallbacks_total 2\n"), "{text}");
    }
}
