//! The grant types of the token endpoint, one file each.

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    clients::AuthenticatedClient,
    domain::ScopeSet,
    error::OAuthError,
    state::AppState,
    tokens::{
        AccessClaims, IssuedAccessToken,
        id_token::{self, IdTokenFor},
        refresh::NewLogin,
        rotation::Started,
    },
};

/// RFC 6749 §5.1 successful token response.
#[derive(Debug, Clone, Serialize, poem_openapi::Object)]
pub struct TokenBody {
    /// The RFC 9068 JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Present for the password and refresh grants.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// OpenID Connect ID token, whenever `openid` is granted to a user.
    #[oai(skip_serializing_if_is_none)]
    pub id_token: Option<String>,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// A user's login, as the password and authorization-code grants start it.
#[derive(Debug, Clone, Copy)]
pub struct UserLogin<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The granted scope.
    pub scope: &'a ScopeSet,
    /// The browser session (authorization code only).
    pub sid: Option<&'a str>,
    /// When the user entered their password.
    pub auth_time: DateTime<Utc>,
    /// The authorization request's nonce.
    pub nonce: Option<&'a str>,
}

/// Starts a new login (a refresh-token family; its first refresh token when the client may
/// refresh) and signs its tokens. With `code_hash` the code grant's code is used up in the
/// same transaction; `None` means someone used it first, and nothing was stored.
///
/// The login is handed to the committing task (see `tokens::rotation`) before the tokens
/// are signed, and committed while they are: the signatures take a core, the COMMIT waits
/// for the disk. Nothing is answered before the COMMIT.
pub async fn start_login(
    state: &AppState,
    client: &AuthenticatedClient,
    login: UserLogin<'_>,
    code_hash: Option<&str>,
) -> Result<Option<TokenBody>, OAuthError> {
    let family_id = uuid::Uuid::new_v4().to_string();
    let scope = login.scope.to_string();
    let claims = state
        .issuer
        .claims(login.user_id, &client.client_id, login.scope);
    let new_login = NewLogin {
        id: &family_id,
        user_id: login.user_id,
        client_id: &client.client_id,
        scope: &scope,
        lifetime: state.settings.refresh_token_ttl,
        sid: login.sid,
        auth_time: login.auth_time,
    };
    let with_refresh_token = client.may_use("refresh_token");
    let started = state
        .rotator
        .start_login(
            new_login,
            with_refresh_token,
            code_hash,
            &claims.jti,
            claims.exp,
        )
        .await?;
    let (access, id_token) = match sign(state, client, &login, claims).await {
        Ok(signed) => signed,
        Err(e) => {
            // The login may stand all the same, unused (and its code used up), as after a
            // lost response. Say so where an operator looks.
            if let Ok(Started::Login(_)) = started.outcome().await {
                tracing::error!(%family_id, "login stored, but its tokens could not be signed");
            }
            return Err(e.into());
        }
    };
    let refresh_token = match started.outcome().await? {
        Started::Login(first) => first,
        Started::CodeAlreadyUsed => return Ok(None),
    };
    tracing::info!(user_id = %login.user_id, %family_id, jti = %access.claims.jti, "login started");
    Ok(Some(TokenBody {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: refresh_token.map(|t| t.into_string()),
        id_token,
        scope,
    }))
}

/// Signs the access token of `claims`, and the ID token that goes with it when `openid`
/// is granted.
pub async fn sign(
    state: &AppState,
    client: &AuthenticatedClient,
    login: &UserLogin<'_>,
    claims: AccessClaims,
) -> anyhow::Result<(IssuedAccessToken, Option<String>)> {
    let access = state.issuer.sign(claims).await?;
    let id_token = id_token_for(state, client, login, &access).await?;
    Ok((access, id_token))
}

/// An ID token to go with `access` when `openid` is granted.
pub async fn id_token_for(
    state: &AppState,
    client: &AuthenticatedClient,
    login: &UserLogin<'_>,
    access: &IssuedAccessToken,
) -> anyhow::Result<Option<String>> {
    if !login.scope.contains("openid") {
        return Ok(None);
    }
    let token = id_token::issue(
        &state.issuer,
        state.settings.id_token_ttl,
        IdTokenFor {
            sub: login.user_id,
            client_id: &client.client_id,
            auth_time: login.auth_time,
            nonce: login.nonce,
            sid: login.sid,
            access_token: &access.token,
        },
    )
    .await?;
    Ok(Some(token))
}

/// Granted scope = requested ∩ allowed; every API scope allowed when nothing is requested
/// (the OpenID Connect scopes only when asked for). An unknown or malformed scope, or a
/// request of which nothing can be granted, is `invalid_scope` (RFC 6749 §5.2).
pub fn negotiate_scope(
    requested: Option<&str>,
    allowed: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    let requested = match requested.map(str::trim) {
        None | Some("") => return non_empty(allowed.api_only()),
        Some(raw) => ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?,
    };
    non_empty(requested.intersection(allowed))
}

fn non_empty(scope: ScopeSet) -> Result<ScopeSet, OAuthError> {
    if scope.is_empty() {
        Err(OAuthError::InvalidScope(
            "none of the requested scopes may be granted to this client".into(),
        ))
    } else {
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_scope_grants_everything_allowed() {
        let allowed = ScopeSet::parse("posts:read").unwrap();
        assert_eq!(negotiate_scope(None, &allowed).unwrap(), allowed);
        assert_eq!(negotiate_scope(Some("  "), &allowed).unwrap(), allowed);
    }

    #[test]
    fn absent_scope_grants_no_openid_scope() {
        let allowed = ScopeSet::parse("posts:read openid email").unwrap();
        assert_eq!(
            negotiate_scope(None, &allowed).unwrap().to_string(),
            "posts:read"
        );
        let asked = negotiate_scope(Some("openid email"), &allowed).unwrap();
        assert_eq!(asked.to_string(), "email openid");
        let only_oidc = ScopeSet::parse("openid").unwrap();
        assert!(negotiate_scope(None, &only_oidc).is_err());
    }

    #[test]
    fn requested_scope_is_narrowed_to_what_is_allowed() {
        let allowed = ScopeSet::parse("posts:read").unwrap();
        let granted = negotiate_scope(Some("posts:read posts:write"), &allowed).unwrap();
        assert_eq!(granted.to_string(), "posts:read");
    }

    #[test]
    fn unknown_or_ungrantable_scope_is_invalid_scope() {
        let allowed = ScopeSet::parse("posts:read").unwrap();
        assert!(matches!(
            negotiate_scope(Some("admin"), &allowed),
            Err(OAuthError::InvalidScope(_))
        ));
        assert!(matches!(
            negotiate_scope(Some("posts:write"), &allowed),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}
