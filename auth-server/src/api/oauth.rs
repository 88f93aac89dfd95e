//! `POST /oauth/token` (RFC 6749), and the revocation and introspection endpoints.

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    payload::{Form, Json, PlainText},
};
use serde::Deserialize;

use super::{
    ApiTags,
    client_auth::{client_credentials, client_ip},
};
use crate::{
    clients::{self, Credentials},
    error::{
        BASIC_CHALLENGE, NO_STORE, OAuthError, OAuthErrorBody, ProblemJson, RETRY_AFTER_SECONDS,
    },
    state::AppState,
    tokens::{
        grants::{self, TokenBody},
        introspection::{self, Introspection},
    },
};

/// RFC 6749 token request (form-encoded). Every parameter is optional here so that a
/// missing one is answered with `invalid_request` by the grant, not by the framework.
#[derive(Object, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token`, `client_credentials` or `password`.
    grant_type: Option<String>,
    /// Code grant: the authorization code.
    code: Option<String>,
    /// Code grant: the redirect URI of the authorization request, identical.
    redirect_uri: Option<String>,
    /// Code grant: the PKCE code verifier (RFC 7636).
    code_verifier: Option<String>,
    /// Password grant: the user's e-mail.
    username: Option<String>,
    /// Password grant: the user's password.
    password: Option<String>,
    /// Refresh grant: the refresh token.
    refresh_token: Option<String>,
    /// Requested scopes, space-separated.
    scope: Option<String>,
    /// `client_secret_post` or a public client: the client id.
    client_id: Option<String>,
    /// `client_secret_post`: the client secret.
    client_secret: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Declares the response enum of one OAuth endpoint: its success variant plus the RFC 6749
/// §5.2 error answers, with framework parse errors turned into `invalid_request`.
macro_rules! oauth_response {
    ($(#[$doc:meta])* $name:ident, $handler:ident, $handler_name:literal, $ok:ty) => {
        $(#[$doc])*
        #[derive(ApiResponse)]
        #[oai(bad_request_handler = $handler_name)]
        pub enum $name {
            /// Success.
            #[oai(status = 200)]
            Ok(
                $ok,
                #[oai(header = "Cache-Control")] String,
                #[oai(header = "Pragma")] String,
            ),
            /// `invalid_request`, `invalid_grant`, `invalid_scope`, `unauthorized_client`
            /// or `unsupported_grant_type`.
            #[oai(status = 400)]
            BadRequest(
                Json<OAuthErrorBody>,
                #[oai(header = "Cache-Control")] String,
                #[oai(header = "Pragma")] String,
            ),
            /// `invalid_client`; challenges with `Basic` when Basic was used.
            #[oai(status = 401)]
            Unauthorized(
                Json<OAuthErrorBody>,
                #[oai(header = "WWW-Authenticate")] Option<String>,
                #[oai(header = "Cache-Control")] String,
            ),
            /// The request body is over the size limit (`AUTH_MAX_BODY_BYTES`). Sent by
            /// the body-limit layer before this endpoint runs; listed so the document
            /// says so.
            #[oai(status = 413, content_type = "application/problem+json")]
            PayloadTooLarge(ProblemJson),
            /// Too many failed attempts.
            #[oai(status = 429)]
            TooManyRequests(
                Json<OAuthErrorBody>,
                #[oai(header = "Retry-After")] u64,
                #[oai(header = "Cache-Control")] String,
            ),
            /// The server failed.
            #[oai(status = 500)]
            ServerError(Json<OAuthErrorBody>, #[oai(header = "Cache-Control")] String),
            /// `temporarily_unavailable`: the database is unavailable for now; retry after
            /// `Retry-After` seconds.
            #[oai(status = 503)]
            Unavailable(
                Json<OAuthErrorBody>,
                #[oai(header = "Retry-After")] u64,
                #[oai(header = "Cache-Control")] String,
            ),
        }

        impl $name {
            fn ok(body: $ok) -> Self {
                Self::Ok(body, NO_STORE.into(), "no-cache".into())
            }
        }

        impl From<OAuthError> for $name {
            fn from(e: OAuthError) -> Self {
                let body = Json(e.body());
                match e {
                    OAuthError::InvalidClient { basic } => Self::Unauthorized(
                        body,
                        basic.then(|| BASIC_CHALLENGE.to_string()),
                        NO_STORE.into(),
                    ),
                    OAuthError::TooManyRequests { retry_after } => {
                        Self::TooManyRequests(body, retry_after, NO_STORE.into())
                    }
                    OAuthError::Internal(_) => Self::ServerError(body, NO_STORE.into()),
                    OAuthError::TemporarilyUnavailable(_) => {
                        Self::Unavailable(body, RETRY_AFTER_SECONDS, NO_STORE.into())
                    }
                    _ => Self::BadRequest(body, NO_STORE.into(), "no-cache".into()),
                }
            }
        }

        fn $handler(err: poem::Error) -> $name {
            OAuthError::InvalidRequest(format!("malformed request: {err}")).into()
        }
    };
}

oauth_response!(
    /// Every answer of the token endpoint.
    TokenResponse,
    token_bad_request,
    "token_bad_request",
    Json<TokenBody>
);
oauth_response!(
    /// Every answer of the revocation endpoint.
    RevokeResponse,
    revoke_bad_request,
    "revoke_bad_request",
    PlainText<String>
);
oauth_response!(
    /// Every answer of the introspection endpoint.
    IntrospectResponse,
    introspect_bad_request,
    "introspect_bad_request",
    Json<Introspection>
);

/// RFC 7009 revocation / RFC 7662 introspection request (form-encoded).
#[derive(Object, Deserialize)]
pub struct TokenInspectionRequest {
    /// The token.
    token: Option<String>,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
    /// `client_secret_post` or a public client: the client id.
    client_id: Option<String>,
    /// `client_secret_post`: the client secret.
    client_secret: Option<String>,
}

impl std::fmt::Debug for TokenInspectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInspectionRequest")
            .field("token_type_hint", &self.token_type_hint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The OAuth area.
pub struct OAuthApi;

#[OpenApi(prefix_path = "/oauth", tag = "ApiTags::OAuth")]
impl OAuthApi {
    /// Token endpoint (RFC 6749 §3.2).
    ///
    /// Grants: `authorization_code` (with PKCE), `refresh_token`, `client_credentials`, and
    /// the legacy `password` (username = e-mail).
    /// Clients authenticate with HTTP Basic or `client_id`/`client_secret` in the form; a
    /// public client sends `client_id` alone; a password grant without any client is
    /// attributed to the public client `posts-web`.
    #[oai(path = "/token", method = "post")]
    async fn token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Form<TokenRequest>,
    ) -> TokenResponse {
        match token(&state, req, body.0).await {
            Ok(body) => TokenResponse::ok(Json(body)),
            Err(e) => {
                state.metrics.token_error(e.code());
                if matches!(e, OAuthError::TooManyRequests { .. }) {
                    state.metrics.throttled();
                }
                e.into()
            }
        }
    }

    /// Token revocation (RFC 7009).
    ///
    /// Revoking a refresh token ends its whole login; revoking an access token makes it
    /// inactive until it expires. Unknown tokens are answered 200 too.
    #[oai(path = "/revoke", method = "post")]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Form<TokenInspectionRequest>,
    ) -> RevokeResponse {
        let result = async {
            let form = body.0;
            let credentials = client_credentials(
                req,
                form.client_id.as_deref(),
                form.client_secret.as_deref(),
            )?;
            let client = state.authenticate_client(credentials).await?;
            let token = required_token(form.token.as_deref())?;
            introspection::revoke(&state, &client, token, form.token_type_hint.as_deref()).await?;
            Ok::<_, OAuthError>(())
        };
        match result.await {
            Ok(()) => RevokeResponse::ok(PlainText(String::new())),
            Err(e) => e.into(),
        }
    }

    /// Token introspection (RFC 7662), for authenticated confidential clients.
    #[oai(path = "/introspect", method = "post")]
    async fn introspect(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Form<TokenInspectionRequest>,
    ) -> IntrospectResponse {
        let result = async {
            let form = body.0;
            let credentials = client_credentials(
                req,
                form.client_id.as_deref(),
                form.client_secret.as_deref(),
            )?;
            let basic = matches!(credentials, Credentials::Presented { basic: true, .. });
            let client = state.authenticate_client(credentials).await?;
            // RFC 7662 §2.1: the endpoint needs authorization; public clients have none.
            if !client.confidential {
                return Err(OAuthError::InvalidClient { basic });
            }
            let token = required_token(form.token.as_deref())?;
            Ok(introspection::introspect(&state, token, form.token_type_hint.as_deref()).await?)
        };
        match result.await {
            Ok(found) => IntrospectResponse::ok(Json(found)),
            Err(e) => e.into(),
        }
    }
}

fn required_token(token: Option<&str>) -> Result<&str, OAuthError> {
    token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))
}

async fn token(
    state: &AppState,
    req: &Request,
    form: TokenRequest,
) -> Result<TokenBody, OAuthError> {
    let credentials = client_credentials(
        req,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    let Some(grant_type) = form.grant_type.as_deref().filter(|g| !g.is_empty()) else {
        return Err(OAuthError::InvalidRequest("grant_type is required".into()));
    };
    if !clients::GRANT_TYPES.contains(&grant_type) {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type `{grant_type}` is not supported"
        )));
    }
    if matches!(credentials, Credentials::None) && grant_type == "client_credentials" {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    // RFC 6749 §4.1.3: a client that does not authenticate names itself.
    if matches!(credentials, Credentials::None) && grant_type == "authorization_code" {
        return Err(OAuthError::InvalidRequest(
            "client_id is required (or client authentication)".into(),
        ));
    }
    let client = state.authenticate_client(credentials).await?;
    if !client.may_use(grant_type) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use the {grant_type} grant"
        )));
    }
    let issued = match grant_type {
        "password" => {
            grants::password::grant(
                state,
                &client,
                form.username.as_deref(),
                form.password.as_deref(),
                form.scope.as_deref(),
                client_ip(req, state.settings.trust_forwarded_for),
            )
            .await?
        }
        "refresh_token" => {
            grants::refresh_token::grant(
                state,
                &client,
                form.refresh_token.as_deref(),
                form.scope.as_deref(),
            )
            .await?
        }
        "client_credentials" => {
            grants::client_credentials::grant(state, &client, form.scope.as_deref()).await?
        }
        "authorization_code" => {
            let exchange = grants::authorization_code::CodeExchange {
                code: form.code.as_deref(),
                redirect_uri: form.redirect_uri.as_deref(),
                code_verifier: form.code_verifier.as_deref(),
            };
            grants::authorization_code::grant(state, &client, exchange).await?
        }
        other => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type `{other}` is not supported"
            )));
        }
    };
    state.metrics.token_issued(grant_type);
    Ok(issued)
}
