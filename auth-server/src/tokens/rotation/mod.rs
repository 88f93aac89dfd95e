//! Refresh-token rotations and login starts, with group commit.
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
//! is as durable as before. If one job breaks a constraint, the batch is retried job by
//! job so that it fails alone; any other failure fails the whole batch
//! (500, or 503 when the database is unavailable), since after a failed COMMIT nobody
//! knows whether the batch was stored. The task owns nothing but the pool, so it outlives
//! an outage and commits again once the pool has reconnected.
//!
//! A requester hands its rotation over ([`Rotator::start`]) before it signs the new access
//! token, and waits for the COMMIT after signing: the signature takes a core, the COMMIT
//! mostly waits for the disk, and neither needs the other.
//!
//! The same task starts the logins of the password and authorization-code grants (a
//! login, its first refresh token and its access token's `jti`, after using up the code
//! when there is one, by the conditional UPDATE of `codes::use_once`): the same kind of
//! small transaction, committed in the same batches, with the same answer after the
//! COMMIT. A browser sign-in's code exchange took six round trips to the writer for it.
//! In the rest of this module a "job" is either.
//!
//! On SQLite the batches do not go through sqlx statement by statement (see [`handle`]):
//! the task locks the writer connection's handle and commits on it through rusqlite,
//! batch after batch while rotations keep arriving, with the same one-row statements for
//! each rotation (cheaper there than statements over the batch, which SQLite would compile
//! for each batch size). On PostgreSQL, and for a batch that failed there before its
//! COMMIT, the statements above go through sea-orm.

mod handle;
mod through_sqlx;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use sqlite_readers::rusqlite;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::refresh::{self, NewLogin, RefreshToken};
use crate::entities::refresh_families;

/// Rotations and logins committed together at most. A batch grows only while jobs wait,
/// so under light load each one commits alone, as soon as it arrives.
const MAX_BATCH: usize = 128;

/// How a rotation ended.
#[derive(Debug)]
pub enum Rotated {
    /// The presented token was unused; here is its successor.
    Next(RefreshToken),
    /// Someone used the presented token first: reuse.
    AlreadyUsed,
}

/// How a login start ended.
#[derive(Debug)]
pub enum Started {
    /// The login is stored, with its first refresh token if the client may refresh.
    Login(Option<RefreshToken>),
    /// Someone used the code first: nothing was stored.
    CodeAlreadyUsed,
}

struct Job {
    family_id: String,
    jti: String,
    access_expires_at: DateTime<Utc>,
    work: Work,
    reply: oneshot::Sender<anyhow::Result<bool>>,
}

/// What a job stores besides its access token's `jti`. A job "wins" (answers `true`) when
/// its token or code was unused; a job that does not win stores nothing.
enum Work {
    /// Marks the presented token used and stores its successor.
    Rotation {
        presented_hash: String,
        successor_hash: String,
    },
    /// Uses up the code, if the login comes with one, then stores the login and its first
    /// refresh token, if any.
    Login {
        family: refresh_families::Model,
        first_token_hash: Option<String>,
        code_hash: Option<String>,
    },
}

impl Job {
    fn presented_hash(&self) -> Option<&str> {
        match &self.work {
            Work::Rotation { presented_hash, .. } => Some(presented_hash),
            Work::Login { .. } => None,
        }
    }
}

/// The jobs waiting for the task, shared with the blocking thread that commits on
/// SQLite's handle (it takes the batches that arrive while it commits).
type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Hands rotations and login starts to the task that commits them; cheap to clone.
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

/// A login start handed to the committing task; [`PendingLogin::outcome`] waits for it.
/// Dropped before the task takes it into a batch, nothing is stored (its code stays
/// unused); dropped later, the login stands, as after a lost response.
#[derive(Debug)]
pub struct PendingLogin {
    first_token: Option<RefreshToken>,
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
        let work = Work::Rotation {
            presented_hash: presented_hash.to_owned(),
            successor_hash: successor.hash(),
        };
        let answer = self.hand_over(family_id, jti, exp, work).await?;
        Ok(PendingRotation { successor, answer })
    }

    /// Hands over the start of `login` (with its first refresh token when
    /// `with_refresh_token`), recording the access token `jti` (expiring at `exp`) under
    /// it. With `code_hash`, the code is used up in the same transaction, and the login is
    /// stored only if the code was still unused.
    pub async fn start_login(
        &self,
        login: NewLogin<'_>,
        with_refresh_token: bool,
        code_hash: Option<&str>,
        jti: &str,
        exp: i64,
    ) -> anyhow::Result<PendingLogin> {
        let first_token = with_refresh_token
            .then(RefreshToken::generate)
            .transpose()?;
        let work = Work::Login {
            family: refresh::family_row(login)?,
            first_token_hash: first_token.as_ref().map(RefreshToken::hash),
            code_hash: code_hash.map(str::to_owned),
        };
        let answer = self.hand_over(login.id, jti, exp, work).await?;
        Ok(PendingLogin {
            first_token,
            answer,
        })
    }

    async fn hand_over(
        &self,
        family_id: &str,
        jti: &str,
        exp: i64,
        work: Work,
    ) -> anyhow::Result<oneshot::Receiver<anyhow::Result<bool>>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            family_id: family_id.to_owned(),
            jti: jti.to_owned(),
            access_expires_at: DateTime::from_timestamp(exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
            work,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the token committing task has stopped"))?;
        Ok(answer)
    }
}

/// Whether the job of `answer` won; answers after its COMMIT.
async fn won(answer: oneshot::Receiver<anyhow::Result<bool>>) -> anyhow::Result<bool> {
    answer
        .await
        .map_err(|_| anyhow::anyhow!("the token committing task dropped a job"))?
}

impl PendingRotation {
    /// How the rotation ended; answers after its COMMIT.
    pub async fn outcome(self) -> anyhow::Result<Rotated> {
        Ok(if won(self.answer).await? {
            Rotated::Next(self.successor)
        } else {
            Rotated::AlreadyUsed
        })
    }
}

impl PendingLogin {
    /// How the login start ended; answers after its COMMIT.
    pub async fn outcome(self) -> anyhow::Result<Started> {
        Ok(if won(self.answer).await? {
            Started::Login(self.first_token)
        } else {
            Started::CodeAlreadyUsed
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
        through_sqlx::commit_and_answer(&writer, &mut batch).await;
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
        // Gone since the commit: its job stands, as it would have for a lost
        // response.
        let _ = job.reply.send(Ok(rotated));
    }
}

/// Fails every job of `batch` with the failure of the database `e`.
fn fail(batch: &mut Vec<Job>, e: &anyhow::Error) {
    tracing::error!(error = ?e, jobs = batch.len(), "token transaction failed");
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(failed(e)));
    }
}

/// What each job of a failed batch is answered. One error cannot go to many
/// requesters, but its database error can be copied, so that each answer is still
/// recognised as an outage where it is mapped to a status.
fn failed(e: &anyhow::Error) -> anyhow::Error {
    const FAILED: &str = "token transaction failed";
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

#[cfg(test)]
mod tests;
