//! The bearer extractor (RFC 6750): every `/posts` handler takes a [`Caller`], which has
//! jwt-verifier read the `Authorization` header, verify the token offline and check one
//! scope, and answers failures as problem+json with the verifier's challenge.
//!
//! poem-openapi's built-in bearer scheme answers a missing token with a bare 401 and no
//! `WWW-Authenticate`, so the extractor is written by hand: every failure path below ends in
//! exactly one of the RFC 6750 §3 answers.

use std::marker::PhantomData;

use jwt_verifier::{BearerError, Claims};
use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{Request, RequestBody, Response};
use poem_openapi::registry::{MetaOAuthFlow, MetaOAuthFlows, MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes};

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
/// Stand-in `authorizationUrl`, swapped for the configured authorization endpoint.
pub const AUTHORIZE_URL_PLACEHOLDER: &str = "/oauth/authorize";

/// An RFC 6750 answer with an RFC 9457 body, like every other error of this API.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BearerProblem(#[from] pub BearerError);

impl ResponseError for BearerProblem {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        let mut response = Problem::new(self.status(), self.0.description()).into_response();
        response.headers_mut().extend(self.0.headers(REALM));
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
                    // The browser sign-in: code + PKCE as the public client posts-web.
                    authorization_code: Some(MetaOAuthFlow {
                        authorization_url: Some(AUTHORIZE_URL_PLACEHOLDER),
                        token_url: Some(TOKEN_URL_PLACEHOLDER),
                        refresh_url: None,
                        scopes: Scope::meta(),
                    }),
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
        let claims = state
            .bearer
            .authorize(request.headers(), &S::SCOPE.as_set())
            .await
            .map_err(BearerProblem)?;
        Ok(Self {
            claims,
            _scope: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use jwt_verifier::{Rejection, ScopeSet};
    use poem::http::header;

    use super::*;

    #[test]
    fn answers_are_problems_with_the_posts_api_challenge() {
        let response = BearerProblem(BearerError::InvalidToken(Rejection::Expired)).as_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"posts-api\", error=\"invalid_token\", error_description=\"The access token expired\""
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert!(
            response
                .content_type()
                .unwrap()
                .starts_with("application/problem+json")
        );

        let scope = ScopeSet::parse("posts:write").unwrap();
        let response = BearerProblem(BearerError::InsufficientScope(scope)).as_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
