//! RFC 6749 §4.3 resource owner password credentials grant. Legacy (RFC 9700 §2.4): it
//! can be switched off per client by leaving `password` out of the client's grant types.

use sea_orm::TransactionTrait;

use super::{TokenBody, negotiate_scope};
use crate::{
    clients::AuthenticatedClient, error::OAuthError, state::AppState, throttle, tokens::refresh,
    users,
};

/// Checks the user's credentials and starts a login: an access token and the first
/// refresh token of a new family.
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn grant(
    state: &AppState,
    client: &AuthenticatedClient,
    username: Option<&str>,
    password: Option<&str>,
    scope: Option<&str>,
    client_ip: Option<std::net::IpAddr>,
) -> Result<TokenBody, OAuthError> {
    // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    let (Some(username), Some(password)) = (
        username.filter(|u| !u.is_empty()),
        password.filter(|p| !p.is_empty()),
    ) else {
        return Err(OAuthError::InvalidRequest(
            "username and password are required".into(),
        ));
    };
    let scope = negotiate_scope(scope, &client.scopes)?;
    let policy = state.settings.throttle.policy();
    // One check at a time per account, from the throttle check to the recorded outcome,
    // so that parallel guesses cannot all pass the check before the first failure is
    // counted. Issuing the tokens happens after the turn ends.
    let turn = state.login_gate.enter(username).await;
    let had_failures = throttle::check(&state.db, &policy, username, client_ip).await?;
    let Some(user) =
        users::authenticate(&state.db, &state.hasher, username, password.to_owned()).await?
    else {
        throttle::record_failure(&state.writer, &policy, username, client_ip).await?;
        state.metrics.failed_login();
        tracing::debug!("password grant refused: bad credentials");
        return Err(OAuthError::InvalidGrant);
    };
    if had_failures {
        throttle::record_success(&state.writer, username).await?;
    }
    drop(turn);
    let access = state
        .issuer
        .issue(&user.id, &client.client_id, &scope)
        .await?;
    let refresh_token = if client.may_use("refresh_token") {
        let txn = state.writer.begin().await?;
        let (family, token) = refresh::start_family(
            &txn,
            &user.id,
            &client.client_id,
            &scope.to_string(),
            state.settings.refresh_token_ttl,
        )
        .await?;
        refresh::record_access_token(&txn, &family.id, &access).await?;
        txn.commit().await?;
        Some(token.into_string())
    } else {
        None
    };
    tracing::info!(user_id = %user.id, jti = %access.claims.jti, "issued tokens (password grant)");
    Ok(TokenBody {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token,
        scope: scope.to_string(),
    })
}
