//! RFC 6749 §6 refresh grant, with rotation and reuse detection.

use super::{TokenBody, UserLogin, sign};
use crate::{
    clients::AuthenticatedClient,
    domain::ScopeSet,
    error::OAuthError,
    state::AppState,
    tokens::{refresh, rotation::Rotated},
};

/// Exchanges a live refresh token for a new access token and its successor.
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn grant(
    state: &AppState,
    client: &AuthenticatedClient,
    presented: Option<&str>,
    scope: Option<&str>,
) -> Result<TokenBody, OAuthError> {
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return Err(OAuthError::InvalidRequest(
            "refresh_token is required".into(),
        ));
    };
    let live = refresh::find_live(
        &state.db,
        state.readers.as_ref(),
        &state.writer,
        presented,
        &client.client_id,
    )
    .await?;
    let granted =
        ScopeSet::parse(&live.family.scope).map_err(|e| anyhow::anyhow!("stored scope: {e}"))?;
    // RFC 6749 §6: the new access token may be narrower, never wider; the login keeps
    // its original scope for later refreshes.
    let scope = match scope.map(str::trim).filter(|s| !s.is_empty()) {
        None => granted,
        Some(raw) => {
            let requested =
                ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
            if requested.is_empty() || !requested.is_subset_of(&granted) {
                return Err(OAuthError::InvalidScope(
                    "the requested scope exceeds the scope originally granted".into(),
                ));
            }
            requested
        }
    };
    // The rotation is handed over before the access token is signed, and committed while
    // it is: the signature takes a core, the COMMIT waits for the disk.
    let claims = state
        .issuer
        .claims(&live.family.user_id, &client.client_id, &scope);
    let rotation = state
        .rotator
        .start(&live.token_hash, &live.family.id, &claims.jti, claims.exp)
        .await?;
    // OpenID Connect Core §12.2: the same sub, aud and auth_time as the login's first ID
    // token, and no nonce.
    let login = UserLogin {
        user_id: &live.family.user_id,
        scope: &scope,
        sid: live.family.sid.as_deref(),
        auth_time: live.family.auth_time.unwrap_or(live.family.created_at),
        nonce: None,
    };
    let (access, id_token) = match sign(state, client, &login, claims).await {
        Ok(signed) => signed,
        Err(e) => {
            // The rotation may stand all the same: the client gets a 500 and never sees
            // the successor, and its retry with this token will look like reuse, as after
            // a lost response. Say so where an operator looks.
            if let Ok(Rotated::Next(_)) = rotation.outcome().await {
                tracing::error!(family_id = %live.family.id, "refresh token rotated, but its tokens could not be signed");
            }
            return Err(e.into());
        }
    };
    let next = match rotation.outcome().await? {
        Rotated::Next(next) => next,
        Rotated::AlreadyUsed => {
            // Lost a race with a concurrent use of the same token: that is reuse too.
            refresh::revoke_family(&state.writer, &live.family.id).await?;
            tracing::warn!(family_id = %live.family.id, "concurrent refresh token use; login revoked");
            return Err(OAuthError::InvalidGrant);
        }
    };
    tracing::info!(family_id = %live.family.id, jti = %access.claims.jti, "issued tokens (refresh grant)");
    Ok(TokenBody {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: Some(next.into_string()),
        id_token,
        scope: scope.to_string(),
    })
}
