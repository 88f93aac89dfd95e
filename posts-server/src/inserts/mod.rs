//! Group commit of new posts.
//!
//! `synchronous=FULL` makes every commit wait for an fsync of the WAL, and on SQLite one
//! connection writes at a time, so posts created one transaction each queue behind each
//! other's fsyncs: the disk, not the CPU, sets the rate. Here one task owns the inserts:
//! it takes every new post that is waiting and stores them with one multi-row INSERT,
//! which commits (and fsyncs) once for all of them. Nothing is answered before that
//! commit, so a 201 still means the post is on disk; under light load each post commits
//! alone, as soon as it arrives, exactly as before. The refresh-token rotations of the
//! auth server are committed the same way (`auth-server/src/tokens/rotation/`).
//!
//! A batch that breaks a constraint (a duplicate id: not expected with UUID v7, but not
//! ruled out by anything but chance) is retried post by post, so that only the culprit
//! fails. Any other failure fails the whole batch (500, or 503 when the database is
//! unavailable): the single statement is atomic, so either all of its posts were stored
//! or, if the commit's outcome is unknown, none was acknowledged. The task holds only the
//! pool, so it survives an outage and writes again once the pool has reconnected.
//!
//! On SQLite the batches are committed on the writer connection's own handle while posts
//! keep coming ([`handle`]); sqlx commits them on PostgreSQL, and on SQLite whatever the
//! handle rolled back (a broken constraint), so each failure keeps the meaning described
//! here.

mod handle;

use std::sync::Arc;

use sea_orm::{ActiveValue::Set, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, SqlErr};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::entities::post;

/// Posts stored by one statement at most (6 parameters each, far below SQLite's limit of
/// 32,766 and PostgreSQL's of 65,535).
const MAX_BATCH: usize = 128;

/// How long a batch waits at most for the posts it expects ([`linger`]): the granularity of
/// tokio's timer. It runs out when the load falls, or when the answered clients send their
/// next post elsewhere (to another replica, behind a load balancer).
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Batches that do not wait after a wait ran out: the expectation was wrong, and each
/// wrong wait costs a whole [`LINGER`], four commits or so.
const AFTER_A_WASTED_WAIT: usize = 64;

struct Job {
    post: post::Model,
    reply: oneshot::Sender<Result<(), DbErr>>,
}

/// Hands new posts to the task that stores them; cheap to clone.
#[derive(Debug, Clone)]
pub struct Inserter {
    jobs: mpsc::Sender<Job>,
}

impl Inserter {
    /// Starts the storing task on `writer`. It ends when the last `Inserter` is dropped.
    pub fn spawn(writer: DatabaseConnection) -> Self {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(insert_batches(writer, queue));
        Self { jobs }
    }

    /// Stores `post`; returns once it is committed.
    pub async fn insert(&self, post: post::Model) -> Result<(), DbErr> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { post, reply })
            .await
            .map_err(|_| DbErr::Custom("the insert task has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the insert task dropped a post".to_owned()))?
    }
}

/// The posts waiting to be stored. Shared with the thread that commits on the writer's
/// handle, so that the task keeps its queue even if that thread panics.
type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

async fn insert_batches(writer: DatabaseConnection, queue: mpsc::Receiver<Job>) {
    let queue: Queue = Arc::new(Mutex::new(queue));
    let on_sqlite = writer.get_database_backend() == DatabaseBackend::Sqlite;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut waits = Waits::default();
    while queue.lock().await.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if on_sqlite {
            // Leaves a batch only when it was rolled back: sqlx stores it below.
            (waits, batch) = handle::store_while_coming(&writer, &queue, waits, batch).await;
        } else {
            waits.fill(&mut *queue.lock().await, &mut batch).await;
        }
        // A client that went away before its post was stored was never told it was: skip.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let stored = batch.len();
        match insert(&writer, &batch).await {
            Ok(()) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Ok(()));
                }
            }
            Err(e) if batch.len() > 1 && is_conflict(&e) => {
                tracing::warn!(error = %e, posts = batch.len(), "post batch broke a constraint; storing one by one");
                for job in batch.drain(..) {
                    let outcome = insert(&writer, std::slice::from_ref(&job)).await;
                    if let Err(e) = &outcome {
                        tracing::error!(error = %e, "storing a post failed");
                    }
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, posts = batch.len(), "storing posts failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
        waits.committed(stored, queue.lock().await.len());
    }
}

/// What a batch waits for before its commit, learnt from the rounds before.
#[derive(Debug, Default, Clone, Copy)]
struct Waits {
    /// The posts of the last commit's round: the ones it stored, whose clients are likely
    /// to post again as soon as they have their answer, and the ones that queued meanwhile.
    expected: usize,
    /// Batches left that do not wait, since a wait ran out.
    skip: usize,
}

impl Waits {
    /// Adds to `batch` the posts the last round says are coming ([`linger`]), unless a
    /// recent wait ran out.
    async fn fill(&mut self, queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
        if self.skip > 0 {
            self.skip -= 1;
        } else if !linger(queue, batch, self.expected).await {
            self.skip = AFTER_A_WASTED_WAIT;
        }
    }

    /// After a commit of `stored` posts, with `queued` waiting meanwhile.
    fn committed(&mut self, stored: usize, queued: usize) {
        self.expected = (stored + queued).min(MAX_BATCH);
    }
}

/// Waits, at most [`LINGER`], until the batch holds as many posts as the last round had,
/// like PostgreSQL's `commit_delay`. Without it, a steady load splits into small batches:
/// the posts that queued during a commit are taken alone while the clients it just
/// answered are still sending their next post, and each small batch pays a whole fsync.
/// Under light load (one post per round) it never waits. False when the wait ran out.
async fn linger(queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, expected: usize) -> bool {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < expected {
        let more = queue.recv_many(batch, MAX_BATCH - batch.len());
        match tokio::time::timeout_at(deadline, more).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    true
}

fn is_conflict(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(SqlErr::UniqueConstraintViolation(_) | SqlErr::ForeignKeyConstraintViolation(_))
    )
}

/// One INSERT of every post of the batch: one commit, one fsync.
async fn insert(writer: &DatabaseConnection, batch: &[Job]) -> Result<(), DbErr> {
    let rows = batch.iter().map(|job| {
        let post = &job.post;
        post::ActiveModel {
            id: Set(post.id.clone()),
            author_id: Set(post.author_id.clone()),
            title: Set(post.title.clone()),
            body: Set(post.body.clone()),
            created_at: Set(post.created_at),
            updated_at: Set(post.updated_at),
        }
    });
    post::Entity::insert_many(rows)
        .exec_without_returning(writer)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use sea_orm::EntityTrait;

    use super::*;
    use crate::db::temporary_sqlite;

    fn post(id: &str) -> post::Model {
        let now = Utc::now();
        post::Model {
            id: id.to_owned(),
            author_id: "author".to_owned(),
            title: format!("title {id}"),
            body: "body".to_owned(),
            created_at: now,
            updated_at: now,
        }
    }

    fn job(id: &str) -> Job {
        Job {
            post: post(id),
            reply: oneshot::channel().0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_for_the_posts_of_the_last_round_and_no_longer() {
        let (jobs, mut queue) = mpsc::channel(8);
        jobs.send(job("first")).await.unwrap();
        let late = jobs.clone();
        // Runs once `linger` waits (one thread, and time only moves when all are idle).
        tokio::spawn(async move {
            late.send(job("second")).await.unwrap();
            tokio::task::yield_now().await;
            late.send(job("third")).await.unwrap();
        });
        let mut batch = Vec::new();
        queue.recv_many(&mut batch, MAX_BATCH).await;
        let started = tokio::time::Instant::now();

        let reached = linger(&mut queue, &mut batch, 3).await;

        assert!(reached);
        assert_eq!(batch.len(), 3);
        assert!(
            started.elapsed() < LINGER,
            "done as soon as the third arrived"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_at_most_the_linger_for_posts_that_do_not_come() {
        let (jobs, mut queue) = mpsc::channel(8);
        jobs.send(job("alone")).await.unwrap();
        let mut batch = Vec::new();
        queue.recv_many(&mut batch, MAX_BATCH).await;
        let started = tokio::time::Instant::now();

        let reached = linger(&mut queue, &mut batch, 8).await;

        assert!(!reached, "the wait ran out");
        assert_eq!(batch.len(), 1);
        assert_eq!(started.elapsed(), LINGER);
        // One post a round: nothing to wait for.
        jobs.send(job("next")).await.unwrap();
        batch.clear();
        queue.recv_many(&mut batch, MAX_BATCH).await;
        let started = tokio::time::Instant::now();
        assert!(linger(&mut queue, &mut batch, 1).await);
        assert_eq!(started.elapsed(), std::time::Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_wait_that_ran_out_batches_do_not_wait_for_a_while() {
        let (jobs, mut queue) = mpsc::channel(8);
        let mut waits = Waits::default();
        // A round of 8; the next rounds bring one post each (the others went elsewhere).
        waits.committed(8, 0);
        let mut elapsed = Vec::new();
        for i in 0..=AFTER_A_WASTED_WAIT + 1 {
            jobs.send(job(&i.to_string())).await.unwrap();
            let mut batch = Vec::new();
            queue.recv_many(&mut batch, MAX_BATCH).await;
            let started = tokio::time::Instant::now();
            waits.fill(&mut queue, &mut batch).await;
            elapsed.push(started.elapsed());
        }

        assert_eq!(elapsed[0], LINGER, "the first waits in vain");
        assert!(
            elapsed[1..=AFTER_A_WASTED_WAIT].iter().all(|e| e.is_zero()),
            "{elapsed:?}"
        );
        assert_eq!(
            elapsed[AFTER_A_WASTED_WAIT + 1],
            LINGER,
            "then it tries again"
        );
    }

    /// A job whose requester waits for its answer.
    fn awaited(post: post::Model) -> (Job, oneshot::Receiver<Result<(), DbErr>>) {
        let (reply, answer) = oneshot::channel();
        (Job { post, reply }, answer)
    }

    /// The stored times as text, as every reader and comparison in SQL sees them.
    async fn stored_times(db: &DatabaseConnection, id: &str) -> (String, String) {
        use sea_orm::{ConnectionTrait, Statement};
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Sqlite,
                "SELECT created_at, updated_at FROM posts WHERE id = ?",
                [id.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        (
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_writers_handle_stores_what_sqlx_stores() {
        let (_dir, dbs) = temporary_sqlite().await;
        let through_sqlx = post("through-sqlx");
        let through_handle = post::Model {
            id: "through-handle".to_owned(),
            ..through_sqlx.clone()
        };
        insert(&dbs.writer, &[awaited(through_sqlx.clone()).0])
            .await
            .unwrap();
        let (job, answer) = awaited(through_handle.clone());
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let queue: Queue = Arc::new(Mutex::new(rx));

        let (_, left) =
            handle::store_while_coming(&dbs.writer, &queue, Waits::default(), vec![job]).await;

        assert!(left.is_empty(), "nothing was left for sqlx");
        answer.await.unwrap().unwrap();
        let stored = post::Entity::find_by_id("through-handle")
            .one(&dbs.reader)
            .await
            .unwrap();
        assert_eq!(stored, Some(through_handle));
        assert_eq!(
            stored_times(&dbs.reader, "through-handle").await,
            stored_times(&dbs.reader, "through-sqlx").await,
            "the same time text"
        );
    }

    #[tokio::test]
    async fn a_batch_that_breaks_a_constraint_on_the_handle_is_rolled_back_for_sqlx() {
        let (_dir, dbs) = temporary_sqlite().await;
        insert(&dbs.writer, &[awaited(post("taken")).0])
            .await
            .unwrap();
        let (jobs, answers): (Vec<_>, Vec<_>) = ["a", "taken", "b"]
            .into_iter()
            .map(|id| awaited(post(id)))
            .unzip();
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let queue: Queue = Arc::new(Mutex::new(rx));

        let (_, left) =
            handle::store_while_coming(&dbs.writer, &queue, Waits::default(), jobs).await;

        let left: Vec<&str> = left.iter().map(|job| job.post.id.as_str()).collect();
        assert_eq!(left, ["a", "taken", "b"], "the whole batch, unanswered");
        assert_eq!(
            post::Entity::find().all(&dbs.reader).await.unwrap().len(),
            1
        );
        drop(answers);
    }

    #[tokio::test]
    async fn a_post_that_breaks_a_constraint_fails_alone_and_its_batch_is_stored() {
        let (_dir, dbs) = temporary_sqlite().await;
        let inserter = Inserter::spawn(dbs.writer.clone());
        inserter.insert(post("taken")).await.unwrap();

        // Sent together, so the task takes them as one batch.
        let (a, duplicate, b) = tokio::join!(
            inserter.insert(post("a")),
            inserter.insert(post("taken")),
            inserter.insert(post("b")),
        );

        assert!(a.is_ok() && b.is_ok());
        assert!(matches!(
            duplicate.unwrap_err().sql_err(),
            Some(SqlErr::UniqueConstraintViolation(_))
        ));
        let mut ids: Vec<String> = post::Entity::find()
            .all(&dbs.reader)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "taken"]);
    }

    #[tokio::test]
    async fn a_failed_database_fails_every_post_of_the_batch_with_its_error() {
        let (_dir, dbs) = temporary_sqlite().await;
        let inserter = Inserter::spawn(dbs.writer.clone());
        dbs.writer.clone().close().await.unwrap();

        let (a, b) = tokio::join!(inserter.insert(post("a")), inserter.insert(post("b")));

        for outcome in [a, b] {
            let error = outcome.unwrap_err();
            assert!(
                db_outage::is_outage(&error),
                "{error:?} reads as an outage (503)"
            );
        }
    }
}
