//! RFC 6749 §4.1.3 authorization code grant, with PKCE (RFC 7636) required for every
//! client. It starts a login exactly like the password grant, so rotation, reuse
//! detection, revocation and introspection work unchanged.

use super::{TokenBody, UserLogin, start_login};
use crate::{
    clients::AuthenticatedClient,
    domain::{CodeChallenge, ScopeSet},
    error::OAuthError,
    state::AppState,
    tokens::codes,
};

/// The parameters of a code exchange.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// `code`.
    pub code: Option<&'a str>,
    /// `redirect_uri`: identical to the authorization request's.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
}

/// Exchanges a code for tokens. Every failure about the code itself (unknown, expired,
/// used, another client's, another redirect URI, a wrong verifier) is `invalid_grant`; a
/// code used before is also a replay, which revokes the login its first use started.
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn grant(
    state: &AppState,
    client: &AuthenticatedClient,
    exchange: CodeExchange<'_>,
) -> Result<TokenBody, OAuthError> {
    let Some(code) = exchange.code.filter(|c| !c.is_empty()) else {
        return Err(OAuthError::InvalidRequest("code is required".into()));
    };
    let Some(redirect_uri) = exchange.redirect_uri.filter(|r| !r.is_empty()) else {
        return Err(OAuthError::InvalidRequest(
            "redirect_uri is required (the one of the authorization request)".into(),
        ));
    };
    let found = codes::find(&state.db, state.readers.as_ref(), &state.writer, code).await?;
    let row = &found.row;
    if row.client_id != client.client_id {
        tracing::debug!("code refused: issued to another client");
        return Err(OAuthError::InvalidGrant);
    }
    // RFC 6749 §4.1.3: the same string as in the authorization request.
    if row.redirect_uri != redirect_uri {
        tracing::debug!("code refused: another redirect_uri");
        return Err(OAuthError::InvalidGrant);
    }
    if !CodeChallenge::from_stored(row.code_challenge.clone()).verify(exchange.code_verifier) {
        tracing::debug!("code refused: PKCE verification failed");
        return Err(OAuthError::InvalidGrant);
    }
    let scope =
        ScopeSet::parse(&row.scope).map_err(|e| anyhow::anyhow!("stored code scope: {e}"))?;
    let login = UserLogin {
        user_id: &row.user_id,
        scope: &scope,
        sid: row.sid.as_deref(),
        auth_time: row.auth_time,
        nonce: row.nonce.as_deref(),
    };
    let issued = start_login(state, client, login, Some(&found.code_hash)).await?;
    match issued {
        Some(body) => Ok(body),
        None => {
            // A concurrent exchange of the same code won: this one is the replay.
            if let Some(now) = codes::reload(&state.writer, &found.code_hash).await? {
                codes::replayed(&state.writer, &now).await?;
            }
            Err(OAuthError::InvalidGrant)
        }
    }
}
