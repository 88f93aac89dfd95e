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
//! them together in one transaction of the same five round trips: one UPDATE … RETURNING
//! marks all the presented tokens used and says which were still unused, then one
//! multi-row INSERT stores the successors and one the `jti`s. Nothing is answered before
//! the COMMIT, so an acknowledged rotation is as durable as before. If one rotation breaks
//! a constraint, the batch is retried rotation by rotation so that it fails alone; any
//! other failure fails the whole batch (500, or 503 when the database is unavailable),
//! since after a failed COMMIT nobody knows whether the batch was stored. The task owns
//! nothing but the pool, so it outlives an outage and commits again once the pool has
//! reconnected.
//!
//! On SQLite the batch's statements do not go through sqlx one by one: each would be a
//! round trip to sqlx's connection thread, and together they were most of that thread's
//! CPU under a refresh load. The task takes the writer connection from its pool, locks its
//! handle (sqlx's thread waits meanwhile) and runs the whole transaction through rusqlite
//! on a thread of the blocking pool: one hand-off per batch instead of five. Anything that
//! fails before the COMMIT is rolled back, and the batch is committed again through sqlx,
//! which gives every failure its usual meaning (a broken constraint, an outage); a failed
//! COMMIT fails the batch, as above.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, RuntimeErr, Set, TransactionTrait,
    sea_query::{Expr, Query},
    sqlx,
};
use sqlite_readers::{rusqlite, sqlx_datetime_text};
use tokio::sync::{mpsc, oneshot};

use super::{IssuedAccessToken, refresh::RefreshToken};
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
    successor: RefreshToken,
    successor_hash: String,
    jti: String,
    access_expires_at: DateTime<Utc>,
    reply: oneshot::Sender<anyhow::Result<bool>>,
}

/// Hands rotations to the task that commits them; cheap to clone.
#[derive(Debug, Clone)]
pub struct Rotator {
    jobs: mpsc::Sender<Job>,
}

impl Rotator {
    /// Starts the committing task on `writer`. It ends when the last `Rotator` is dropped.
    pub fn spawn(writer: DatabaseConnection) -> Self {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_batches(writer, queue));
        Self { jobs }
    }

    /// Rotates the token whose hash is `presented_hash` in login `family_id`, recording
    /// `access` under the login. Answers after the commit.
    pub async fn rotate(
        &self,
        presented_hash: &str,
        family_id: &str,
        access: &IssuedAccessToken,
    ) -> anyhow::Result<Rotated> {
        let successor = RefreshToken::generate()?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            presented_hash: presented_hash.to_owned(),
            family_id: family_id.to_owned(),
            successor_hash: successor.hash(),
            successor,
            jti: access.claims.jti.clone(),
            access_expires_at: DateTime::from_timestamp(access.claims.exp, 0)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            reply,
        };
        let successor = job.successor.clone();
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the rotation task has stopped"))?;
        let rotated = answer
            .await
            .map_err(|_| anyhow::anyhow!("the rotation task dropped a rotation"))??;
        Ok(if rotated {
            Rotated::Next(successor)
        } else {
            Rotated::AlreadyUsed
        })
    }
}

async fn commit_batches(writer: DatabaseConnection, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A request that went away while waiting (the client gave up) must not use its
        // token: it would never see the successor, and its retry would look like reuse.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        match commit(&writer, &batch).await {
            Ok(outcomes) => {
                for (job, rotated) in batch.drain(..).zip(outcomes) {
                    // Gone since the commit: its rotation stands, as it would have for a
                    // lost response.
                    let _ = job.reply.send(Ok(rotated));
                }
            }
            Err(e) if !e.is::<Conflict>() || batch.len() == 1 => {
                // A failure of the database, not of one rotation; possibly of the COMMIT
                // itself, after which nobody can tell whether the batch was stored, so
                // retrying could answer "already used" (reuse!) for tokens this very batch
                // used. Every rotation fails (500, or 503 in an outage) and its client may
                // try again.
                tracing::error!(error = ?e, rotations = batch.len(), "refresh rotation failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(failed(&e)));
                }
            }
            Err(e) => {
                // One rotation broke a constraint before the COMMIT, so nothing was stored:
                // retry each alone, so that it fails alone.
                tracing::warn!(error = ?e, rotations = batch.len(), "refresh rotation batch failed");
                for job in batch.drain(..) {
                    let outcome = match commit(&writer, std::slice::from_ref(&job)).await {
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

/// One transaction for the whole batch; says for each job whether it won its token.
async fn commit(writer: &DatabaseConnection, batch: &[Job]) -> anyhow::Result<Vec<bool>> {
    if writer.get_database_backend() != DbBackend::Sqlite {
        return commit_through_sqlx(writer, batch).await;
    }
    match commit_on_sqlite_handle(writer, batch).await? {
        Ok(outcomes) => Ok(outcomes),
        Err(e) => {
            // Rolled back: nothing of the batch is stored.
            tracing::debug!(error = %e, "synchronous rotation failed, committing through sqlx");
            commit_through_sqlx(writer, batch).await
        }
    }
}

/// The failure of a synchronous batch before its COMMIT: rolled back, so it may be
/// committed again another way.
type RolledBack = anyhow::Error;

/// [`commit`] through rusqlite on the writer connection's own handle. The outer error is
/// final (no connection, or the COMMIT failed); the inner one was rolled back.
async fn commit_on_sqlite_handle(
    writer: &DatabaseConnection,
    batch: &[Job],
) -> anyhow::Result<Result<Vec<bool>, RolledBack>> {
    let mut connection = writer
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(acquire_failed)?;
    let rows = Rows::of(batch);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut handle = match runtime.block_on(connection.lock_handle()) {
            Ok(handle) => handle,
            Err(e) => return Ok(Err(anyhow::Error::new(e).context("locking the writer"))),
        };
        // SAFETY: while `handle` lives, sqlx makes no call on this connection; the
        // rusqlite `Connection` does not close it, finalises its statements when dropped,
        // and is dropped before `handle`.
        let mut conn =
            match unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
                Ok(conn) => conn,
                Err(e) => return Ok(Err(e.into())),
            };
        let outcome = rows.commit(&mut conn);
        drop(conn);
        outcome
    })
    .await?
}

/// sea-orm's reading of a failure to take a connection from the pool, so that a timeout is
/// an outage as it is everywhere else.
fn acquire_failed(e: sqlx::Error) -> DbErr {
    match e {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(RuntimeErr::SqlxError(e.into())),
    }
}

/// What a batch writes, owned, for the blocking thread.
struct Rows {
    now: String,
    presented: Vec<String>,
    /// Per job: presented token, successor, login, `jti`, access token's expiry.
    jobs: Vec<[String; 5]>,
}

impl Rows {
    fn of(batch: &[Job]) -> Self {
        let presented: HashSet<&str> = batch.iter().map(|j| j.presented_hash.as_str()).collect();
        Self {
            now: sqlx_datetime_text(Utc::now()),
            presented: presented.into_iter().map(str::to_owned).collect(),
            jobs: batch
                .iter()
                .map(|job| {
                    [
                        job.presented_hash.clone(),
                        job.successor_hash.clone(),
                        job.family_id.clone(),
                        job.jti.clone(),
                        sqlx_datetime_text(job.access_expires_at),
                    ]
                })
                .collect(),
        }
    }

    /// The statements of [`commit_through_sqlx`], in one IMMEDIATE transaction.
    fn commit(
        &self,
        conn: &mut rusqlite::Connection,
    ) -> anyhow::Result<Result<Vec<bool>, RolledBack>> {
        let txn = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(txn) => txn,
            Err(e) => return Ok(Err(e.into())),
        };
        let outcomes = match self.write(&txn) {
            Ok(outcomes) => outcomes,
            // Dropping `txn` rolls the batch back.
            Err(e) => return Ok(Err(e.into())),
        };
        // A failed COMMIT is rolled back too when `txn` drops, if SQLite left it open;
        // but whether the batch reached the disk is not known: it fails (see the module).
        txn.commit()?;
        Ok(Ok(outcomes))
    }

    fn write(&self, txn: &rusqlite::Transaction<'_>) -> rusqlite::Result<Vec<bool>> {
        let placeholders = |row: &str, rows: usize| vec![row; rows].join(", ");
        let mut update = txn.prepare(&format!(
            "UPDATE refresh_tokens SET used_at = ? WHERE token_hash IN ({}) \
             AND used_at IS NULL RETURNING token_hash",
            placeholders("?", self.presented.len())
        ))?;
        let params = std::iter::once(&self.now).chain(&self.presented);
        let mut unused: HashSet<String> = HashSet::with_capacity(self.jobs.len());
        let mut returned = update.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = returned.next()? {
            unused.insert(row.get(0)?);
        }
        drop(returned);
        let outcomes: Vec<bool> = self.jobs.iter().map(|job| unused.remove(&job[0])).collect();
        let winners: Vec<&[String; 5]> = self
            .jobs
            .iter()
            .zip(&outcomes)
            .filter_map(|(job, won)| won.then_some(job))
            .collect();
        if !winners.is_empty() {
            txn.prepare(&format!(
                "INSERT INTO refresh_tokens (token_hash, family_id, created_at, used_at) \
                 VALUES {}",
                placeholders("(?, ?, ?, NULL)", winners.len())
            ))?
            .execute(rusqlite::params_from_iter(
                winners.iter().flat_map(|job| [&job[1], &job[2], &self.now]),
            ))?;
            txn.prepare(&format!(
                "INSERT INTO family_access_tokens (jti, family_id, expires_at) VALUES {}",
                placeholders("(?, ?, ?)", winners.len())
            ))?
            .execute(rusqlite::params_from_iter(
                winners.iter().flat_map(|job| [&job[3], &job[2], &job[4]]),
            ))?;
        }
        Ok(outcomes)
    }
}

/// [`commit`] through sea-orm: on PostgreSQL, and on SQLite after a synchronous batch
/// failed before its COMMIT.
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
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::{
        domain::ScopeSet,
        keys::{KeyFiles, KeyPolicy, KeyStore},
        tokens::{AccessTokenIssuer, refresh},
    };

    async fn setup() -> (tempfile::TempDir, DatabaseConnection, AccessTokenIssuer) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::open(&url, 2).await.unwrap().writer;
        let keys = Arc::new(
            KeyStore::open(
                Arc::new(KeyFiles::new(dir.path().join("keys"))),
                KeyPolicy {
                    bits: 2048,
                    publish_lead: Duration::from_secs(360),
                    max_token_lifetime: Duration::from_secs(60),
                    rotate_every: None,
                },
            )
            .await
            .unwrap(),
        );
        let issuer = AccessTokenIssuer::new(
            "http://issuer".into(),
            "aud".into(),
            Duration::from_secs(60),
            keys,
        );
        (dir, db, issuer)
    }

    /// A new login and its first refresh token.
    async fn login(db: &DatabaseConnection) -> (String, RefreshToken) {
        let id = uuid::Uuid::new_v4().to_string();
        let login = refresh::NewLogin {
            id: &id,
            user_id: "u",
            client_id: "c",
            scope: "posts:read",
            lifetime: Duration::from_secs(600),
            sid: None,
            auth_time: Utc::now(),
        };
        let (family, token) = refresh::start_family(db, login, true).await.unwrap();
        (family.id, token.unwrap())
    }

    /// A rotation of `token` in `family_id`, answering on `reply`.
    fn job(
        token_hash: String,
        family_id: &str,
        jti: &str,
        reply: oneshot::Sender<anyhow::Result<bool>>,
    ) -> Job {
        let successor = RefreshToken::generate().unwrap();
        Job {
            presented_hash: token_hash,
            family_id: family_id.to_owned(),
            successor_hash: successor.hash(),
            successor,
            jti: jti.into(),
            access_expires_at: Utc::now(),
            reply,
        }
    }

    /// Whether a token with this hash is stored and unused (`None`: not stored).
    async fn unused(db: &DatabaseConnection, hash: String) -> Option<bool> {
        refresh_tokens::Entity::find_by_id(hash)
            .one(db)
            .await
            .unwrap()
            .map(|row| row.used_at.is_none())
    }

    #[tokio::test]
    async fn one_of_many_concurrent_uses_of_a_token_wins_and_each_winner_gets_a_successor() {
        let (_dir, db, issuer) = setup().await;
        let scope = ScopeSet::parse("posts:read").unwrap();
        let (family, first) = login(&db).await;
        let (other_family, other) = login(&db).await;
        let rotator = Rotator::spawn(db.clone());
        let access = issuer.issue("u", "c", &scope).await.unwrap();
        // Ten uses of `first` and one of `other`, all at once: they share batches.
        let mut uses = Vec::new();
        for i in 0..11 {
            let (hash, family_id) = if i == 5 {
                (other.hash(), other_family.clone())
            } else {
                (first.hash(), family.clone())
            };
            let rotator = rotator.clone();
            let mut access = access.clone();
            access.claims.jti = format!("jti-{i}");
            uses.push(tokio::spawn(async move {
                rotator.rotate(&hash, &family_id, &access).await.unwrap()
            }));
        }
        let mut winners = Vec::new();
        for (i, handle) in uses.into_iter().enumerate() {
            if let Rotated::Next(next) = handle.await.unwrap() {
                winners.push((i, next));
            }
        }
        assert_eq!(winners.len(), 2, "one winner per token");
        assert!(winners.iter().any(|(i, _)| *i == 5));
        for (_, next) in &winners {
            assert_eq!(unused(&db, next.hash()).await, Some(true));
        }
        let recorded = family_access_tokens::Entity::find().all(&db).await.unwrap();
        assert_eq!(recorded.len(), 2, "only winners record their access token");
        // A used token stays used.
        let again = rotator.rotate(&first.hash(), &family, &access).await;
        assert!(matches!(again, Ok(Rotated::AlreadyUsed)));
    }

    #[tokio::test]
    async fn a_failing_rotation_fails_alone() {
        let (_dir, db, issuer) = setup().await;
        let (family, token) = login(&db).await;
        let (_, victim) = login(&db).await;
        let rotator = Rotator::spawn(db.clone());
        let scope = ScopeSet::parse("posts:read").unwrap();
        let access = issuer.issue("u", "c", &scope).await.unwrap();
        let mut other = access.clone();
        other.claims.jti = "other".into();
        let (victim_hash, token_hash) = (victim.hash(), token.hash());
        // A successor in a login that does not exist: its foreign key fails, and with it
        // the batch it shares.
        let (bad, good) = tokio::join!(
            rotator.rotate(&victim_hash, "no-such-login", &access),
            rotator.rotate(&token_hash, &family, &other),
        );
        assert!(bad.is_err());
        assert!(matches!(good, Ok(Rotated::Next(_))));
        assert_eq!(unused(&db, victim_hash).await, Some(true));
    }

    #[tokio::test]
    async fn a_rotation_whose_requester_left_does_not_use_its_token() {
        let (_dir, db, _issuer) = setup().await;
        let (family, token) = login(&db).await;
        let (reply, answer) = oneshot::channel();
        drop(answer);
        let (jobs, queue) = mpsc::channel(4);
        jobs.send(job(token.hash(), &family, "gone", reply))
            .await
            .unwrap();
        drop(jobs);
        commit_batches(db.clone(), queue).await;
        assert_eq!(unused(&db, token.hash()).await, Some(true));
    }

    /// The stored text of one column of one row.
    async fn stored_text(db: &DatabaseConnection, sql: &str, key: &str) -> String {
        let statement =
            sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, [key.into()]);
        let row = db.query_one_raw(statement).await.unwrap().unwrap();
        row.try_get_by_index::<String>(0).unwrap()
    }

    #[tokio::test]
    async fn the_synchronous_batch_stores_what_the_sqlx_batch_stores() {
        let (_dir, db, _issuer) = setup().await;
        let (family, first) = login(&db).await;
        let (other_family, second) = login(&db).await;
        let ours = job(first.hash(), &family, "ours", oneshot::channel().0);
        let theirs = job(second.hash(), &other_family, "theirs", oneshot::channel().0);

        let outcome = commit_on_sqlite_handle(&db, std::slice::from_ref(&ours)).await;
        assert_eq!(outcome.unwrap().unwrap(), [true]);
        assert_eq!(
            commit_through_sqlx(&db, std::slice::from_ref(&theirs))
                .await
                .unwrap(),
            [true]
        );

        // Read back through sea-orm alike: the presented tokens used, the successors not.
        for job in [&ours, &theirs] {
            assert_eq!(unused(&db, job.presented_hash.clone()).await, Some(false));
            assert_eq!(unused(&db, job.successor_hash.clone()).await, Some(true));
        }
        let recorded = family_access_tokens::Entity::find().all(&db).await.unwrap();
        assert_eq!(recorded.len(), 2);
        // And stored in sqlx's own text layout, which the synchronous readers and every
        // comparison in SQL rely on.
        for (sql, key) in [
            (
                "SELECT used_at FROM refresh_tokens WHERE token_hash = ?",
                &theirs.presented_hash,
            ),
            (
                "SELECT created_at FROM refresh_tokens WHERE token_hash = ?",
                &theirs.successor_hash,
            ),
            (
                "SELECT expires_at FROM family_access_tokens WHERE jti = ?",
                &theirs.jti,
            ),
        ] {
            let text = stored_text(&db, sql, key).await;
            let time = DateTime::parse_from_rfc3339(&text).unwrap().to_utc();
            assert_eq!(sqlx_datetime_text(time), text, "{sql}");
        }
        assert_eq!(
            stored_text(
                &db,
                "SELECT expires_at FROM family_access_tokens WHERE jti = ?",
                "ours"
            )
            .await,
            sqlx_datetime_text(ours.access_expires_at)
        );
    }

    #[tokio::test]
    async fn a_synchronous_batch_that_fails_is_rolled_back_and_committed_through_sqlx() {
        let (_dir, db, _issuer) = setup().await;
        let (family, token) = login(&db).await;
        // The successor's login does not exist: its foreign key fails after the UPDATE.
        let orphan = job(
            token.hash(),
            "no-such-login",
            "orphan",
            oneshot::channel().0,
        );

        let outcome = commit_on_sqlite_handle(&db, std::slice::from_ref(&orphan)).await;

        // Rolled back (the token is still unused) and the connection is out of the
        // transaction: sqlx commits on it, and reads the constraint as a conflict.
        assert!(outcome.unwrap().is_err());
        assert_eq!(unused(&db, token.hash()).await, Some(true));
        let through_commit = commit(&db, std::slice::from_ref(&orphan)).await;
        assert!(through_commit.unwrap_err().is::<Conflict>());
        let fine = job(token.hash(), &family, "fine", oneshot::channel().0);
        assert_eq!(commit(&db, &[fine]).await.unwrap(), [true]);
        assert_eq!(unused(&db, token.hash()).await, Some(false));
    }

    #[tokio::test]
    async fn within_one_batch_the_first_use_of_a_token_wins() {
        let (_dir, db, _issuer) = setup().await;
        let (family, token) = login(&db).await;
        let use_of = |jti: &str| job(token.hash(), &family, jti, oneshot::channel().0);
        let batch = [use_of("a"), use_of("b"), use_of("c")];
        assert_eq!(commit(&db, &batch).await.unwrap(), [true, false, false]);
        assert_eq!(commit(&db, &[use_of("d")]).await.unwrap(), [false]);
        assert_eq!(
            unused(&db, batch[0].successor_hash.clone()).await,
            Some(true)
        );
        for loser in &batch[1..] {
            let stored = unused(&db, loser.successor_hash.clone()).await;
            assert_eq!(stored, None, "a losing use stores no successor");
        }
    }
}
