//! Batches of new posts committed on SQLite's writer connection through its own handle.
//!
//! Through sqlx every batch took the storing task, the writer connection's thread and the
//! requests' threads in turn: under a steady load the hops between them, each a wake-up
//! that waits for a core, and not the fsync, set the rate of the commits (BENCHMARKS.md,
//! issue 14, eleventh round). Here, as the auth server does for its token transactions
//! (`auth-server/src/tokens/rotation/handle.rs`), the task takes the writer connection from
//! its pool and, on one thread of the blocking pool, lends its handle to rusqlite
//! (`sqlite_readers::with_handle`: sqlx's thread waits meanwhile), which commits the batch
//! at hand and every batch that comes after it, until none comes within [`LINGER`] or
//! [`HOLD`] has passed.
//!
//! Anything that fails before a COMMIT is rolled back, and that batch is left for sqlx,
//! which gives every failure its usual meaning (a broken constraint retried post by post).
//! A failed COMMIT fails its batch: whether it reached the disk is not known, so none of
//! its posts is acknowledged (see the parent module). So does an outage at BEGIN (the file
//! locked past the busy timeout), which sqlx would only wait out again: 503 at once.

use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};
use sqlite_readers::{rusqlite, sqlx_datetime_text};
use tokio::sync::mpsc;

use super::{Job, LINGER, MAX_BATCH, Queue, Waits};

/// How long the task keeps the writer connection while posts keep coming. Every other
/// write of the server (an edit, a deletion) waits for the writer connection meanwhile,
/// so this, plus one [`LINGER`], is what a load of new posts adds to it at most.
const HOLD: Duration = Duration::from_millis(2);

/// Stores `batch`, then each batch that comes meanwhile, on the writer connection's handle.
/// Returns the waits learnt, and what is left for sqlx: a batch rolled back before its
/// COMMIT, or the one at hand when the handle could not be had.
pub(super) async fn store_while_coming(
    writer: &DatabaseConnection,
    queue: &Queue,
    waits: Waits,
    batch: Vec<Job>,
) -> (Waits, Vec<Job>) {
    let mut connection = match writer.get_sqlite_connection_pool().acquire().await {
        Ok(connection) => connection,
        Err(e) => {
            // The pool closed, or its one connection busy past the timeout: an outage,
            // which sqlx would only wait out again.
            let e = db_outage::acquire_failed(e);
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
            return (waits, Vec::new());
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let queue = Queue::clone(queue);
    let storing = tokio::task::spawn_blocking(move || {
        let (mut waits, mut batch) = (waits, batch);
        sqlite_readers::with_handle(&runtime, &mut connection, |conn| {
            let mut queue = queue.blocking_lock();
            store_until_idle(&runtime, conn, &mut queue, &mut waits, &mut batch);
        });
        (waits, batch)
    });
    storing.await.unwrap_or_else(|e| {
        // A panic: the posts it held are dropped, and their requesters get an error.
        tracing::error!(error = %e, "storing posts on the writer's handle failed");
        (Waits::default(), Vec::new())
    })
}

/// The loop of [`store_while_coming`] on the blocking thread. Leaves `batch` empty, unless
/// a batch was rolled back: that one is for sqlx.
fn store_until_idle(
    runtime: &tokio::runtime::Handle,
    conn: &mut rusqlite::Connection,
    queue: &mut mpsc::Receiver<Job>,
    waits: &mut Waits,
    batch: &mut Vec<Job>,
) {
    let until = Instant::now() + HOLD;
    loop {
        runtime.block_on(waits.fill(queue, batch));
        batch.retain(|job| !job.reply.is_closed());
        let stored = batch.len();
        if stored > 0 {
            match commit(conn, batch) {
                Ok(Ok(())) => {
                    for job in batch.drain(..) {
                        let _ = job.reply.send(Ok(()));
                    }
                }
                Ok(Err(e)) => {
                    // Rolled back: nothing of the batch is stored.
                    tracing::debug!(error = %e, "post batch rolled back on the writer's handle; storing through sqlx");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, posts = stored, "storing posts failed");
                    let e = failed(&e);
                    for job in batch.drain(..) {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
        waits.committed(stored, queue.len());
        if Instant::now() >= until {
            return;
        }
        // The clients just answered send their next posts within a round trip.
        let next = tokio::time::timeout(LINGER, queue.recv_many(batch, MAX_BATCH));
        if !matches!(runtime.block_on(next), Ok(n) if n > 0) {
            return;
        }
    }
}

/// The batch in one IMMEDIATE transaction, a prepared one-row INSERT per post: what sqlx
/// stores with its one multi-row INSERT, row for row. The outer error is final (an outage
/// at BEGIN, or the COMMIT failed); the inner one was rolled back.
fn commit(
    conn: &mut rusqlite::Connection,
    batch: &[Job],
) -> rusqlite::Result<rusqlite::Result<()>> {
    let txn = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(txn) => txn,
        // The file locked past the busy timeout (another process writing), or unreadable:
        // sqlx would wait as long again for the same answer. The batch fails now (503).
        Err(e) if db_outage::is_outage(&e) => return Err(e),
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = insert(&txn, batch) {
        // Dropping `txn` rolls the batch back.
        return Ok(Err(e));
    }
    txn.commit().map(Ok)
}

fn insert(txn: &rusqlite::Transaction<'_>, batch: &[Job]) -> rusqlite::Result<()> {
    // Times in sqlx's text layout, which the readers and every comparison in SQL expect.
    let mut insert = txn.prepare_cached(
        "INSERT INTO posts (id, author_id, title, body, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for job in batch {
        let post = &job.post;
        insert.execute((
            &post.id,
            &post.author_id,
            &post.title,
            &post.body,
            sqlx_datetime_text(post.created_at),
            sqlx_datetime_text(post.updated_at),
        ))?;
    }
    Ok(())
}

/// A final failure of [`commit`] as sea-orm would report it: an outage (503) when SQLite
/// says the file is out of reach, else a failure of the statement (500).
fn failed(e: &rusqlite::Error) -> DbErr {
    let message = format!("storing a batch of posts failed: {e}");
    if db_outage::is_outage(e) {
        DbErr::Conn(RuntimeErr::Internal(message))
    } else {
        DbErr::Exec(RuntimeErr::Internal(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_locked_past_the_busy_timeout_fails_the_batch_at_begin_as_an_outage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // Another writer (say, a second server on the same file) holds the write lock.
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x);
                 BEGIN IMMEDIATE; INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();

        let outcome = commit(&mut conn, &[]);

        // Final (503), not left for sqlx to wait out the same lock again.
        let error = outcome.expect_err("an outage at BEGIN fails the batch");
        assert!(db_outage::is_outage(&failed(&error)), "{error}");
    }
}
