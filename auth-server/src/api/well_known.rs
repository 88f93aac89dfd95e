//! `GET /.well-known/jwks.json` (RFC 7517) and `GET /.well-known/oauth-authorization-server`
//! (RFC 8414), and the same metadata as `GET /.well-known/openid-configuration`.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{
    clients::GRANT_TYPES,
    domain::{prompt::PROMPT_VALUES, scope::KNOWN_SCOPES},
    keys::JwkSet,
    state::AppState,
};

/// The key set, cacheable.
#[derive(ApiResponse)]
pub enum JwksResponse {
    /// Every key that may still verify a live token, the active one first.
    #[oai(status = 200)]
    Ok(Json<JwkSet>, #[oai(header = "Cache-Control")] String),
}

/// RFC 8414 §2 authorization server metadata, which is also the OpenID Connect Discovery
/// 1.0 §3 provider metadata: one document, served at both well-known URLs, so the two can
/// never disagree.
#[derive(Object)]
pub struct ServerMetadata {
    /// The `iss` of every token (and of every authorization response, RFC 9207).
    issuer: String,
    /// RFC 6749 authorization endpoint (code + PKCE).
    authorization_endpoint: String,
    /// RFC 6749 token endpoint.
    token_endpoint: String,
    /// OpenID Connect UserInfo.
    userinfo_endpoint: String,
    /// RFC 7517 key set.
    jwks_uri: String,
    /// OpenID Connect RP-Initiated Logout.
    end_session_endpoint: String,
    /// RFC 7009 revocation endpoint.
    revocation_endpoint: String,
    /// RFC 7662 introspection endpoint.
    introspection_endpoint: String,
    /// Scopes a client may request.
    scopes_supported: Vec<String>,
    /// Only the authorization code flow.
    response_types_supported: Vec<String>,
    /// Authorization responses go in the redirect URI's query.
    response_modes_supported: Vec<String>,
    /// Supported grant types.
    grant_types_supported: Vec<String>,
    /// Subjects are the same user id for every client.
    subject_types_supported: Vec<String>,
    /// ID tokens are RS256 JWTs.
    id_token_signing_alg_values_supported: Vec<String>,
    /// Client authentication at the token endpoint (`none` for public clients).
    token_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the revocation endpoint.
    revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the introspection endpoint (confidential clients only).
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// PKCE (RFC 7636) is required, with S256 only.
    code_challenge_methods_supported: Vec<String>,
    /// Claims that ID tokens and UserInfo may carry.
    claims_supported: Vec<String>,
    /// Values of `prompt` understood.
    prompt_values_supported: Vec<String>,
    /// Only plain claims (no aggregated or distributed ones).
    claim_types_supported: Vec<String>,
    /// RFC 9207: authorization responses carry `iss`.
    authorization_response_iss_parameter_supported: bool,
    /// The `claims` request parameter is not supported.
    claims_parameter_supported: bool,
    /// Request objects (`request`) are not supported.
    request_parameter_supported: bool,
    /// `request_uri` is not supported (Discovery's default is true, so it is said).
    request_uri_parameter_supported: bool,
    /// Human-readable documentation.
    service_documentation: String,
}

impl ServerMetadata {
    /// The document for these settings.
    pub fn new(s: &crate::config::Settings) -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let client_auth = ["client_secret_basic", "client_secret_post"];
        let client_auth_or_none = ["client_secret_basic", "client_secret_post", "none"];
        Self {
            issuer: s.issuer_str().to_owned(),
            authorization_endpoint: s.endpoint("/oauth/authorize"),
            token_endpoint: s.endpoint("/oauth/token"),
            userinfo_endpoint: s.endpoint("/oauth/userinfo"),
            jwks_uri: s.endpoint("/.well-known/jwks.json"),
            end_session_endpoint: s.endpoint("/oauth/logout"),
            revocation_endpoint: s.endpoint("/oauth/revoke"),
            introspection_endpoint: s.endpoint("/oauth/introspect"),
            scopes_supported: strings(&KNOWN_SCOPES),
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            grant_types_supported: strings(&GRANT_TYPES),
            subject_types_supported: strings(&["public"]),
            id_token_signing_alg_values_supported: strings(&["RS256"]),
            token_endpoint_auth_methods_supported: strings(&client_auth_or_none),
            revocation_endpoint_auth_methods_supported: strings(&client_auth_or_none),
            introspection_endpoint_auth_methods_supported: strings(&client_auth),
            code_challenge_methods_supported: strings(&["S256"]),
            claims_supported: strings(&CLAIMS),
            prompt_values_supported: strings(&PROMPT_VALUES),
            claim_types_supported: strings(&["normal"]),
            authorization_response_iss_parameter_supported: true,
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            service_documentation: s.endpoint("/docs"),
        }
    }
}

/// Every claim an ID token or the UserInfo answer may carry.
const CLAIMS: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "updated_at",
    "email",
    "email_verified",
];

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
        Json(ServerMetadata::new(&state.settings))
    }

    /// OpenID Connect Discovery 1.0: the same document as RFC 8414's.
    #[oai(path = "/openid-configuration", method = "get")]
    async fn openid_configuration(&self, state: Data<&AppState>) -> Json<ServerMetadata> {
        Json(ServerMetadata::new(&state.settings))
    }
}
