//! poem integration (feature `poem`): RFC 6750 answers as poem errors, a middleware that
//! lets only requests with a valid token and the required scopes through, and [`Claims`] as
//! a handler parameter.
//!
//! ```
//! use jwt_verifier::testing::TestIssuer;
//! use jwt_verifier::{BearerAuth, Claims, JwksCache, KeySource, TokenVerifier};
//! use poem::{Endpoint, EndpointExt, Request, Route, get, handler, http::StatusCode};
//!
//! #[handler]
//! fn whoami(claims: Claims) -> String {
//!     claims.sub
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = TestIssuer::new("https://auth.example.com", "orders-api");
//! let dir = tempfile::tempdir()?;
//! let jwks = dir.path().join("jwks.json");
//! std::fs::write(&jwks, issuer.jwks())?;
//! let keys = JwksCache::builder(KeySource::File(jwks)).build()?;
//! keys.load().await?;
//! let auth = BearerAuth::new(
//!     TokenVerifier::builder(keys, "https://auth.example.com", "orders-api").build(),
//!     "orders-api",
//! );
//!
//! let app = Route::new()
//!     .at("/me", get(whoami))
//!     .with(auth.require("orders:read".parse()?));
//!
//! let token = issuer.token("alice", "orders:read");
//! let request = Request::builder()
//!     .uri("/me".parse()?)
//!     .header("authorization", format!("Bearer {token}"))
//!     .finish();
//! let mut response = app.call(request).await?;
//! assert_eq!(response.take_body().into_string().await?, "alice");
//!
//! let anonymous = app.get_response(Request::builder().uri("/me".parse()?).finish()).await;
//! assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(anonymous.headers()["www-authenticate"], r#"Bearer realm="orders-api""#);
//! # Ok(())
//! # }
//! ```

use ::poem::error::ResponseError;
use ::poem::http::{HeaderMap, StatusCode};
use ::poem::{Endpoint, FromRequest, Middleware, Request, RequestBody, Response};

use crate::{BearerAuth, BearerError, Claims, ScopeSet};

/// An RFC 6750 answer as a poem error: the status, the challenge, `Cache-Control:
/// no-store` and a plain-text body with the generic description. Services that want
/// another body (RFC 9457 problem details, say) can build their own from
/// [`BearerError::status`], [`BearerError::headers`] and [`BearerError::description`].
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Challenge {
    error: BearerError,
    headers: HeaderMap,
}

impl Challenge {
    /// Why the request was refused.
    pub fn error(&self) -> &BearerError {
        &self.error
    }
}

impl ResponseError for Challenge {
    fn status(&self) -> StatusCode {
        self.error.status()
    }

    fn as_response(&self) -> Response {
        let mut response = Response::builder()
            .status(self.status())
            .content_type("text/plain; charset=utf-8")
            .body(self.error.description().into_owned());
        response.headers_mut().extend(self.headers.clone());
        response
    }
}

impl BearerAuth {
    /// `error` as a poem error answering with this realm's challenge.
    pub fn challenge(&self, error: BearerError) -> Challenge {
        Challenge {
            headers: self.headers(&error),
            error,
        }
    }

    /// A middleware that answers every request without a valid token granting all of
    /// `required` with the RFC 6750 challenge, and hands the [`Claims`] of the others to
    /// the endpoint (take them as a `Claims` parameter, or `Data<&Claims>`).
    pub fn require(&self, required: ScopeSet) -> RequireBearer {
        RequireBearer {
            auth: self.clone(),
            required,
        }
    }
}

/// The middleware of [`BearerAuth::require`].
pub struct RequireBearer {
    auth: BearerAuth,
    required: ScopeSet,
}

impl<E: Endpoint> Middleware<E> for RequireBearer {
    type Output = RequireBearerEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequireBearerEndpoint {
            inner,
            auth: self.auth.clone(),
            required: self.required.clone(),
        }
    }
}

/// The endpoint produced by [`RequireBearer`].
pub struct RequireBearerEndpoint<E> {
    inner: E,
    auth: BearerAuth,
    required: ScopeSet,
}

impl<E: Endpoint> Endpoint for RequireBearerEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> ::poem::Result<Self::Output> {
        let claims = self
            .auth
            .authorize(req.headers(), &self.required)
            .await
            .map_err(|error| self.auth.challenge(error))?;
        req.extensions_mut().insert(claims);
        self.inner.call(req).await
    }
}

/// The claims the [`RequireBearer`] middleware verified; without that middleware, the
/// request's token is verified here with the [`BearerAuth`] attached to the route as data
/// (`.data(auth)`), without a scope check.
impl<'a> FromRequest<'a> for Claims {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> ::poem::Result<Self> {
        if let Some(claims) = req.extensions().get::<Claims>() {
            return Ok(claims.clone());
        }
        let auth = req.data::<BearerAuth>().ok_or_else(|| {
            // A wiring mistake of the service, not the client's: log it, answer 500.
            tracing::error!("a handler takes Claims but no BearerAuth is attached");
            ::poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
        })?;
        auth.authenticate(req.headers())
            .await
            .map_err(|error| auth.challenge(error).into())
    }
}
