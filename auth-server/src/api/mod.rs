//! The HTTP API: one `#[OpenApi]` impl per area, combined into one document.

mod client_auth;
pub mod health;
pub mod oauth;
pub mod users;
pub mod well_known;

use poem_openapi::{OpenApiService, Tags};

/// The areas of the API, as tags in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Sign-up and profile.
    Users,
    /// OAuth 2.0 token, revocation and introspection endpoints.
    OAuth,
    /// Discovery: key set and server metadata.
    Discovery,
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
        well_known::WellKnownApi,
        health::HealthApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            users::UsersApi,
            oauth::OAuthApi,
            well_known::WellKnownApi,
            health::HealthApi,
        ),
        "auth-server",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "OAuth 2.0 authorization server: sign-up, the password, refresh-token and \
         client-credentials grants, RS256 JWT access tokens (RFC 9068), JWKS and RFC 8414 \
         metadata.",
    )
    .server(server_url)
}
