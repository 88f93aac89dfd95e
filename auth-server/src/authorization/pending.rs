//! Pending requests: an authorization request that needs the user (sign-in, sign-up,
//! consent) waits in the database under a random id bound to the browser that sent it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use sqlite_readers::{Readers, rusqlite};

use super::AuthorizationRequest;
use crate::{digest::random_token, entities::authorization_requests};

/// How long a user may take over the pages of one request.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// A stored request waiting for the user.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its id (in the pages' URLs and forms).
    pub id: String,
    /// The browser it belongs to (hash of the browser cookie).
    pub browser_hash: String,
    /// The request.
    pub request: AuthorizationRequest,
    /// Arrival time.
    pub created_at: DateTime<Utc>,
    /// Whether a step already answered the client.
    pub completed: bool,
    /// Whether the user took too long.
    pub expired: bool,
}

/// Stores `request` for the browser whose cookie hashes to `browser_hash`.
pub async fn store(
    writer: &impl ConnectionTrait,
    request: &AuthorizationRequest,
    browser_hash: &str,
) -> anyhow::Result<String> {
    let id = random_token()?;
    let now = Utc::now();
    authorization_requests::Entity::insert(authorization_requests::ActiveModel {
        id: Set(id.clone()),
        browser_hash: Set(browser_hash.to_owned()),
        client_id: Set(request.client_id.clone()),
        parameters: Set(serde_json::to_string(request)?),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(PENDING_TTL)?),
        completed_at: Set(None),
    })
    .exec_without_returning(writer)
    .await?;
    Ok(id)
}

/// The pending request with this id, if it exists (whatever its state). Every page of a
/// sign-in asks, so on SQLite it is read on this thread (see `sqlite-readers`), else, or
/// when that fails, through sea-orm; the same row either way (a test holds them to it).
pub async fn load(
    db: &impl ConnectionTrait,
    readers: Option<&Readers>,
    id: &str,
) -> anyhow::Result<Option<Pending>> {
    if !crate::digest::is_token(id) {
        return Ok(None);
    }
    let row = match readers.and_then(|r| r.read(|c| read_row(c, id))) {
        Some(row) => row,
        None => {
            authorization_requests::Entity::find_by_id(id.to_owned())
                .one(db)
                .await?
        }
    };
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Pending {
        request: serde_json::from_str(&row.parameters)?,
        id: row.id,
        browser_hash: row.browser_hash,
        created_at: row.created_at,
        completed: row.completed_at.is_some(),
        expired: row.expires_at <= Utc::now(),
    }))
}

fn read_row(
    connection: &rusqlite::Connection,
    id: &str,
) -> rusqlite::Result<Option<authorization_requests::Model>> {
    use rusqlite::OptionalExtension;
    use sqlite_readers::{datetime, optional_datetime};
    connection
        .prepare_cached(
            "SELECT id, browser_hash, client_id, parameters, created_at, expires_at, \
             completed_at FROM authorization_requests WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(authorization_requests::Model {
                id: r.get(0)?,
                browser_hash: r.get(1)?,
                client_id: r.get(2)?,
                parameters: r.get(3)?,
                created_at: datetime(r.get_ref(4)?)?,
                expires_at: datetime(r.get_ref(5)?)?,
                completed_at: optional_datetime(r.get_ref(6)?)?,
            })
        })
        .optional()
}

/// Marks the request answered. Exactly one caller gets `true` (a conditional update, never
/// a read-then-write), so a form posted twice cannot answer the client twice.
pub async fn complete(db: &impl ConnectionTrait, id: &str) -> anyhow::Result<bool> {
    let now = Utc::now();
    let done = authorization_requests::Entity::update_many()
        .col_expr(
            authorization_requests::Column::CompletedAt,
            Expr::value(now),
        )
        .filter(authorization_requests::Column::Id.eq(id.to_owned()))
        .filter(authorization_requests::Column::CompletedAt.is_null())
        .filter(authorization_requests::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Forgets requests that expired more than a day ago.
pub async fn purge(db: &impl ConnectionTrait) -> anyhow::Result<()> {
    authorization_requests::Entity::delete_many()
        .filter(
            authorization_requests::Column::ExpiresAt.lt(Utc::now() - chrono::Duration::days(1)),
        )
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Prompt;

    // The row read on the calling thread is the row sea-orm reads, column for column (the
    // times as sqlx wrote them, a NULL and a set completed_at), and a missing request is
    // missing on both paths.
    #[tokio::test]
    async fn the_synchronous_read_and_sea_orm_give_the_same_pending_row() {
        let (dir, db, readers) = crate::db::temporary_sqlite().await;
        let request = AuthorizationRequest {
            client_id: "posts-web".into(),
            redirect_uri: "https://app.example/cb?x=1".into(),
            scope: "openid posts:read".into(),
            state: Some("s&t".into()),
            nonce: Some("n".into()),
            code_challenge: "c".into(),
            prompt: Prompt::default(),
            max_age: Some(0),
            login_hint: Some("a@example.com".into()),
            expected_sub: None,
        };
        let open = store(&db, &request, "b1").await.unwrap();
        let done = store(&db, &request, "b2").await.unwrap();
        assert!(complete(&db, &done).await.unwrap());
        let missing = random_token().unwrap();
        for id in [&open, &done, &missing] {
            let orm = authorization_requests::Entity::find_by_id(id.clone())
                .one(&db)
                .await
                .unwrap();
            assert_eq!(readers.read(|c| read_row(c, id)), Some(orm), "{id}");
        }
        let loaded = load(&db, Some(&readers), &done).await.unwrap().unwrap();
        assert_eq!(loaded.request, request);
        assert!(loaded.completed && !loaded.expired);
        assert!(
            !load(&db, Some(&readers), &open)
                .await
                .unwrap()
                .unwrap()
                .completed
        );
        // A reader that cannot open its file leaves the lookup to sea-orm.
        let absent = dir.path().join("absent.db");
        let broken = Readers::for_url(&format!("sqlite://{}", absent.display())).unwrap();
        let through_orm = load(&db, Some(&broken), &open).await.unwrap().unwrap();
        assert_eq!(
            (through_orm.browser_hash, through_orm.request),
            ("b1".into(), request)
        );
        assert_eq!(broken.failures(), 1);
    }
}
