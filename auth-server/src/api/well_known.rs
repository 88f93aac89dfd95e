//! `GET /.well-known/jwks.json` (RFC 7517) and `GET /.well-known/oauth-authorization-server`
//! (RFC 8414).

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{clients::GRANT_TYPES, domain::scope::KNOWN_SCOPES, keys::JwkSet, state::AppState};

/// The key set, cacheable.
#[derive(ApiResponse)]
pub enum JwksResponse {
    /// Every key that may still verify a live token, the active one first.
    #[oai(status = 200)]
    Ok(Json<JwkSet>, #[oai(header = "Cache-Control")] String),
}

/// RFC 8414 §2 authorization server metadata: exactly what this server implements.
#[derive(Object)]
pub struct ServerMetadata {
    /// The `iss` of every token.
    issuer: String,
    /// RFC 6749 token endpoint.
    token_endpoint: String,
    /// RFC 7517 key set.
    jwks_uri: String,
    /// RFC 7009 revocation endpoint.
    revocation_endpoint: String,
    /// RFC 7662 introspection endpoint.
    introspection_endpoint: String,
    /// No authorization endpoint exists yet, so no response type is supported.
    response_types_supported: Vec<String>,
    /// Supported grant types.
    grant_types_supported: Vec<String>,
    /// Scopes a client may request.
    scopes_supported: Vec<String>,
    /// Client authentication at the token endpoint (`none` for public clients).
    token_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the revocation endpoint.
    revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the introspection endpoint (confidential clients only).
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Human-readable documentation.
    service_documentation: String,
}

/// The discovery area.
pub struct WellKnownApi;

#[OpenApi(prefix_path = "/.well-known", tag = "ApiTags::Discovery")]
impl WellKnownApi {
    /// JSON Web Key Set.
    ///
    /// The public keys that verify access tokens. Resource servers cache it and refetch
    /// when they meet an unknown `kid`.
    #[oai(path = "/jwks.json", method = "get")]
    async fn jwks(&self, state: Data<&AppState>) -> JwksResponse {
        let max_age = state.settings.jwks_max_age.as_secs();
        JwksResponse::Ok(
            Json(state.keys.jwks()),
            format!("public, max-age={max_age}"),
        )
    }

    /// Authorization server metadata (RFC 8414).
    #[oai(path = "/oauth-authorization-server", method = "get")]
    async fn metadata(&self, state: Data<&AppState>) -> Json<ServerMetadata> {
        let s = &state.settings;
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let client_auth = strings(&["client_secret_basic", "client_secret_post"]);
        Json(ServerMetadata {
            issuer: s.issuer_str().to_owned(),
            token_endpoint: s.endpoint("/oauth/token"),
            jwks_uri: s.endpoint("/.well-known/jwks.json"),
            revocation_endpoint: s.endpoint("/oauth/revoke"),
            introspection_endpoint: s.endpoint("/oauth/introspect"),
            response_types_supported: vec![],
            grant_types_supported: strings(&GRANT_TYPES),
            scopes_supported: strings(&KNOWN_SCOPES),
            token_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            revocation_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            introspection_endpoint_auth_methods_supported: client_auth,
            service_documentation: s.endpoint("/docs"),
        })
    }
}
