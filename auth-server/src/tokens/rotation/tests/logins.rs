//! Login starts in the committing task: what they store on either path, and single use of
//! their codes.

use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter};

use super::*;
use crate::{
    authorization::AuthorizationRequest,
    entities::{authorization_codes, users},
    tokens::codes::{self, CodeGrant},
};

/// An authorization code of a new user, as the sign-in page issues it; its hash.
async fn code_of_new_user(db: &DatabaseConnection, ttl: Duration) -> String {
    let user_id = uuid::Uuid::new_v4().to_string();
    users::ActiveModel {
        id: Set(user_id.clone()),
        email: Set(format!("{user_id}@example.com")),
        password_hash: Set("x".into()),
        full_name: Set("U".into()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    let grant = CodeGrant {
        request: AuthorizationRequest {
            client_id: "posts-web".into(),
            redirect_uri: "https://app.example/cb".into(),
            scope: "openid posts:read".into(),
            state: None,
            nonce: None,
            code_challenge: "S256:abc".into(),
            prompt: Default::default(),
            max_age: None,
            login_hint: None,
            expected_sub: None,
        },
        user_id,
        sid: Some("sid-1".into()),
        auth_time: Utc::now(),
    };
    let code = codes::issue(db, &grant, ttl).await.unwrap();
    crate::digest::sha256_hex(code.as_bytes())
}

/// A login start (with a first refresh token when `with_token`, using up `code_hash` when
/// given), its answer, its id and its first token's hash.
fn login_job(
    code_hash: Option<&str>,
    with_token: bool,
    jti: &str,
) -> (Job, Answer, String, Option<String>) {
    let id = uuid::Uuid::new_v4().to_string();
    let login = refresh::NewLogin {
        id: &id,
        user_id: "u",
        client_id: "posts-web",
        scope: "openid posts:read",
        lifetime: Duration::from_secs(600),
        sid: code_hash.map(|_| "sid-1"),
        auth_time: Utc::now(),
    };
    let first = with_token.then(|| RefreshToken::generate().unwrap().hash());
    let (reply, answer) = oneshot::channel();
    let job = Job {
        family_id: id.clone(),
        jti: jti.into(),
        access_expires_at: Utc::now(),
        work: Work::Login {
            family: refresh::family_row(login).unwrap(),
            first_token_hash: first.clone(),
            code_hash: code_hash.map(str::to_owned),
        },
        reply,
    };
    (job, answer, id, first)
}

/// Every stored time of login `id` (its row, its first token, its `jti`) as text.
async fn stored_times(db: &DatabaseConnection, id: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for column in ["created_at", "expires_at", "auth_time"] {
        let sql = format!("SELECT {column} FROM refresh_families WHERE id = ?");
        texts.push(stored_text(db, &sql, id).await);
    }
    let sql = "SELECT created_at FROM refresh_tokens WHERE family_id = ?";
    texts.push(stored_text(db, sql, id).await);
    let sql = "SELECT expires_at FROM family_access_tokens WHERE family_id = ?";
    texts.push(stored_text(db, sql, id).await);
    texts
}

#[tokio::test]
async fn a_login_on_the_handle_stores_what_a_login_through_sqlx_stores() {
    let (_dir, db, _issuer) = setup().await;
    let ttl = Duration::from_secs(60);
    let (ours_code, theirs_code) = (
        code_of_new_user(&db, ttl).await,
        code_of_new_user(&db, ttl).await,
    );
    let (ours, ours_answer, ours_id, ours_first) = login_job(Some(&ours_code), true, "ours");
    let (theirs, _, theirs_id, theirs_first) = login_job(Some(&theirs_code), true, "theirs");
    let (
        Work::Login {
            family: ours_row, ..
        },
        Work::Login {
            family: theirs_row, ..
        },
    ) = (&ours.work, &theirs.work)
    else {
        unreachable!()
    };
    let (ours_row, theirs_row) = (ours_row.clone(), theirs_row.clone());

    let left = handle::commit_while_waiting(&db, &queue_of(vec![]).await, vec![ours]).await;
    assert!(left.is_empty());
    assert!(ours_answer.await.unwrap().unwrap());
    let through_sqlx = commit_through_sqlx(&db, std::slice::from_ref(&theirs)).await;
    assert_eq!(through_sqlx.unwrap(), [true]);

    // Read back through sea-orm alike: the login's row as it was handed over, its first
    // token unused, its jti recorded, and the code used by it.
    for (id, row, first, code) in [
        (&ours_id, ours_row, ours_first, &ours_code),
        (&theirs_id, theirs_row, theirs_first, &theirs_code),
    ] {
        let stored = refresh_families::Entity::find_by_id(id.clone())
            .one(&db)
            .await
            .unwrap();
        assert_eq!(stored, Some(row));
        assert_eq!(unused(&db, first.unwrap()).await, Some(true));
        let jtis = family_access_tokens::Entity::find()
            .filter(family_access_tokens::Column::FamilyId.eq(id.clone()))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(jtis.len(), 1);
        let code = authorization_codes::Entity::find_by_id(code.clone())
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert!(code.used_at.is_some());
        assert_eq!(code.family_id.as_ref(), Some(id));
        // And every time in sqlx's own text layout, which the synchronous readers and
        // every comparison in SQL rely on.
        for text in stored_times(&db, id).await {
            let time = DateTime::parse_from_rfc3339(&text).unwrap().to_utc();
            assert_eq!(sqlx_datetime_text(time), text);
        }
    }
}

#[tokio::test]
async fn of_logins_presenting_one_code_only_the_first_is_stored_on_either_path() {
    let (_dir, db, _issuer) = setup().await;
    let ttl = Duration::from_secs(60);
    for on_handle in [false, true] {
        let code = code_of_new_user(&db, ttl).await;
        let (mut batch, mut answers, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        // jtis are unique across the two passes.
        for jti in ["a", "b", "c"] {
            let (job, answer, id, _) = login_job(Some(&code), true, &format!("{jti}{on_handle}"));
            batch.push(job);
            answers.push(answer);
            ids.push(id);
        }
        // A password login in the same batch: no code, always stored, without a token.
        let (password, password_answer, password_id, _) =
            login_job(None, false, &format!("p{on_handle}"));
        batch.push(password);
        answers.push(password_answer);
        ids.push(password_id);

        let outcomes = if on_handle {
            let left = handle::commit_while_waiting(&db, &queue_of(vec![]).await, batch).await;
            assert!(left.is_empty());
            let mut outcomes = Vec::new();
            for answer in answers {
                outcomes.push(answer.await.unwrap().unwrap());
            }
            outcomes
        } else {
            commit_through_sqlx(&db, &batch).await.unwrap()
        };

        assert_eq!(
            outcomes,
            [true, false, false, true],
            "on the handle: {on_handle}"
        );
        for (id, stored) in ids.iter().zip(outcomes) {
            let row = refresh_families::Entity::find_by_id(id.clone())
                .one(&db)
                .await
                .unwrap();
            assert_eq!(row.is_some(), stored, "a losing login stores nothing");
        }
        // The code stays used by the winner.
        let (again, _, _, _) = login_job(Some(&code), true, &format!("d{on_handle}"));
        assert_eq!(commit_through_sqlx(&db, &[again]).await.unwrap(), [false]);
    }
}

#[tokio::test]
async fn an_expired_code_starts_no_login_on_either_path() {
    let (_dir, db, _issuer) = setup().await;
    for on_handle in [false, true] {
        let code = code_of_new_user(&db, Duration::ZERO).await;
        let (job, answer, id, _) = login_job(Some(&code), true, &format!("x{on_handle}"));
        let won = if on_handle {
            handle::commit_while_waiting(&db, &queue_of(vec![]).await, vec![job]).await;
            answer.await.unwrap().unwrap()
        } else {
            commit_through_sqlx(&db, &[job]).await.unwrap()[0]
        };
        assert!(!won, "on the handle: {on_handle}");
        assert!(
            refresh_families::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_login_through_the_rotator_answers_its_first_token_after_the_commit() {
    let (_dir, db, _issuer) = setup().await;
    let rotator = Rotator::spawn(db.clone());
    let code = code_of_new_user(&db, Duration::from_secs(60)).await;
    let id = uuid::Uuid::new_v4().to_string();
    let login = refresh::NewLogin {
        id: &id,
        user_id: "u",
        client_id: "posts-web",
        scope: "posts:read",
        lifetime: Duration::from_secs(600),
        sid: None,
        auth_time: Utc::now(),
    };
    let exp = Utc::now().timestamp() + 60;
    let first = rotator
        .start_login(login, true, Some(&code), "j1", exp)
        .await
        .unwrap();
    let Started::Login(Some(token)) = first.outcome().await.unwrap() else {
        panic!("the first use of the code starts the login");
    };
    assert_eq!(unused(&db, token.hash()).await, Some(true));
    let second = rotator.start_login(
        refresh::NewLogin {
            id: "other",
            ..login
        },
        false,
        Some(&code),
        "j2",
        exp,
    );
    let second = second.await.unwrap().outcome().await.unwrap();
    assert!(matches!(second, Started::CodeAlreadyUsed));
    // Without a code and without refresh tokens: stored, no token.
    let third = rotator.start_login(
        refresh::NewLogin {
            id: "third",
            ..login
        },
        false,
        None,
        "j3",
        exp,
    );
    assert!(matches!(
        third.await.unwrap().outcome().await.unwrap(),
        Started::Login(None)
    ));
    assert!(
        refresh_families::Entity::find_by_id("third".to_owned())
            .one(&db)
            .await
            .unwrap()
            .is_some()
    );
}
