//! Synchronous SQLite readers for the page query of `GET /posts` and `GET /posts/me`.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and talks to it through
//! channels: a query is a message to that thread, each row a message back, and every
//! message wakes a sleeping thread. On the issue-14 machine (BENCHMARKS.md) that hop alone
//! costs 0.05 ms for `SELECT 1` and ten posts 0.17 ms, while the whole of `/healthz` costs
//! the server 0.029 ms of CPU: `GET /posts/me` spent 0.266 ms and reached 15 % of
//! `/healthz`, against a target of 50 %. SQLite itself answers the page query in
//! microseconds from its page cache.
//!
//! So for this one query, on an SQLite *file*, the calling (tokio worker) thread asks SQLite
//! itself, through a small pool of read-only connections of its own (rusqlite on the very
//! `libsqlite3-sys` that sqlx links). Nothing here waits: a connection is used between two
//! `.await`s, never across one, so the pool never holds more connections than there are
//! worker threads; the busy timeout is zero, so a reader that would have to wait for a lock
//! fails at once instead of blocking the worker (a WAL reader does not normally wait). Each
//! statement runs in autocommit and so reads a fresh snapshot: a post whose commit was
//! acknowledged is seen by the next page query.
//!
//! Every failure here (cannot open, `SQLITE_BUSY`, a value it cannot decode) is reported to
//! the caller, who reads the page through sqlx instead, with sqlx's errors and their outage
//! classification; a connection that failed is dropped, never reused. Rows are decoded as
//! sqlx decodes them, so both paths return the same posts: the tests below compare them
//! page by page. In-memory databases and PostgreSQL stay on sqlx alone.

use chrono::{DateTime, Utc};
use sqlite_readers::rusqlite::{self, Connection, Row};

use crate::entities::post;

/// A value bound to a `$n` placeholder of a statement (`$1` first).
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// An integer.
    Integer(i64),
    /// Text.
    Text(&'a str),
    /// A time, stored as text the way sqlx stores a `DateTime<Utc>`.
    Time(DateTime<Utc>),
}

/// The page query's readers: the workspace's [`sqlite_readers::Readers`].
pub type SqliteReaders = sqlite_readers::Readers;

/// Runs `sql`, a `SELECT id, author_id, title, body, created_at, updated_at` with `$n`
/// placeholders, on `readers`, binding `params[n - 1]` to `$n`, and decodes every row into
/// a post. `None` when that failed in any way: the caller reads the page through sqlx.
pub fn posts(readers: &SqliteReaders, sql: &str, params: &[Param<'_>]) -> Option<Vec<post::Model>> {
    readers.read(|connection| query_posts(connection, sql, params))
}

fn query_posts(
    connection: &Connection,
    sql: &str,
    params: &[Param<'_>],
) -> rusqlite::Result<Vec<post::Model>> {
    let mut statement = connection.prepare_cached(sql)?;
    if statement.parameter_count() != params.len() {
        return Err(rusqlite::Error::InvalidParameterCount(
            params.len(),
            statement.parameter_count(),
        ));
    }
    // SQLite numbers named parameters in order of first appearance, and `$4` may come
    // first; sqlx binds `$n` by its number, and so does this.
    for (n, param) in params.iter().enumerate() {
        let name = format!("${}", n + 1);
        let index = statement
            .parameter_index(&name)?
            .ok_or(rusqlite::Error::InvalidParameterName(name))?;
        match *param {
            Param::Integer(value) => statement.raw_bind_parameter(index, value)?,
            Param::Text(value) => statement.raw_bind_parameter(index, value)?,
            Param::Time(value) => {
                statement.raw_bind_parameter(index, sqlite_readers::sqlx_datetime_text(value))?
            }
        }
    }
    let mut rows = statement.raw_query();
    let mut posts = Vec::new();
    while let Some(row) = rows.next()? {
        posts.push(post::Model {
            id: row.get(0)?,
            author_id: row.get(1)?,
            title: row.get(2)?,
            body: row.get(3)?,
            created_at: time(row, 4)?,
            updated_at: time(row, 5)?,
        });
    }
    Ok(posts)
}

/// A stored time as sqlx-sqlite 0.9 decodes a `DateTime<Utc>` from text: RFC 3339, or
/// SQLite's `CURRENT_TIMESTAMP` layout (see [`sqlite_readers::datetime`]). sqlx goes on to
/// try a dozen other layouts (and integers, and Julian days); no row this server writes
/// has one, so any of them is an error here and the page is read through sqlx, which
/// decodes it however it does.
fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    sqlite_readers::datetime(row.get_ref(index)?)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeZone;
    use sea_orm::{ConnectionTrait, DatabaseConnection, sqlx};

    use super::*;
    use crate::config::DatabaseSettings;
    use crate::db::{self, Databases};
    use crate::domain::{Cursor, PageLimit, PostId};
    use crate::inserts::Inserter;
    use crate::posts;

    async fn databases(dir: &Path) -> Databases {
        let settings = DatabaseSettings {
            url: format!("sqlite://{}?mode=rwc", dir.join("posts.db").display())
                .parse()
                .unwrap(),
            max_connections: 2,
        };
        db::open(&settings).await.unwrap()
    }

    /// 150 posts by three authors, stored through the server's inserter. Times come in
    /// groups of four equal ones (so the `(created_at, id)` tie-break decides), and vary in
    /// how sqlx writes them: whole seconds, milliseconds, microseconds.
    async fn fill(writer: &DatabaseConnection) -> Vec<post::Model> {
        let inserter = Inserter::spawn(writer.clone());
        let start = Utc.with_ymd_and_hms(2026, 12, 2, 7, 0, 0).unwrap();
        let offsets_us = [0, 1_000_000, 1_005_000, 1_000_007, 2_123_456, 2_500_000];
        let mut stored = Vec::new();
        for n in 0..150 {
            let created_at = start
                + chrono::Duration::seconds(10 * (n / 24) as i64)
                + chrono::Duration::microseconds(offsets_us[(n / 4) % offsets_us.len()]);
            let post = post::Model {
                id: PostId::new().to_string(),
                author_id: ["alice", "bob", "carol"][n % 3].to_owned(),
                title: format!("Post {n} ✓"),
                body: format!("Body {n}\nwith \"quotes\""),
                created_at,
                updated_at: created_at + chrono::Duration::microseconds(1500 * (n % 2) as i64),
            };
            inserter.insert(post.clone()).await.unwrap();
            stored.push(post);
        }
        stored.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        stored
    }

    /// Every page, following the cursors to the end (a cursor that does not advance would
    /// loop: stopped after more pages than there are posts).
    async fn walk(
        db: &DatabaseConnection,
        readers: Option<&SqliteReaders>,
        author: Option<&str>,
        limit: u64,
    ) -> Vec<(Vec<post::Model>, Option<String>)> {
        let limit = PageLimit::parse(Some(limit)).unwrap();
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = posts::list(db, readers, author, limit, after)
                .await
                .unwrap();
            after = page.next;
            pages.push((page.items, page.next.map(|cursor| cursor.encode())));
            if after.is_none() {
                return pages;
            }
            assert!(pages.len() <= 150, "the cursor does not advance");
        }
    }

    #[tokio::test]
    async fn the_synchronous_readers_return_the_pages_sqlx_returns() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let dbs = databases(dir.path()).await;
        let readers = dbs.sync_readers.clone().expect("readers on an SQLite file");
        let stored = fill(&dbs.writer).await;

        for author in [None, Some("alice"), Some("bob"), Some("nobody")] {
            let expected: Vec<_> = stored
                .iter()
                .filter(|post| author.is_none_or(|a| post.author_id == a))
                .cloned()
                .collect();
            for limit in [1, 3, 7, 20, 100] {
                // Act
                let fast = walk(&dbs.reader, Some(&readers), author, limit).await;
                let through_sqlx = walk(&dbs.reader, None, author, limit).await;

                // Assert: the same pages and cursors, and together every post once, in order.
                assert_eq!(fast, through_sqlx, "author {author:?}, limit {limit}");
                let listed: Vec<_> = fast.into_iter().flat_map(|(items, _)| items).collect();
                assert_eq!(listed, expected, "author {author:?}, limit {limit}");
            }
        }
        assert_eq!(readers.failures(), 0, "a page was read through sqlx");
        assert!(readers.idle() >= 1);
    }

    #[tokio::test]
    async fn times_are_bound_as_sqlx_binds_them() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = databases(dir.path()).await;
        let second = Utc.with_ymd_and_hms(2026, 12, 2, 7, 0, 0).unwrap();
        for micros in [0, 5_000, 123_456, 999_999, 1] {
            let time = second + chrono::Duration::microseconds(micros);
            let theirs: String = sqlx::query_scalar("SELECT $1")
                .bind(time)
                .fetch_one(dbs.reader.get_sqlite_connection_pool())
                .await
                .unwrap();
            assert_eq!(sqlite_readers::sqlx_datetime_text(time), theirs);
        }
    }

    #[tokio::test]
    async fn a_failure_of_the_synchronous_readers_falls_back_to_sqlx() {
        // Arrange: readers that cannot open their file, readers on a file that is not a
        // database, and the real readers.
        let dir = tempfile::tempdir().unwrap();
        let dbs = databases(dir.path()).await;
        let readers = dbs.sync_readers.clone().unwrap();
        let stored = fill(&dbs.writer).await;
        let missing = SqliteReaders::new(dir.path().join("no/such/dir/posts.db"), 2);
        let garbage_file = dir.path().join("garbage.db");
        std::fs::write(&garbage_file, vec![b'x'; 8192]).unwrap();
        let garbage = SqliteReaders::new(garbage_file, 2);
        let limit = PageLimit::parse(Some(7)).unwrap();
        let cursor = Some(Cursor::after(
            stored[10].created_at,
            PostId::parse(&stored[10].id).unwrap(),
        ));

        for failing in [&missing, &garbage] {
            // Act
            let page = posts::list(&dbs.reader, Some(failing), Some("bob"), limit, cursor)
                .await
                .unwrap();

            // Assert: sqlx's page; the failed connection was not kept.
            let sqlx = posts::list(&dbs.reader, None, Some("bob"), limit, cursor)
                .await
                .unwrap();
            assert_eq!(page.items, sqlx.items);
            assert_eq!(page.next, sqlx.next);
            assert_eq!(page.items.len(), 7);
            assert_eq!(failing.failures(), 1);
            assert_eq!(failing.idle(), 0);
        }

        // Arrange: a time in a layout that sqlx decodes and the readers do not (no
        // seconds; the readers take RFC 3339 and SQLite's `CURRENT_TIMESTAMP` layout).
        dbs.writer
            .execute_unprepared(
                "INSERT INTO posts (id, author_id, title, body, created_at, updated_at) \
                 VALUES ('0190b6a3-0000-7000-8000-000000000001', 'dave', 't', 'b', \
                 '2030-01-01 00:00', '2030-01-01 00:00')",
            )
            .await
            .unwrap();
        assert_eq!(readers.idle(), 0);
        posts::list(&dbs.reader, Some(&readers), Some("bob"), limit, None)
            .await
            .unwrap();
        assert_eq!(readers.idle(), 1);

        // Act
        let page = posts::list(&dbs.reader, Some(&readers), None, limit, None)
            .await
            .unwrap();

        // Assert: read through sqlx, which decoded the time; that connection was dropped,
        // and the readers serve again on a new one.
        assert_eq!(page.items[0].author_id, "dave");
        assert_eq!(
            page.items[0].created_at,
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(page.items[1..], stored[..6]);
        assert_eq!(readers.failures(), 1);
        assert_eq!(readers.idle(), 0);
        let bobs = posts::list(&dbs.reader, Some(&readers), Some("bob"), limit, None)
            .await
            .unwrap();
        assert_eq!(bobs.items.len(), 7);
        assert_eq!((readers.failures(), readers.idle()), (1, 1));
    }
}
