//! The bearer extractor (RFC 6750): every `/posts` handler takes a [`Caller`], which reads
//! the `Authorization` header, verifies the token offline and checks one scope.
//!
//! poem-openapi's built-in bearer scheme answers a missing token with a bare 401 and no
//! `WWW-Authenticate`, so the extractor is written by hand: every failure path below ends in
//! exactly one of the RFC 6750 §3 answers.

use std::marker::PhantomData;

use poem::error::ResponseError;
use poem::http::{HeaderMap, HeaderValue, StatusCode, header};
use poem::{Request, RequestBody, Response};
use poem_openapi::registry::{MetaOAuthFlow, MetaOAuthFlows, MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes};

use super::verify::{Claims, Rejection, VerifyError};
use crate::domain::Scope;
use crate::error::Problem;
use crate::state::AppState;

/// The `realm` of every challenge.
pub const REALM: &str = "posts-api";
/// The name of the security scheme in the OpenAPI document.
pub const SECURITY_SCHEME: &str = "oauth2";
/// Stand-in `tokenUrl` compiled into the document; `docs` swaps in the configured token
/// endpoint at start-up.
pub const TOKEN_URL_PLACEHOLDER: &str = "/oauth/token";

/// Why a request was not authenticated, answered per RFC 6750 §3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header: challenge without an error code (§3.1).
    #[error("no bearer token")]
    MissingToken,
    /// The request itself is malformed, e.g. two `Authorization` headers.
    #[error("malformed request: {0}")]
    InvalidRequest(&'static str),
    /// The token is bad; the string is the generic description shown to the client.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The token is fine but lacks this scope.
    #[error("missing scope {0}")]
    InsufficientScope(Scope),
    /// No key set loaded yet, so no token can be checked (503, not the client's fault).
    #[error("no key set loaded yet")]
    KeysUnavailable,
}

impl BearerError {
    fn challenge(&self) -> Option<String> {
        let realm = format!("Bearer realm=\"{REALM}\"");
        match self {
            Self::MissingToken => Some(realm),
            Self::InvalidRequest(description) => Some(format!(
                "{realm}, error=\"invalid_request\", error_description=\"{description}\""
            )),
            Self::InvalidToken(description) => Some(format!(
                "{realm}, error=\"invalid_token\", error_description=\"{description}\""
            )),
            Self::InsufficientScope(scope) => Some(format!(
                "{realm}, error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            Self::KeysUnavailable => None,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::MissingToken => "A bearer access token is required".to_owned(),
            Self::InvalidRequest(description) | Self::InvalidToken(description) => {
                (*description).to_owned()
            }
            Self::InsufficientScope(scope) => {
                format!("The access token lacks the {scope} scope")
            }
            Self::KeysUnavailable => {
                "Access tokens cannot be checked yet; try again shortly".to_owned()
            }
        }
    }
}

impl From<VerifyError> for BearerError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => Self::InvalidToken(rejection.description()),
            VerifyError::KeysUnavailable => Self::KeysUnavailable,
        }
    }
}

impl ResponseError for BearerError {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn as_response(&self) -> Response {
        let mut response = Problem::new(self.status(), self.detail()).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = self.challenge().and_then(|c| HeaderValue::try_from(c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if matches!(self, Self::KeysUnavailable) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        // RFC 6750 §5.4: responses about tokens must not be cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A scope a handler requires, as a type so the requirement sits in the handler signature.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Requires `posts:read`.
pub struct ReadPosts;

impl RequiredScope for ReadPosts {
    const SCOPE: Scope = Scope::PostsRead;
}

/// Requires `posts:write`.
pub struct WritePosts;

impl RequiredScope for WritePosts {
    const SCOPE: Scope = Scope::PostsWrite;
}

/// An authenticated caller whose token grants scope `S`.
pub struct Caller<S> {
    claims: Claims,
    _scope: PhantomData<fn() -> S>,
}

impl<S> Caller<S> {
    /// The caller's id (`sub`): the author id of the posts it writes.
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    /// Every verified claim.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

impl<'a, S: RequiredScope> ApiExtractor<'a> for Caller<S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SECURITY_SCHEME,
            MetaSecurityScheme {
                ty: "oauth2",
                description: Some(
                    "Access tokens from the auth server (RFC 9068 JWTs). Reads need \
                     `posts:read`, writes `posts:write`. Failures are RFC 6750 challenges.",
                ),
                name: None,
                key_in: None,
                scheme: None,
                bearer_format: None,
                flows: Some(MetaOAuthFlows {
                    implicit: None,
                    password: Some(MetaOAuthFlow {
                        authorization_url: None,
                        token_url: Some(TOKEN_URL_PLACEHOLDER),
                        refresh_url: None,
                        scopes: Scope::meta(),
                    }),
                    client_credentials: None,
                    authorization_code: None,
                }),
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = request.data::<AppState>().ok_or_else(|| {
            poem::Error::from_string(
                "AppState is not attached",
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        })?;
        let claims = authenticate(state, request.headers()).await?;
        if !claims.scope.contains(S::SCOPE) {
            tracing::debug!(
                sub = %claims.sub,
                required = %S::SCOPE,
                granted = ?claims.scope.iter().collect::<Vec<_>>(),
                "access token lacks the required scope"
            );
            return Err(BearerError::InsufficientScope(S::SCOPE).into());
        }
        Ok(Self {
            claims,
            _scope: PhantomData,
        })
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, BearerError> {
    let token = match bearer_token(headers)? {
        Ok(token) => token,
        Err(rejection) => {
            state.verifier.record(&rejection);
            return Err(BearerError::InvalidToken(rejection.description()));
        }
    };
    state
        .verifier
        .verify(token)
        .await
        .map_err(BearerError::from)
}

/// The token of an `Authorization: Bearer` header. The outer error is a request-level
/// failure; the inner one a bad token that should be counted like any other.
fn bearer_token(headers: &HeaderMap) -> Result<Result<&str, Rejection>, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::MissingToken);
    };
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest(
            "Send exactly one Authorization header",
        ));
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
        Some(space) => (&bytes[..space], &bytes[space..]),
        None => (bytes, &b""[..]),
    };
    // RFC 6750 §3.1: a request using another scheme "lacks any authentication information"
    // as far as this scheme goes, so it gets the plain challenge.
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return Err(BearerError::MissingToken);
    }
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Ok(Err(Rejection::Malformed("empty bearer token")));
    }
    // RFC 6750 §2.1 b64token; anything else (spaces, quotes, non-ASCII) is not a token.
    let is_b64token = token
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b));
    if !is_b64token {
        return Ok(Err(Rejection::Malformed("not a b64token")));
    }
    match std::str::from_utf8(token) {
        Ok(token) => Ok(Ok(token)),
        Err(_) => Ok(Err(Rejection::Malformed("not a b64token"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_token_follows_the_bearer_scheme_in_any_case() {
        assert_eq!(
            bearer_token(&headers(&[b"Bearer abc.def.ghi"])),
            Ok(Ok("abc.def.ghi"))
        );
        assert_eq!(bearer_token(&headers(&[b"bearer  abc"])), Ok(Ok("abc")));
    }

    #[test]
    fn no_header_or_another_scheme_is_a_missing_token() {
        assert_eq!(
            bearer_token(&HeaderMap::new()),
            Err(BearerError::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&[b"Basic dXNlcjpwYXNz"])),
            Err(BearerError::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&[b"Bearer2 x"])),
            Err(BearerError::MissingToken)
        );
    }

    #[test]
    fn two_authorization_headers_are_a_bad_request() {
        assert!(matches!(
            bearer_token(&headers(&[b"Bearer a", b"Bearer b"])),
            Err(BearerError::InvalidRequest(_))
        ));
    }

    #[test]
    fn tokens_outside_the_b64token_alphabet_are_rejected() {
        for value in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer \"a\"",
            b"Bearer \xff\xfe",
        ] {
            assert!(
                matches!(
                    bearer_token(&headers(&[value])),
                    Ok(Err(Rejection::Malformed(_)))
                ),
                "{value:?}"
            );
        }
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            BearerError::MissingToken.challenge().unwrap(),
            "Bearer realm=\"posts-api\""
        );
        assert_eq!(
            BearerError::InvalidToken("The access token is invalid")
                .challenge()
                .unwrap(),
            "Bearer realm=\"posts-api\", error=\"invalid_token\", error_description=\"The access token is invalid\""
        );
        assert_eq!(
            BearerError::InsufficientScope(Scope::PostsWrite)
                .challenge()
                .unwrap(),
            "Bearer realm=\"posts-api\", error=\"insufficient_scope\", scope=\"posts:write\""
        );
    }
}
