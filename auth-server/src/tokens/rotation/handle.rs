//! Rotations and login starts committed on SQLite's writer connection through its own
//! handle.
//!
//! Through sqlx each statement of a batch is a round trip to the writer connection's
//! thread, and under a refresh load every hop waits for a core that is busy signing: the
//! batch's five hops, not the fsync, set the pace of the commits. Here the task takes the
//! writer connection from its pool and, on one thread of the blocking pool, lends its
//! handle to rusqlite (`sqlite_readers::with_handle`: sqlx's thread waits meanwhile), which
//! commits the batch it has and then every batch that arrived meanwhile, until none waits
//! or [`HOLD`] has passed; jobs that arrive while a batch's statements run join that batch
//! before its COMMIT. So under load a batch costs its statements and its fsync, and the
//! hand-offs are paid once per [`HOLD`].
//!
//! Anything that fails before a COMMIT is rolled back, and that batch is left for sqlx,
//! which gives every failure its usual meaning (a broken constraint, an outage). A failed
//! COMMIT fails its batch, as through sqlx (see the parent module), and so does an outage
//! at BEGIN (the file locked past the busy timeout), which sqlx would only wait out again.

use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::DatabaseConnection;
use sqlite_readers::{rusqlite, sqlx_datetime_text};
use tokio::sync::mpsc;

use super::{Job, MAX_BATCH, Queue, Work, answer, drop_abandoned, fail};
use crate::entities::refresh_families;

/// How long the task keeps the writer connection while jobs keep arriving (and then
/// one batch more, see [`commit_until_idle`]). Every other write of the auth server waits
/// for the writer connection meanwhile, so this is about what a token load adds, at most,
/// to a write outside the task (a sign-up, a sign-in form's session and code).
const HOLD: Duration = Duration::from_millis(2);

/// Commits `batch`, then each batch that arrives meanwhile, on the writer connection's
/// handle. Returns what is left for sqlx: a batch rolled back before its COMMIT, or the
/// one at hand when the handle could not be locked.
pub(super) async fn commit_while_waiting(
    writer: &DatabaseConnection,
    queue: &Queue,
    mut batch: Vec<Job>,
) -> Vec<Job> {
    let mut connection = match writer.get_sqlite_connection_pool().acquire().await {
        Ok(connection) => connection,
        Err(e) => {
            fail(&mut batch, &db_outage::acquire_failed(e).into());
            return batch;
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let queue = Queue::clone(queue);
    let committing = tokio::task::spawn_blocking(move || {
        sqlite_readers::with_handle(&runtime, &mut connection, |conn| {
            commit_until_idle(conn, &mut queue.blocking_lock(), &mut batch);
        });
        batch
    });
    committing.await.unwrap_or_else(|e| {
        // A panic: the jobs it held are dropped, and their requesters get an error.
        tracing::error!(error = %e, "token transaction on the writer's handle failed");
        Vec::new()
    })
}

/// The loop of [`commit_while_waiting`] on the blocking thread. Leaves `batch` empty,
/// unless a batch was rolled back: that one is for sqlx.
fn commit_until_idle(
    conn: &mut rusqlite::Connection,
    queue: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
) {
    let until = Instant::now() + HOLD;
    let mut first = true;
    loop {
        drop_abandoned(batch);
        if !batch.is_empty() {
            match commit(conn, batch, queue) {
                Ok(Ok(outcomes)) => answer(batch, outcomes),
                Ok(Err(e)) => {
                    // Rolled back: nothing of the batch is stored.
                    tracing::debug!(error = %e, "token transaction on the writer's handle failed; committing through sqlx");
                    return;
                }
                Err(e) => return fail(batch, &e),
            }
        }
        // What waited behind the first batch is always taken: on a slow disk its COMMIT
        // alone may outlast the hold, which would make every batch pay the hand-offs.
        if !std::mem::take(&mut first) && Instant::now() >= until {
            return;
        }
        take_waiting(queue, batch);
        if batch.is_empty() {
            return;
        }
    }
}

/// Moves the jobs waiting in `queue` to `batch`, up to [`MAX_BATCH`], leaving out those
/// whose requester went away.
fn take_waiting(queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) if job.reply.is_closed() => {}
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// The failure of a batch before its COMMIT: rolled back, so it may be committed again
/// another way.
type RolledBack = anyhow::Error;

/// What the sqlx path (`through_sqlx::commit`) stores, in one IMMEDIATE transaction, for
/// `batch` and the jobs that join it from `queue` before the COMMIT (added to `batch`).
/// The outer error is final (an outage at BEGIN, or the COMMIT failed); the inner one was
/// rolled back.
pub(super) fn commit(
    conn: &mut rusqlite::Connection,
    batch: &mut Vec<Job>,
    queue: &mut mpsc::Receiver<Job>,
) -> anyhow::Result<Result<Vec<bool>, RolledBack>> {
    let txn = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(txn) => txn,
        // The file locked past the busy timeout, or unreadable: sqlx would wait as long
        // again for the same answer. The batch fails now (503).
        Err(e) if db_outage::is_outage(&e) => return Err(e.into()),
        Err(e) => return Ok(Err(e.into())),
    };
    let mut outcomes = match write(&txn, batch) {
        Ok(outcomes) => outcomes,
        // Dropping `txn` rolls the batch back.
        Err(e) => return Ok(Err(e.into())),
    };
    // Jobs that arrived while the statements ran join this COMMIT rather than wait for
    // the next: one fsync fewer for them, and their answer comes sooner.
    loop {
        let start = batch.len();
        take_waiting(queue, batch);
        if batch.len() == start {
            break;
        }
        match write(&txn, &batch[start..]) {
            Ok(more) => outcomes.extend(more),
            Err(e) => return Ok(Err(e.into())),
        }
    }
    // A failed COMMIT is rolled back too when `txn` drops, if SQLite left it open; but
    // whether the batch reached the disk is not known: it fails (see the parent module).
    txn.commit()?;
    Ok(Ok(outcomes))
}

fn write(txn: &rusqlite::Transaction<'_>, batch: &[Job]) -> rusqlite::Result<Vec<bool>> {
    // Times in sqlx's text layout, which every comparison in SQL and every reader expects.
    let now = sqlx_datetime_text(Utc::now());
    // One row per statement, with the same statements for every batch: prepared once per
    // hold (rusqlite's statement cache), and each touches one row, so SQLite keeps no
    // statement journal to undo a statement alone. Statements over the whole batch had to
    // be compiled for each batch (their text depends on its size) and journalled: a sixth
    // of the committing thread's CPU (BENCHMARKS.md, issue 14, sixth round).
    let mut store_token = txn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, used_at) \
         VALUES (?1, ?2, ?3, NULL)",
    )?;
    let mut record_jti = txn.prepare_cached(
        "INSERT INTO family_access_tokens (jti, family_id, expires_at) VALUES (?1, ?2, ?3)",
    )?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        // The first job presenting a token or a code that was unused wins it (as through
        // sqlx); any later one, in this batch or another, finds it used.
        let won = match &job.work {
            Work::Rotation {
                presented_hash,
                successor_hash,
            } => {
                let won = txn
                    .prepare_cached(
                        "UPDATE refresh_tokens SET used_at = ?1 \
                         WHERE token_hash = ?2 AND used_at IS NULL",
                    )?
                    .execute((&now, presented_hash))?
                    == 1;
                if won {
                    store_token.execute((successor_hash, &job.family_id, &now))?;
                }
                won
            }
            Work::Login {
                family,
                first_token_hash,
                code_hash,
            } => {
                let won = match code_hash {
                    Some(code_hash) => {
                        txn.prepare_cached(
                            "UPDATE authorization_codes SET used_at = ?1, family_id = ?2 \
                             WHERE code_hash = ?3 AND used_at IS NULL AND expires_at > ?1",
                        )?
                        .execute((&now, &job.family_id, code_hash))?
                            == 1
                    }
                    None => true,
                };
                if won {
                    store_family(txn, family)?;
                    if let Some(hash) = first_token_hash {
                        let created_at = sqlx_datetime_text(family.created_at);
                        store_token.execute((hash, &job.family_id, created_at))?;
                    }
                }
                won
            }
        };
        if won {
            record_jti.execute((
                &job.jti,
                &job.family_id,
                sqlx_datetime_text(job.access_expires_at),
            ))?;
        }
        outcomes.push(won);
    }
    Ok(outcomes)
}

/// The INSERT sea-orm makes of the login's row.
fn store_family(
    txn: &rusqlite::Transaction<'_>,
    family: &refresh_families::Model,
) -> rusqlite::Result<()> {
    txn.prepare_cached(
        "INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at, \
         revoked_at, sid, auth_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)",
    )?
    .execute((
        &family.id,
        &family.user_id,
        &family.client_id,
        &family.scope,
        sqlx_datetime_text(family.created_at),
        sqlx_datetime_text(family.expires_at),
        &family.sid,
        family.auth_time.map(sqlx_datetime_text),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_locked_past_the_busy_timeout_fails_the_batch_at_begin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // Another writer (say, an admin command) holds the write lock.
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x);
                 BEGIN IMMEDIATE; INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();

        let (_jobs, mut queue) = mpsc::channel(1);
        let outcome = commit(&mut conn, &mut Vec::new(), &mut queue);

        // Final (503), not left for sqlx to wait out the same lock again.
        let error = outcome.expect_err("an outage at BEGIN fails the batch");
        assert!(db_outage::is_outage(error.as_ref()), "{error:#}");
    }
}
