use std::time::Duration;

use sqlite_readers::sqlx_datetime_text;

use super::through_sqlx::{
    commit as commit_through_sqlx, commit_and_answer as commit_through_sqlx_and_answer,
};
use super::*;
use crate::{
    domain::ScopeSet,
    entities::{family_access_tokens, refresh_tokens},
    keys::{KeyFiles, KeyPolicy, KeyStore},
    tokens::{AccessTokenIssuer, IssuedAccessToken, refresh},
};
use sea_orm::{ConnectionTrait, EntityTrait, Set};

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
        work: Work::Rotation {
            presented_hash: token_hash,
            successor_hash: successor.hash(),
        },
        family_id: family_id.to_owned(),
        jti: jti.into(),
        access_expires_at: Utc::now(),
        reply,
    }
}

/// The token a rotation presents.
fn presented(job: &Job) -> String {
    job.presented_hash().unwrap().to_owned()
}

/// The successor a rotation stores.
fn successor(job: &Job) -> String {
    match &job.work {
        Work::Rotation { successor_hash, .. } => successor_hash.clone(),
        Work::Login { .. } => panic!("not a rotation"),
    }
}

/// A rotation of `token` in `family_id` and the receiver of its answer.
fn waited_for(token_hash: String, family_id: &str, jti: &str) -> (Job, Answer) {
    let (reply, answer) = oneshot::channel();
    (job(token_hash, family_id, jti, reply), answer)
}

type Answer = oneshot::Receiver<anyhow::Result<bool>>;

/// [`Rotator::start`] for `access`, and its outcome.
async fn rotate(
    rotator: &Rotator,
    token_hash: &str,
    family_id: &str,
    access: &IssuedAccessToken,
) -> anyhow::Result<Rotated> {
    let (jti, exp) = (&access.claims.jti, access.claims.exp);
    let pending = rotator.start(token_hash, family_id, jti, exp).await?;
    pending.outcome().await
}

/// A queue for [`handle::commit_while_waiting`], holding `waiting`.
async fn queue_of(waiting: Vec<Job>) -> Queue {
    let (jobs, queue) = mpsc::channel(MAX_BATCH);
    for job in waiting {
        jobs.send(job).await.unwrap();
    }
    Arc::new(Mutex::new(queue))
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
            rotate(&rotator, &hash, &family_id, &access).await.unwrap()
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
    let again = rotate(&rotator, &first.hash(), &family, &access).await;
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
        rotate(&rotator, &victim_hash, "no-such-login", &access),
        rotate(&rotator, &token_hash, &family, &other),
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
    let statement = sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, [key.into()]);
    let row = db.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

#[tokio::test]
async fn a_batch_on_the_handle_stores_what_a_batch_through_sqlx_stores() {
    let (_dir, db, _issuer) = setup().await;
    let (family, first) = login(&db).await;
    let (other_family, second) = login(&db).await;
    let (ours, answer) = waited_for(first.hash(), &family, "ours");
    let (ours_presented, ours_successor, ours_expiry) =
        (presented(&ours), successor(&ours), ours.access_expires_at);
    let theirs = job(second.hash(), &other_family, "theirs", oneshot::channel().0);

    let left = handle::commit_while_waiting(&db, &queue_of(vec![]).await, vec![ours]).await;
    assert!(left.is_empty());
    assert!(answer.await.unwrap().unwrap());
    let through_sqlx = commit_through_sqlx(&db, std::slice::from_ref(&theirs)).await;
    assert_eq!(through_sqlx.unwrap(), [true]);

    // Read back through sea-orm alike: the presented tokens used, the successors not.
    for (presented, successor) in [
        (ours_presented, ours_successor),
        (presented(&theirs), successor(&theirs)),
    ] {
        assert_eq!(unused(&db, presented).await, Some(false));
        assert_eq!(unused(&db, successor).await, Some(true));
    }
    let recorded = family_access_tokens::Entity::find().all(&db).await.unwrap();
    assert_eq!(recorded.len(), 2);
    // And stored in sqlx's own text layout, which the synchronous readers and every
    // comparison in SQL rely on.
    for (sql, key) in [
        (
            "SELECT used_at FROM refresh_tokens WHERE token_hash = ?",
            &presented(&theirs),
        ),
        (
            "SELECT created_at FROM refresh_tokens WHERE token_hash = ?",
            &successor(&theirs),
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
    let sql = "SELECT expires_at FROM family_access_tokens WHERE jti = ?";
    let ours_stored = stored_text(&db, sql, "ours").await;
    assert_eq!(ours_stored, sqlx_datetime_text(ours_expiry));
}

#[tokio::test]
async fn a_batch_that_fails_on_the_handle_is_rolled_back_and_left_for_sqlx() {
    let (_dir, db, _issuer) = setup().await;
    let (family, token) = login(&db).await;
    // The successor's login does not exist: its foreign key fails after the UPDATE.
    let (orphan, orphan_answer) = waited_for(token.hash(), "no-such-login", "orphan");

    let mut left = handle::commit_while_waiting(&db, &queue_of(vec![]).await, vec![orphan]).await;

    // Rolled back (the token is still unused) and the connection is out of the
    // transaction: sqlx commits on it, and fails the rotation alone.
    assert_eq!(left.len(), 1);
    assert_eq!(unused(&db, token.hash()).await, Some(true));
    commit_through_sqlx_and_answer(&db, &mut left).await;
    assert!(orphan_answer.await.unwrap().is_err());
    let (fine, fine_answer) = waited_for(token.hash(), &family, "fine");
    let left = handle::commit_while_waiting(&db, &queue_of(vec![]).await, vec![fine]).await;
    assert!(left.is_empty());
    assert!(fine_answer.await.unwrap().unwrap());
    assert_eq!(unused(&db, token.hash()).await, Some(false));
}

#[tokio::test]
async fn rotations_that_wait_while_the_handle_is_held_are_committed_in_the_same_hold() {
    let (_dir, db, _issuer) = setup().await;
    let mut waiting = Vec::new();
    let mut answers = Vec::new();
    for i in 0..4 {
        let (family, token) = login(&db).await;
        let (job, answer) = waited_for(token.hash(), &family, &format!("jti-{i}"));
        waiting.push(job);
        answers.push(answer);
    }
    let first = waiting.remove(0);
    let queue = queue_of(waiting).await;

    let left = handle::commit_while_waiting(&db, &queue, vec![first]).await;

    assert!(left.is_empty());
    assert!(
        queue.lock().await.try_recv().is_err(),
        "nothing left waiting"
    );
    for answer in answers {
        assert!(answer.await.unwrap().unwrap());
    }
}

#[tokio::test]
async fn rotations_that_arrive_while_a_batch_is_written_join_its_commit() {
    let (_dir, db, _issuer) = setup().await;
    let (mut rotations, mut successors) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let (family, token) = login(&db).await;
        let (job, answer) = waited_for(token.hash(), &family, &format!("jti-{i}"));
        successors.push(successor(&job));
        rotations.push((job, answer));
    }
    let (family, abandoned_token) = login(&db).await;
    let (abandoned, gone) = waited_for(abandoned_token.hash(), &family, "jti-gone");
    drop(gone);
    let (first, _first_answer) = rotations.remove(0);
    let (jobs, mut queue) = mpsc::channel(MAX_BATCH);
    // Their requesters are still waiting: the answers stay open.
    let mut still_waiting = Vec::new();
    for (job, answer) in rotations {
        jobs.send(job).await.unwrap();
        still_waiting.push(answer);
    }
    jobs.send(abandoned).await.unwrap();
    let mut connection = db.get_sqlite_connection_pool().acquire().await.unwrap();
    let runtime = tokio::runtime::Handle::current();

    let (batch, outcomes) = tokio::task::spawn_blocking(move || {
        let mut batch = vec![first];
        let outcomes = sqlite_readers::with_handle(&runtime, &mut connection, |conn| {
            handle::commit(conn, &mut batch, &mut queue)
        });
        (batch, outcomes.unwrap().unwrap().unwrap())
    })
    .await
    .unwrap();

    // One transaction for the four rotations; the one whose requester left is not in it.
    assert_eq!(batch.len(), 4);
    assert_eq!(outcomes, [true; 4]);
    for stored in successors {
        assert_eq!(unused(&db, stored).await, Some(true));
    }
    assert_eq!(unused(&db, abandoned_token.hash()).await, Some(true));
}

#[tokio::test]
async fn within_one_batch_the_first_use_of_a_token_wins() {
    let (_dir, db, _issuer) = setup().await;
    let (family, token) = login(&db).await;
    let use_of = |jti: &str| job(token.hash(), &family, jti, oneshot::channel().0);
    let batch = [use_of("a"), use_of("b"), use_of("c")];
    let outcomes = commit_through_sqlx(&db, &batch).await.unwrap();
    assert_eq!(outcomes, [true, false, false]);
    assert_eq!(
        commit_through_sqlx(&db, &[use_of("d")]).await.unwrap(),
        [false]
    );
    assert_eq!(unused(&db, successor(&batch[0])).await, Some(true));
    for loser in &batch[1..] {
        let stored = unused(&db, successor(loser)).await;
        assert_eq!(stored, None, "a losing use stores no successor");
    }
}

#[tokio::test]
async fn within_one_batch_on_the_handle_the_first_use_of_a_token_wins() {
    let (_dir, db, _issuer) = setup().await;
    let (family, token) = login(&db).await;
    let (mut batch, mut answers) = (Vec::new(), Vec::new());
    for jti in ["a", "b", "c"] {
        let (job, answer) = waited_for(token.hash(), &family, jti);
        batch.push(job);
        answers.push(answer);
    }
    let successors: Vec<String> = batch.iter().map(successor).collect();

    let left = handle::commit_while_waiting(&db, &queue_of(vec![]).await, batch).await;

    assert!(left.is_empty());
    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(answer.await.unwrap().unwrap());
    }
    assert_eq!(outcomes, [true, false, false]);
    assert_eq!(unused(&db, successors[0].clone()).await, Some(true));
    for loser in &successors[1..] {
        assert_eq!(unused(&db, loser.clone()).await, None);
    }
}

mod logins;
