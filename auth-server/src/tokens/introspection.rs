//! RFC 7009 revocation and RFC 7662 introspection of both kinds of token.

use poem_openapi::Object;

use super::refresh;
use crate::{clients::AuthenticatedClient, entities::refresh_families, state::AppState};

/// RFC 7662 §2.2 introspection response. Inactive tokens get `{"active": false}` only.
#[derive(Debug, Default, Object)]
pub struct Introspection {
    /// Whether the token is currently active.
    pub active: bool,
    /// Granted scopes, space-separated.
    #[oai(skip_serializing_if_is_none)]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    #[oai(skip_serializing_if_is_none)]
    pub token_type: Option<String>,
    /// Expiry (for a refresh token: the end of its login).
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    /// Issue time.
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// Not valid before.
    #[oai(skip_serializing_if_is_none)]
    pub nbf: Option<i64>,
    /// Subject: user id, or client id for client credentials.
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// Audience.
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
    /// Issuer.
    #[oai(skip_serializing_if_is_none)]
    pub iss: Option<String>,
    /// Token id.
    #[oai(skip_serializing_if_is_none)]
    pub jti: Option<String>,
}

/// Whether `hint` says to try the refresh-token store first. Unknown hints are ignored
/// (RFC 7009 §2.1, RFC 7662 §2.1: the server searches all its tokens anyway).
fn refresh_first(hint: Option<&str>) -> bool {
    hint == Some("refresh_token")
}

/// Introspects any token this server issued.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn introspect(
    state: &AppState,
    token: &str,
    hint: Option<&str>,
) -> anyhow::Result<Introspection> {
    let as_refresh = async {
        Ok::<_, anyhow::Error>(
            refresh::introspect(&state.db, token)
                .await?
                .map(refresh_view),
        )
    };
    if refresh_first(hint) {
        if let Some(found) = as_refresh.await? {
            return Ok(found);
        }
        return access_view(state, token)
            .await
            .map(Option::unwrap_or_default);
    }
    if let Some(found) = access_view(state, token).await? {
        return Ok(found);
    }
    Ok(as_refresh.await?.unwrap_or_default())
}

async fn access_view(state: &AppState, token: &str) -> anyhow::Result<Option<Introspection>> {
    let Ok(claims) = state.issuer.verify(token) else {
        return Ok(None);
    };
    if refresh::access_token_revoked(&state.db, &claims.jti).await? {
        return Ok(None);
    }
    Ok(Some(Introspection {
        active: true,
        scope: Some(claims.scope),
        client_id: Some(claims.client_id),
        token_type: Some("Bearer".into()),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        nbf: Some(claims.nbf),
        sub: Some(claims.sub),
        aud: Some(claims.aud),
        iss: Some(claims.iss),
        jti: Some(claims.jti),
    }))
}

fn refresh_view(family: refresh_families::Model) -> Introspection {
    Introspection {
        active: true,
        scope: Some(family.scope),
        client_id: Some(family.client_id),
        token_type: Some("refresh_token".into()),
        exp: Some(family.expires_at.timestamp()),
        iat: Some(family.created_at.timestamp()),
        sub: Some(family.user_id),
        ..Default::default()
    }
}

/// Revokes `token` if it is one of ours and was issued to `client`. Anything else is a
/// silent no-op: RFC 7009 §2.2 answers 200 for unknown tokens, and answering differently
/// for another client's token would tell the caller it exists.
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn revoke(
    state: &AppState,
    client: &AuthenticatedClient,
    token: &str,
    hint: Option<&str>,
) -> anyhow::Result<()> {
    if refresh_first(hint) {
        if !revoke_refresh(state, client, token).await? {
            revoke_access(state, client, token).await?;
        }
    } else if !revoke_access(state, client, token).await? {
        revoke_refresh(state, client, token).await?;
    }
    Ok(())
}

async fn revoke_access(
    state: &AppState,
    client: &AuthenticatedClient,
    token: &str,
) -> anyhow::Result<bool> {
    let Ok(claims) = state.issuer.verify(token) else {
        return Ok(false);
    };
    if claims.client_id == client.client_id {
        refresh::revoke_access_token(&state.writer, &claims.jti, claims.exp).await?;
        tracing::info!(jti = %claims.jti, "access token revoked");
    }
    Ok(true)
}

async fn revoke_refresh(
    state: &AppState,
    client: &AuthenticatedClient,
    token: &str,
) -> anyhow::Result<bool> {
    use sea_orm::EntityTrait;
    let Some(row) = crate::entities::refresh_tokens::Entity::find_by_id(refresh::hash_token(token))
        .one(&state.db)
        .await?
    else {
        return Ok(false);
    };
    let family = refresh_families::Entity::find_by_id(row.family_id)
        .one(&state.db)
        .await?;
    if let Some(family) = family.filter(|f| f.client_id == client.client_id) {
        // RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens
        // of the same grant.
        refresh::revoke_family(&state.writer, &family.id).await?;
        tracing::info!(family_id = %family.id, "login revoked");
    }
    Ok(true)
}
