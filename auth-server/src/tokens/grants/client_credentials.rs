//! RFC 6749 §4.4 client credentials grant: the client acts for itself.

use super::{TokenBody, negotiate_scope};
use crate::{clients::AuthenticatedClient, error::OAuthError, state::AppState};

/// Issues an access token whose `sub` is the client id. No refresh token (RFC 6749
/// §4.4.3): the client can always authenticate again.
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn grant(
    state: &AppState,
    client: &AuthenticatedClient,
    scope: Option<&str>,
) -> Result<TokenBody, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::UnauthorizedClient(
            "client_credentials is for confidential clients only".into(),
        ));
    }
    let scope = negotiate_scope(scope, &client.scopes)?;
    // The OpenID Connect scopes describe a user; here the client acts for itself.
    if scope.has_oidc() {
        return Err(OAuthError::InvalidScope(
            "openid, profile and email need a user; client_credentials has none".into(),
        ));
    }
    let access = state
        .issuer
        .issue(&client.client_id, &client.client_id, &scope)
        .await?;
    tracing::info!(jti = %access.claims.jti, "issued token (client credentials)");
    Ok(TokenBody {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: None,
        id_token: None,
        scope: scope.to_string(),
    })
}
