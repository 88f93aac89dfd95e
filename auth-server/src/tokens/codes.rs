//! Authorization codes: 256 random bits, stored only as a SHA-256 hash, valid
//! `AUTH_CODE_TTL` seconds, usable once, bound to the client, the redirect URI, the user,
//! the scope, the nonce, the PKCE challenge and the login time.
//!
//! Single use is a conditional update (`used_at IS NULL`), never a read-then-write: of two
//! concurrent exchanges exactly one wins. The same update records the login the winner
//! starts, so a replay — which RFC 6749 §4.1.2 says should revoke everything issued from
//! the code — always finds what to revoke.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use sqlite_readers::{Readers, rusqlite};

use crate::{
    authorization::AuthorizationRequest,
    digest::{random_token, sha256_hex},
    entities::authorization_codes,
    error::OAuthError,
};

/// What a code was issued for.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The request it answers.
    pub request: AuthorizationRequest,
    /// The user who authorized.
    pub user_id: String,
    /// The browser session.
    pub sid: Option<String>,
    /// When the user entered their password.
    pub auth_time: DateTime<Utc>,
}

/// Issues a code for `grant`; returns the code in clear (for the redirect only).
#[tracing::instrument(skip_all, fields(client_id = %grant.request.client_id))]
pub async fn issue(
    writer: &impl ConnectionTrait,
    grant: &CodeGrant,
    ttl: Duration,
) -> anyhow::Result<String> {
    let code = random_token()?;
    let now = Utc::now();
    let request = &grant.request;
    authorization_codes::Entity::insert(authorization_codes::ActiveModel {
        code_hash: Set(sha256_hex(code.as_bytes())),
        client_id: Set(request.client_id.clone()),
        redirect_uri: Set(request.redirect_uri.clone()),
        user_id: Set(grant.user_id.clone()),
        scope: Set(request.scope.clone()),
        nonce: Set(request.nonce.clone()),
        code_challenge: Set(request.code_challenge.clone()),
        auth_time: Set(grant.auth_time),
        sid: Set(grant.sid.clone()),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(ttl)?),
        used_at: Set(None),
        family_id: Set(None),
    })
    .exec_without_returning(writer)
    .await?;
    tracing::info!(user_id = %grant.user_id, "authorization code issued");
    Ok(code)
}

/// A code found by its hash, before it is used.
#[derive(Debug)]
pub struct FoundCode {
    /// The row key.
    pub code_hash: String,
    /// The stored row.
    pub row: authorization_codes::Model,
}

/// Finds a presented code. Unknown and expired codes are `invalid_grant`; a code that was
/// already used is a replay: the login it started is revoked, then `invalid_grant`.
pub async fn find(
    db: &impl ConnectionTrait,
    readers: Option<&Readers>,
    writer: &impl ConnectionTrait,
    presented: &str,
) -> Result<FoundCode, OAuthError> {
    if presented.len() > 256 {
        return Err(OAuthError::InvalidGrant);
    }
    let code_hash = sha256_hex(presented.as_bytes());
    let row = match readers.and_then(|r| r.read(|c| read_row(c, &code_hash))) {
        Some(row) => row,
        None => reload(db, &code_hash).await?,
    };
    let Some(row) = row else {
        tracing::debug!("code refused: unknown");
        return Err(OAuthError::InvalidGrant);
    };
    if row.used_at.is_some() {
        replayed(writer, &row).await?;
        return Err(OAuthError::InvalidGrant);
    }
    if row.expires_at <= Utc::now() {
        tracing::debug!("code refused: expired");
        return Err(OAuthError::InvalidGrant);
    }
    Ok(FoundCode { code_hash, row })
}

/// A code's row read on this thread (every exchange asks: see `sqlite-readers`); the row
/// [`reload`] reads through sea-orm (a test holds them to it).
fn read_row(
    connection: &rusqlite::Connection,
    code_hash: &str,
) -> rusqlite::Result<Option<authorization_codes::Model>> {
    use rusqlite::OptionalExtension;
    use sqlite_readers::{datetime, optional_datetime};
    connection
        .prepare_cached(
            "SELECT code_hash, client_id, redirect_uri, user_id, scope, nonce, code_challenge, \
             auth_time, sid, created_at, expires_at, used_at, family_id \
             FROM authorization_codes WHERE code_hash = ?1",
        )?
        .query_row([code_hash], |r| {
            Ok(authorization_codes::Model {
                code_hash: r.get(0)?,
                client_id: r.get(1)?,
                redirect_uri: r.get(2)?,
                user_id: r.get(3)?,
                scope: r.get(4)?,
                nonce: r.get(5)?,
                code_challenge: r.get(6)?,
                auth_time: datetime(r.get_ref(7)?)?,
                sid: r.get(8)?,
                created_at: datetime(r.get_ref(9)?)?,
                expires_at: datetime(r.get_ref(10)?)?,
                used_at: optional_datetime(r.get_ref(11)?)?,
                family_id: r.get(12)?,
            })
        })
        .optional()
}

/// Marks the code used by the login `family_id`, if nobody used it first. `false` means a
/// concurrent exchange won: that is a replay too (see [`replayed`]). The exchange runs it
/// in the transaction that starts the login (`tokens::rotation`, whose SQLite path holds
/// the same statement).
pub async fn use_once(
    db: &impl ConnectionTrait,
    code_hash: &str,
    family_id: &str,
) -> anyhow::Result<bool> {
    let now = Utc::now();
    let used = authorization_codes::Entity::update_many()
        .col_expr(authorization_codes::Column::UsedAt, Expr::value(now))
        .col_expr(
            authorization_codes::Column::FamilyId,
            Expr::value(family_id.to_owned()),
        )
        .filter(authorization_codes::Column::CodeHash.eq(code_hash.to_owned()))
        .filter(authorization_codes::Column::UsedAt.is_null())
        .filter(authorization_codes::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(used.rows_affected == 1)
}

/// A used code was presented again: revoke the login its first use started (its refresh
/// tokens and its access tokens' `jti`s).
pub async fn replayed(
    writer: &impl ConnectionTrait,
    row: &authorization_codes::Model,
) -> anyhow::Result<()> {
    if let Some(family_id) = &row.family_id {
        super::refresh::revoke_family(writer, family_id).await?;
        tracing::warn!(%family_id, client_id = %row.client_id, "authorization code replayed; login revoked");
    }
    Ok(())
}

/// The row as it is now (after a lost race, to find the winner's login).
pub async fn reload(
    db: &impl ConnectionTrait,
    code_hash: &str,
) -> anyhow::Result<Option<authorization_codes::Model>> {
    Ok(
        authorization_codes::Entity::find_by_id(code_hash.to_owned())
            .one(db)
            .await?,
    )
}

/// Forgets codes that expired more than a day ago (a replay after that is simply unknown).
pub async fn purge(db: &impl ConnectionTrait) -> anyhow::Result<()> {
    authorization_codes::Entity::delete_many()
        .filter(authorization_codes::Column::ExpiresAt.lt(Utc::now() - chrono::Duration::days(1)))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::Prompt, entities::users};
    use sea_orm::ActiveModelTrait;

    // The code read on the calling thread is the row sea-orm reads, column for column
    // (NULL and set nonce, sid, used_at and family_id), and an unknown code is unknown on
    // both paths; a used code found through the readers is still a replay.
    #[tokio::test]
    async fn the_synchronous_read_and_sea_orm_give_the_same_code() {
        let (_dir, db, readers) = crate::db::temporary_sqlite().await;
        users::ActiveModel {
            id: Set("u1".into()),
            email: Set("a@example.com".into()),
            password_hash: Set("x".into()),
            full_name: Set("Ann".into()),
            created_at: Set(Utc::now()),
        }
        .insert(&db)
        .await
        .unwrap();
        let grant = |nonce: Option<&str>, sid: Option<&str>| CodeGrant {
            request: AuthorizationRequest {
                client_id: "posts-web".into(),
                redirect_uri: "https://app.example/cb".into(),
                scope: "openid posts:read".into(),
                state: None,
                nonce: nonce.map(Into::into),
                code_challenge: "S256:abc".into(),
                prompt: Prompt::default(),
                max_age: None,
                login_hint: None,
                expected_sub: None,
            },
            user_id: "u1".into(),
            sid: sid.map(Into::into),
            auth_time: Utc::now(),
        };
        let ttl = Duration::from_secs(60);
        let plain = issue(&db, &grant(None, None), ttl).await.unwrap();
        let used = issue(&db, &grant(Some("n-1"), Some("sid-1")), ttl)
            .await
            .unwrap();
        assert!(
            use_once(&db, &sha256_hex(used.as_bytes()), "family-1")
                .await
                .unwrap()
        );
        for code in [&plain, &used, &random_token().unwrap()] {
            let hash = sha256_hex(code.as_bytes());
            let orm = reload(&db, &hash).await.unwrap();
            assert_eq!(readers.read(|c| read_row(c, &hash)), Some(orm), "{code}");
        }
        let found = find(&db, Some(&readers), &db, &plain).await.unwrap();
        assert_eq!((found.row.nonce, found.row.used_at), (None, None));
        assert!(matches!(
            find(&db, Some(&readers), &db, &used).await,
            Err(OAuthError::InvalidGrant)
        ));
        assert_eq!(readers.failures(), 0);
    }
}
