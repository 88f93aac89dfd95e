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
    writer: &impl ConnectionTrait,
    presented: &str,
) -> Result<FoundCode, OAuthError> {
    if presented.len() > 256 {
        return Err(OAuthError::InvalidGrant);
    }
    let code_hash = sha256_hex(presented.as_bytes());
    let Some(row) = authorization_codes::Entity::find_by_id(code_hash.clone())
        .one(db)
        .await?
    else {
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

/// Marks the code used by the login `family_id`, if nobody used it first. `false` means a
/// concurrent exchange won: that is a replay too (see [`replayed`]).
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
