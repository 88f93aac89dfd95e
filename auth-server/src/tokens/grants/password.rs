//! RFC 6749 §4.3 resource owner password credentials grant. Legacy (RFC 9700 §2.4): it
//! can be switched off per client by leaving `password` out of the client's grant types.

use chrono::Utc;

use super::{TokenBody, UserLogin, negotiate_scope, start_login};
use crate::{
    clients::AuthenticatedClient,
    error::OAuthError,
    state::AppState,
    users::{self, CredentialError},
};

/// Checks the user's credentials and starts a login: an access token, the first refresh
/// token of a new family, and an ID token when `openid` is asked for.
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
    let user = match users::verify_credentials(state, username, password, client_ip).await {
        Ok(user) => user,
        Err(CredentialError::Invalid) => return Err(OAuthError::InvalidGrant),
        Err(CredentialError::Throttled { retry_after }) => {
            return Err(OAuthError::TooManyRequests { retry_after });
        }
        Err(CredentialError::Internal(e)) => return Err(e.into()),
    };
    let login = UserLogin {
        user_id: &user.id,
        scope: &scope,
        sid: None,
        auth_time: Utc::now(),
        nonce: None,
    };
    let issued = start_login(state, client, login, None).await?;
    issued.ok_or_else(|| OAuthError::Internal(anyhow::anyhow!("the login was not started")))
}
