//! The HTTP API: one `#[OpenApi]` impl per area, combined into one document.

mod client_auth;
pub mod health;
pub mod oauth;
pub mod userinfo;
pub mod users;
pub mod well_known;

pub(crate) use client_auth::client_ip;

use poem_openapi::{OpenApiService, Tags};

/// The areas of the API, as tags in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Sign-up and profile.
    Users,
    /// OAuth 2.0 token, revocation and introspection endpoints.
    OAuth,
    /// Discovery: key set, RFC 8414 and OpenID Connect metadata.
    Discovery,
    /// OpenID Connect UserInfo.
    #[oai(rename = "OpenID")]
    OpenIdConnect,
    /// Liveness, readiness and metrics.
    Operations,
}

/// Every API area as one OpenAPI service, served under `server_url`.
pub fn service(
    server_url: &str,
) -> OpenApiService<
    (
        users::UsersApi,
        oauth::OAuthApi,
        userinfo::UserInfoApi,
        well_known::WellKnownApi,
        health::HealthApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            users::UsersApi,
            oauth::OAuthApi,
            userinfo::UserInfoApi,
            well_known::WellKnownApi,
            health::HealthApi,
        ),
        "auth-server",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "OAuth 2.0 authorization server and OpenID Connect provider: sign-up, the \
         authorization-code (PKCE), refresh-token, client-credentials and password grants, \
         RS256 JWT access tokens (RFC 9068), ID tokens, UserInfo, JWKS, RFC 8414 and \
         OpenID Connect metadata. The browser side (/oauth/authorize, /login, /signup, \
         /consent, /oauth/logout) is described in the README.",
    )
    .server(server_url)
}
