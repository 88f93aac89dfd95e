//! Refresh tokens: opaque, 256 random bits, stored only as SHA-256 hashes, bound to a
//! login (family) of one user, client and scope. Every use rotates the token; presenting a
//! rotated one again revokes the whole login (RFC 9700 §4.14.2).

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use sqlite_readers::{Readers, rusqlite};

use super::IssuedAccessToken;
use crate::{
    entities::{family_access_tokens, refresh_families, refresh_tokens, revoked_access_tokens},
    error::OAuthError,
};

/// A refresh token in clear, on its way to the client. Never printed.
#[derive(Clone)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// 256 random bits, base64url.
    pub(crate) fn generate() -> anyhow::Result<Self> {
        Ok(Self(crate::digest::random_token()?))
    }

    /// The token, for the response body.
    pub fn into_string(self) -> String {
        self.0
    }

    /// What the database stores.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// Hex SHA-256: what the database holds instead of the token.
pub fn hash_token(token: &str) -> String {
    crate::digest::sha256_hex(token.as_bytes())
}

/// A login about to start.
#[derive(Debug, Clone, Copy)]
pub struct NewLogin<'a> {
    /// Its id (chosen by the caller, so that it can be recorded before the login exists).
    pub id: &'a str,
    /// The user.
    pub user_id: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// The granted scope, space-separated.
    pub scope: &'a str,
    /// Absolute lifetime.
    pub lifetime: Duration,
    /// The browser session it was made in.
    pub sid: Option<&'a str>,
    /// When the user entered their password.
    pub auth_time: DateTime<Utc>,
}

/// Starts a login and, when `with_refresh_token`, returns its first refresh token. A login
/// without refresh tokens still records its access tokens, so that revoking it (logout,
/// code replay) makes them inactive.
pub async fn start_family(
    db: &impl ConnectionTrait,
    login: NewLogin<'_>,
    with_refresh_token: bool,
) -> anyhow::Result<(refresh_families::Model, Option<RefreshToken>)> {
    let family = family_row(login)?;
    let now = family.created_at;
    // Without RETURNING: on SQLite, `insert` would read the row back in a second query.
    refresh_families::Entity::insert(refresh_families::ActiveModel::from(family.clone()))
        .exec_without_returning(db)
        .await?;
    let token = if with_refresh_token {
        Some(add_token(db, &family.id, now).await?)
    } else {
        None
    };
    Ok((family, token))
}

/// The row of `login`, starting now.
pub(super) fn family_row(login: NewLogin<'_>) -> anyhow::Result<refresh_families::Model> {
    let now = Utc::now();
    let expires_at = now
        .checked_add_signed(chrono::Duration::from_std(login.lifetime)?)
        .ok_or_else(|| anyhow::anyhow!("refresh-token lifetime out of range"))?;
    Ok(refresh_families::Model {
        id: login.id.to_owned(),
        user_id: login.user_id.to_owned(),
        client_id: login.client_id.to_owned(),
        scope: login.scope.to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        sid: login.sid.map(str::to_owned),
        auth_time: Some(login.auth_time),
    })
}

async fn add_token(
    db: &impl ConnectionTrait,
    family_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<RefreshToken> {
    let token = RefreshToken::generate()?;
    refresh_tokens::Entity::insert(refresh_tokens::ActiveModel {
        token_hash: Set(hash_token(&token.0)),
        family_id: Set(family_id.to_owned()),
        created_at: Set(now),
        used_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(token)
}

/// Remembers that `access` was issued within `family_id`, so that revoking the login
/// makes introspection report it inactive.
pub async fn record_access_token(
    db: &impl ConnectionTrait,
    family_id: &str,
    access: &IssuedAccessToken,
) -> anyhow::Result<()> {
    family_access_tokens::Entity::insert(family_access_tokens::ActiveModel {
        jti: Set(access.claims.jti.clone()),
        family_id: Set(family_id.to_owned()),
        expires_at: Set(timestamp(access.claims.exp)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A presented refresh token that is live and belongs to the presenting client.
#[derive(Debug)]
pub struct LiveRefresh {
    /// The token's row key.
    pub token_hash: String,
    /// Its login.
    pub family: refresh_families::Model,
}

/// Finds the login of a presented refresh token, refusing (with `invalid_grant`, whatever
/// the cause) unknown, expired, revoked and foreign tokens. A token that was already
/// rotated is reuse: the whole login is revoked.
pub async fn find_live(
    db: &impl ConnectionTrait,
    readers: Option<&Readers>,
    writer: &impl ConnectionTrait,
    presented: &str,
    client_id: &str,
) -> Result<LiveRefresh, OAuthError> {
    let token_hash = hash_token(presented);
    let Some((row, Some(family))) = token_and_login(db, readers, &token_hash).await? else {
        tracing::debug!("refresh refused: unknown token");
        return Err(OAuthError::InvalidGrant);
    };
    // RFC 6749 §6: the token must have been issued to the authenticated client.
    if family.client_id != client_id {
        tracing::debug!("refresh refused: token belongs to another client");
        return Err(OAuthError::InvalidGrant);
    }
    if family.revoked_at.is_some() || family.expires_at <= Utc::now() {
        tracing::debug!(family_id = %family.id, "refresh refused: login revoked or expired");
        return Err(OAuthError::InvalidGrant);
    }
    if row.used_at.is_some() {
        revoke_family(writer, &family.id).await?;
        tracing::warn!(family_id = %family.id, "refresh token reuse detected; login revoked");
        return Err(OAuthError::InvalidGrant);
    }
    Ok(LiveRefresh { token_hash, family })
}

type TokenAndLogin = (refresh_tokens::Model, Option<refresh_families::Model>);

/// A refresh token's row and its login's, in one query: on SQLite read on this thread (see
/// `sqlite-readers`), else, or when that fails, through sea-orm; the same rows either way
/// (a test holds them to it).
async fn token_and_login(
    db: &impl ConnectionTrait,
    readers: Option<&Readers>,
    token_hash: &str,
) -> Result<Option<TokenAndLogin>, DbErr> {
    if let Some(found) = readers.and_then(|r| r.read(|c| read_token_and_login(c, token_hash))) {
        return Ok(found);
    }
    refresh_tokens::Entity::find_by_id(token_hash.to_owned())
        .find_also_related(refresh_families::Entity)
        .one(db)
        .await
}

fn read_token_and_login(
    connection: &rusqlite::Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<TokenAndLogin>> {
    use rusqlite::OptionalExtension;
    use sqlite_readers::{datetime, optional_datetime};
    connection
        .prepare_cached(
            "SELECT t.token_hash, t.family_id, t.created_at, t.used_at, f.id, f.user_id, \
             f.client_id, f.scope, f.created_at, f.expires_at, f.revoked_at, f.sid, f.auth_time \
             FROM refresh_tokens t LEFT JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            let token = refresh_tokens::Model {
                token_hash: r.get(0)?,
                family_id: r.get(1)?,
                created_at: datetime(r.get_ref(2)?)?,
                used_at: optional_datetime(r.get_ref(3)?)?,
            };
            let family = match r.get::<_, Option<String>>(4)? {
                None => None,
                Some(id) => Some(refresh_families::Model {
                    id,
                    user_id: r.get(5)?,
                    client_id: r.get(6)?,
                    scope: r.get(7)?,
                    created_at: datetime(r.get_ref(8)?)?,
                    expires_at: datetime(r.get_ref(9)?)?,
                    revoked_at: optional_datetime(r.get_ref(10)?)?,
                    sid: r.get(11)?,
                    auth_time: optional_datetime(r.get_ref(12)?)?,
                }),
            };
            Ok((token, family))
        })
        .optional()
}

/// Revokes a login: its refresh tokens stop working and its access tokens introspect as
/// inactive.
pub async fn revoke_family(db: &impl ConnectionTrait, family_id: &str) -> anyhow::Result<()> {
    refresh_families::Entity::update_many()
        .col_expr(refresh_families::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_families::Column::Id.eq(family_id.to_owned()))
        .filter(refresh_families::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Whether the access token `jti` was revoked, alone or with its login.
pub async fn access_token_revoked(db: &impl ConnectionTrait, jti: &str) -> anyhow::Result<bool> {
    if revoked_access_tokens::Entity::find_by_id(jti.to_owned())
        .one(db)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    let Some(issued) = family_access_tokens::Entity::find_by_id(jti.to_owned())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let family = refresh_families::Entity::find_by_id(issued.family_id)
        .one(db)
        .await?;
    Ok(family.is_none_or(|f| f.revoked_at.is_some()))
}

/// Records an RFC 7009 revocation of one access token until its expiry.
pub async fn revoke_access_token(
    db: &impl ConnectionTrait,
    jti: &str,
    exp: i64,
) -> anyhow::Result<()> {
    let row = revoked_access_tokens::ActiveModel {
        jti: Set(jti.to_owned()),
        expires_at: Set(timestamp(exp)),
    };
    // Revoking twice is not an error.
    revoked_access_tokens::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec(db)
        .await?;
    Ok(())
}

/// The state of a refresh token for introspection.
pub async fn introspect(
    db: &impl ConnectionTrait,
    presented: &str,
) -> anyhow::Result<Option<refresh_families::Model>> {
    let Some(row) = refresh_tokens::Entity::find_by_id(hash_token(presented))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.used_at.is_some() {
        return Ok(None);
    }
    let family = refresh_families::Entity::find_by_id(row.family_id)
        .one(db)
        .await?;
    Ok(family.filter(|f| f.revoked_at.is_none() && f.expires_at > Utc::now()))
}

/// Deletes what can no longer matter: expired logins (with their tokens) and records of
/// access tokens past their expiry.
pub async fn purge_expired(db: &impl ConnectionTrait) -> anyhow::Result<()> {
    let now = Utc::now();
    revoked_access_tokens::Entity::delete_many()
        .filter(revoked_access_tokens::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    family_access_tokens::Entity::delete_many()
        .filter(family_access_tokens::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    let expired: Vec<String> = refresh_families::Entity::find()
        .filter(refresh_families::Column::ExpiresAt.lt(now))
        .all(db)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    for chunk in expired.chunks(500) {
        refresh_tokens::Entity::delete_many()
            .filter(refresh_tokens::Column::FamilyId.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
        family_access_tokens::Entity::delete_many()
            .filter(family_access_tokens::Column::FamilyId.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
        refresh_families::Entity::delete_many()
            .filter(refresh_families::Column::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    Ok(())
}

fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    #[test]
    fn refresh_tokens_carry_256_bits_and_hide_in_debug() {
        let t = RefreshToken::generate().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t.0).unwrap().len(), 32);
        assert!(!format!("{t:?}").contains(&t.0));
    }

    // The token and login read on the calling thread are the rows sea-orm reads, with and
    // without the optional columns (a used token, a revoked login with a session id).
    #[tokio::test]
    async fn the_synchronous_read_and_sea_orm_give_the_same_token_and_login() {
        let (_dir, db, readers) = crate::db::temporary_sqlite().await;
        let mut hashes = vec![hash_token("unknown")];
        for sid in [None, Some("session")] {
            let login = NewLogin {
                id: &uuid::Uuid::new_v4().to_string(),
                user_id: "u",
                client_id: "c",
                scope: "openid posts:read",
                lifetime: Duration::from_secs(600),
                sid,
                auth_time: Utc::now(),
            };
            let (family, token) = start_family(&db, login, true).await.unwrap();
            let hash = token.unwrap().hash();
            if sid.is_some() {
                refresh_tokens::Entity::update_many()
                    .col_expr(refresh_tokens::Column::UsedAt, Expr::value(Utc::now()))
                    .filter(refresh_tokens::Column::TokenHash.eq(hash.clone()))
                    .exec(&db)
                    .await
                    .unwrap();
                revoke_family(&db, &family.id).await.unwrap();
            }
            hashes.push(hash);
        }
        for hash in &hashes {
            let orm = refresh_tokens::Entity::find_by_id(hash.clone())
                .find_also_related(refresh_families::Entity)
                .one(&db)
                .await
                .unwrap();
            assert_eq!(
                readers.read(|c| read_token_and_login(c, hash)),
                Some(orm.clone())
            );
            assert_eq!(
                token_and_login(&db, Some(&readers), hash).await.unwrap(),
                orm
            );
        }
        let (token, family) = readers
            .read(|c| read_token_and_login(c, &hashes[2]))
            .unwrap()
            .unwrap();
        assert!(token.used_at.is_some() && family.unwrap().revoked_at.is_some());
    }

    #[test]
    fn the_stored_hash_is_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
