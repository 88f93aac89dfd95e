//! Refresh tokens: opaque, 256 random bits, stored only as SHA-256 hashes, bound to a
//! login (family) of one user, client and scope. Every use rotates the token; presenting a
//! rotated one again revokes the whole login (RFC 9700 §4.14.2).

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};

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
    let now = Utc::now();
    let expires_at = now
        .checked_add_signed(chrono::Duration::from_std(login.lifetime)?)
        .ok_or_else(|| anyhow::anyhow!("refresh-token lifetime out of range"))?;
    let family = refresh_families::Model {
        id: login.id.to_owned(),
        user_id: login.user_id.to_owned(),
        client_id: login.client_id.to_owned(),
        scope: login.scope.to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        sid: login.sid.map(str::to_owned),
        auth_time: Some(login.auth_time),
    };
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
    writer: &impl ConnectionTrait,
    presented: &str,
    client_id: &str,
) -> Result<LiveRefresh, OAuthError> {
    let token_hash = hash_token(presented);
    // The token and its login in one query.
    let Some((row, Some(family))) = refresh_tokens::Entity::find_by_id(token_hash.clone())
        .find_also_related(refresh_families::Entity)
        .one(db)
        .await?
    else {
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

    #[test]
    fn the_stored_hash_is_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
