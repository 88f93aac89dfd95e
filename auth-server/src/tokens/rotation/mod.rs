//! Refresh-token rotation with group commit.
//!
//! A rotation is a small transaction: mark the presented token used (only if it still is
//! unused: of two concurrent uses exactly one wins), store its successor, and record the
//! new access token's `jti` under the login so that revoking the login revokes it. Done one
//! by one, each rotation costs five round trips to the database (BEGIN, three statements,
//! COMMIT) while holding SQLite's only writer connection, and rotations queue behind each
//! other.
//!
//! Here one task owns the rotations. It takes every rotation that is waiting and commits
//! them together in one transaction: one UPDATE … RETURNING marks all the presented tokens
//! used and says which were still unused, then one multi-row INSERT stores the successors
//! and one the `jti`s. Nothing is answered before the COMMIT, so an acknowledged rotation
//! is as durable as before. If one rotation breaks a constraint, the batch is retried
//! rotation by rotation so that it fails alone; any other failure fails the whole batch
//! (500, or 503 when the database is unavailable), since after a failed COMMIT nobody
//! knows whether the batch was stored. The task owns nothing but the pool, so it outlives
//! an outage and commits again once the pool has reconnected.
//!
//! A requester hands its rotation over ([`Rotator::start`]) before it signs the new access
//! token, and waits for the COMMIT after signing: the signature takes a core, the COMMIT
//! mostly waits for the disk, and neither needs the other.
//!
//! On SQLite the batches do not go through sqlx statement by statement (see [`handle`]):
//! the task locks the writer connection's handle and commits on it through rusqlite,
//! batch after batch while rotations keep arriving, with the same one-row statements for
//! each rotation (cheaper there than statements over the batch, which SQLite would compile
//! for each batch size). On PostgreSQL, and for a batch that failed there before its
//! COMMIT, the statements above go through sea-orm.

mod handle;

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Set,
    TransactionTrait,
    sea_query::{Expr, Query},
};
use sqlite_readers::rusqlite;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::refresh::RefreshToken;
use crate::entities::{family_access_tokens, refresh_tokens};

/// Rotations committed together at most. A batch grows only while rotations wait, so
/// under light load each rotation commits alone, as soon as it arrives.
const MAX_BATCH: usize = 128;

/// How a rotation ended.
#[derive(Debug)]
pub enum Rotated {
    /// The presented token was unused; here is its successor.
    Next(RefreshToken),
    /// Someone used the presented token first: reuse.
    AlreadyUsed,
}

struct Job {
    presented_hash: String,
    family_id: String,
    successor_hash: String,
    jti: String,
    access_expires_at: DateTime<Utc>,
    reply: oneshot::Sender<anyhow::Result<bool>>,
}

/// The rotations waiting for the task, shared with the blocking thread that commits on
/// SQLite's handle (it takes the batches that arrive while it commits).
type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Hands rotations to the task that commits them; cheap to clone.
#[derive(Debug, Clone)]
pub struct Rotator {
    jobs: mpsc::Sender<Job>,
}

/// A rotation handed to the committing task; [`PendingRotation::outcome`] waits for it.
/// Dropped before the task takes it into a batch, the rotation is left out: the presented
/// token stays unused. Dropped later, the rotation stands, as after a lost response.
#[derive(Debug)]
pub struct PendingRotation {
    successor: RefreshToken,
    answer: oneshot::Receiver<anyhow::Result<bool>>,
}

impl Rotator {
    /// Starts the committing task on `writer`. It ends when the last `Rotator` is dropped.
    pub fn spawn(writer: DatabaseConnection) -> Self {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_batches(writer, queue));
        Self { jobs }
    }

    /// Hands over the rotation of the token whose hash is `presented_hash` in login
    /// `family_id`, recording the access token `jti` (expiring at `exp`, seconds since the
    /// epoch) under the login. It is committed while the caller goes on.
    pub async fn start(
        &self,
        presented_hash: &str,
        family_id: &str,
        jti: &str,
        exp: i64,
    ) -> anyhow::Result<PendingRotation> {
        let successor = RefreshToken::generate()?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            presented_hash: presented_hash.to_owned(),
            family_id: family_id.to_owned(),
            successor_hash: successor.hash(),
            jti: jti.to_owned(),
            access_expires_at: DateTime::from_timestamp(exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the rotation task has stopped"))?;
        Ok(PendingRotation { successor, answer })
    }
}

impl PendingRotation {
    /// How the rotation ended; answers after its COMMIT.
    pub async fn outcome(self) -> anyhow::Result<Rotated> {
        let rotated = self
            .answer
            .await
            .map_err(|_| anyhow::anyhow!("the rotation task dropped a rotation"))??;
        Ok(if rotated {
            Rotated::Next(self.successor)
        } else {
            Rotated::AlreadyUsed
        })
    }
}

async fn commit_batches(writer: DatabaseConnection, queue: mpsc::Receiver<Job>) {
    let queue: Queue = Arc::new(Mutex::new(queue));
    let on_sqlite = writer.get_database_backend() == DbBackend::Sqlite;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if queue.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        if on_sqlite {
            batch = handle::commit_while_waiting(&writer, &queue, batch).await;
        }
        commit_through_sqlx_and_answer(&writer, &mut batch).await;
    }
}

/// A requester that went away while waiting (the client gave up) must not use its token:
/// it would never see the successor, and its retry would look like reuse.
fn drop_abandoned(batch: &mut Vec<Job>) {
    batch.retain(|job| !job.reply.is_closed());
}

/// Answers every job of `batch` with its outcome.
fn answer(batch: &mut Vec<Job>, outcomes: Vec<bool>) {
    for (job, rotated) in batch.drain(..).zip(outcomes) {
        // Gone since the commit: its rotation stands, as it would have for a lost
        // response.
        let _ = job.reply.send(Ok(rotated));
    }
}

/// Fails every job of `batch` with the failure of the database `e`.
fn fail(batch: &mut Vec<Job>, e: &anyhow::Error) {
    tracing::error!(error = ?e, rotations = batch.len(), "refresh rotation failed");
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(failed(e)));
    }
}

/// Commits `batch` through sea-orm and answers each job.
async fn commit_through_sqlx_and_answer(writer: &DatabaseConnection, batch: &mut Vec<Job>) {
    drop_abandoned(batch);
    if batch.is_empty() {
        return;
    }
    match commit_through_sqlx(writer, batch).await {
        Ok(outcomes) => answer(batch, outcomes),
        // A failure of the database, not of one rotation; possibly of the COMMIT itself,
        // after which nobody can tell whether the batch was stored, so retrying could
        // answer "already used" (reuse!) for tokens this very batch used. Every rotation
        // fails (500, or 503 in an outage) and its client may try again.
        Err(e) if !e.is::<Conflict>() || batch.len() == 1 => fail(batch, &e),
        Err(e) => {
            // One rotation broke a constraint before the COMMIT, so nothing was stored:
            // retry each alone, so that it fails alone.
            tracing::warn!(error = ?e, rotations = batch.len(), "refresh rotation batch failed");
            for job in batch.drain(..) {
                let outcome = match commit_through_sqlx(writer, std::slice::from_ref(&job)).await {
                    Ok(outcomes) => Ok(outcomes[0]),
                    Err(e) => {
                        tracing::error!(error = ?e, "refresh rotation failed");
                        Err(failed(&e))
                    }
                };
                let _ = job.reply.send(outcome);
            }
        }
    }
}

/// What each rotation of a failed batch is answered. One error cannot go to many
/// requesters, but its database error can be copied, so that each answer is still
/// recognised as an outage where it is mapped to a status.
fn failed(e: &anyhow::Error) -> anyhow::Error {
    const FAILED: &str = "refresh rotation failed";
    for cause in e.chain() {
        if let Some(db) = cause.downcast_ref::<DbErr>() {
            return anyhow::Error::new(db.clone()).context(FAILED);
        }
        if let Some(rusqlite::Error::SqliteFailure(code, message)) =
            cause.downcast_ref::<rusqlite::Error>()
        {
            let copy = rusqlite::Error::SqliteFailure(*code, message.clone());
            return anyhow::Error::new(copy).context(FAILED);
        }
    }
    anyhow::anyhow!(FAILED)
}

/// A statement of the batch broke a constraint (say, the login was purged meanwhile):
/// one rotation is at fault, not the database.
#[derive(Debug, thiserror::Error)]
#[error("a rotation broke a constraint: {0}")]
struct Conflict(sea_orm::DbErr);

fn conflict(e: sea_orm::DbErr) -> anyhow::Error {
    use sea_orm::SqlErr;
    match e.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_) | SqlErr::UniqueConstraintViolation(_)) => {
            Conflict(e).into()
        }
        _ => e.into(),
    }
}

/// One transaction for the whole batch through sea-orm; says for each job whether it won
/// its token.
async fn commit_through_sqlx(
    writer: &DatabaseConnection,
    batch: &[Job],
) -> anyhow::Result<Vec<bool>> {
    let now = Utc::now();
    let txn = writer.begin().await?;
    let presented: HashSet<&str> = batch.iter().map(|j| j.presented_hash.as_str()).collect();
    let update = Query::update()
        .table(refresh_tokens::Entity)
        .value(refresh_tokens::Column::UsedAt, Expr::value(now))
        .and_where(refresh_tokens::Column::TokenHash.is_in(presented.iter().copied()))
        .and_where(refresh_tokens::Column::UsedAt.is_null())
        .returning_col(refresh_tokens::Column::TokenHash)
        .to_owned();
    let statement = txn.get_database_backend().build(&update);
    let mut unused: HashSet<String> = HashSet::with_capacity(batch.len());
    for row in txn.query_all_raw(statement).await? {
        unused.insert(row.try_get::<String>("", "token_hash")?);
    }
    // The first job presenting a token that was unused wins it; any other job presenting
    // the same token in this batch, like any later one, finds it used.
    let outcomes: Vec<bool> = batch
        .iter()
        .map(|job| unused.remove(&job.presented_hash))
        .collect();
    let winners = || batch.iter().zip(&outcomes).filter(|(_, won)| **won);
    if winners().next().is_some() {
        refresh_tokens::Entity::insert_many(winners().map(|(job, _)| {
            refresh_tokens::ActiveModel {
                token_hash: Set(job.successor_hash.clone()),
                family_id: Set(job.family_id.clone()),
                created_at: Set(now),
                used_at: Set(None),
            }
        }))
        .exec_without_returning(&txn)
        .await
        .map_err(conflict)?;
        family_access_tokens::Entity::insert_many(winners().map(|(job, _)| {
            family_access_tokens::ActiveModel {
                jti: Set(job.jti.clone()),
                family_id: Set(job.family_id.clone()),
                expires_at: Set(job.access_expires_at),
            }
        }))
        .exec_without_returning(&txn)
        .await
        .map_err(conflict)?;
    }
    txn.commit().await?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests;
