//! sqlx's SQLite writer connection, borrowed by rusqlite on a thread that may block.
//!
//! Through sqlx every statement is a message to the connection's own thread and back; a
//! server that commits many small transactions back to back (the auth server's token
//! transactions, posts-server's batches of new posts) pays those hops, each a wake-up
//! waiting for a core, more than the statements (BENCHMARKS.md, issue 14). [`with_handle`]
//! lends the connection's SQLite handle to rusqlite instead, for as long as the work takes:
//! sqlx's thread waits meanwhile (`lock_handle`), and the connection goes back to sqlx's
//! pool as sqlx believes it is, with no transaction open.

use sea_orm::sqlx::{Sqlite, pool::PoolConnection};

/// Runs `work` with a rusqlite `Connection` on `connection`'s handle, on the calling thread
/// (one of the blocking pool's: it blocks on `runtime` to lock the handle). `None` when the
/// handle could not be locked or used; the caller then does the work through sqlx.
///
/// A transaction that `work` leaves open is rolled back. sqlx believes none is open, and
/// one left open would take sqlx's next writes into it, answered but never committed; so
/// if the ROLLBACK fails, the connection is closed rather than handed back to the pool.
pub fn with_handle<R>(
    runtime: &tokio::runtime::Handle,
    connection: &mut PoolConnection<Sqlite>,
    work: impl FnOnce(&mut rusqlite::Connection) -> R,
) -> Option<R> {
    let mut handle = match runtime.block_on(connection.lock_handle()) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::debug!(error = %e, "could not lock the writer's handle; writing through sqlx");
            return None;
        }
    };
    // SAFETY: while `handle` lives, sqlx makes no call on this connection; the rusqlite
    // `Connection` does not close it, finalises its statements when dropped, and is dropped
    // before `handle`.
    let conn = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) };
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(error = %e, "could not use the writer's handle; writing through sqlx");
            return None;
        }
    };
    let result = work(&mut conn);
    let stuck = !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err();
    drop(conn);
    drop(handle);
    if stuck {
        tracing::error!("the writer connection is stuck in a transaction; closing it");
        connection.close_on_drop();
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::{self, sqlite::SqlitePoolOptions};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_work_runs_on_the_writers_connection_and_an_open_transaction_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        let mut connection = pool.acquire().await.unwrap();
        let runtime = tokio::runtime::Handle::current();

        let (connection, stored) = tokio::task::spawn_blocking(move || {
            let stored = with_handle(&runtime, &mut connection, |conn| {
                conn.execute_batch("INSERT INTO t VALUES (1); BEGIN; INSERT INTO t VALUES (2);")
                    .unwrap();
                // In the transaction, before it is rolled back.
                conn.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))
                    .unwrap()
            });
            (connection, stored)
        })
        .await
        .unwrap();
        drop(connection);

        assert_eq!(stored, Some(2), "the work ran");
        // Back in sqlx's pool with no transaction open: sqlx's next write commits.
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let pool = SqlitePoolOptions::new().connect(&url).await.unwrap();
        let rows: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(
            rows,
            [1, 3],
            "the open transaction's row rolled back, sqlx's committed"
        );
    }
}
