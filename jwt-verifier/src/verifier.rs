//! Offline verification of RFC 9068 access tokens.
//!
//! Order matters: everything that can be refused without a key (size, header, algorithm,
//! type) is refused before a key is looked up, so garbage never triggers a JWKS fetch.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::claims::{Claims, is_usable_subject};
use crate::jwks_cache::{JwksCache, KeyLookup};
use crate::rejection::{MAX_TOKEN_BYTES, Rejection};
use crate::scope::ScopeSet;
use crate::verified::VerifiedTokens;

/// Verified tokens a [`TokenVerifier`] remembers by default (about 300 bytes each).
pub const DEFAULT_CACHED_TOKENS: usize = 4096;

/// The largest leeway a verifier applies: no clock is a day off, and a leeway beyond the
/// epoch would overflow the `exp` arithmetic.
pub const MAX_LEEWAY: Duration = Duration::from_secs(24 * 3600);

/// Why verification did not produce claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is bad: RFC 6750 `invalid_token`.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The token is valid but lacks scopes the verifier requires of every token: RFC 6750
    /// `insufficient_scope`. Holds the required scopes.
    #[error("the token lacks scopes of {0:?}")]
    InsufficientScope(ScopeSet),
    /// No key set has been loaded yet, so no token can be checked: the service's fault,
    /// not the client's.
    #[error("no key set loaded yet")]
    KeysUnavailable,
}

/// Checks access tokens against a [`JwksCache`] and the configured issuer, audience and
/// required scopes. Cheap to clone; clones share everything.
///
/// ```
/// # use std::time::Duration;
/// # use jwt_verifier::{JwksCache, KeySource, ScopeSet, TokenVerifier};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = JwksCache::builder(KeySource::Url(
///     "https://auth.example.com/.well-known/jwks.json".parse()?,
/// ))
/// .build()?;
/// let verifier = TokenVerifier::builder(keys, "https://auth.example.com", "orders-api")
///     .leeway(Duration::from_secs(60))
///     .required_scopes("orders:read".parse::<ScopeSet>()?)
///     .build();
/// assert_eq!(verifier.issuer(), "https://auth.example.com");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenVerifier {
    // Shared, so that clones share the cache of verified tokens too.
    inner: Arc<Inner>,
}

struct Inner {
    keys: JwksCache,
    verified: VerifiedTokens,
    validation: Validation,
    issuer: String,
    audience: String,
    required: ScopeSet,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("leeway", &self.leeway())
            .field("required", &self.inner.required)
            .field("keys", &self.inner.keys)
            .finish()
    }
}

/// Settings of a [`TokenVerifier`], from [`TokenVerifier::builder`].
#[must_use]
pub struct TokenVerifierBuilder {
    keys: JwksCache,
    issuer: String,
    audience: String,
    leeway: Duration,
    required: ScopeSet,
    cached_tokens: usize,
}

impl TokenVerifierBuilder {
    /// Clock-skew leeway for `exp` and `nbf` (default 30 s), in whole seconds, at most
    /// [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// Scopes every token must carry (default none); a token lacking one is
    /// [`VerifyError::InsufficientScope`]. Scopes that differ per route are better checked
    /// per request, with [`ScopeSet::contains_all`] or
    /// [`BearerAuth::authorize`](crate::BearerAuth::authorize).
    pub fn required_scopes(mut self, scopes: ScopeSet) -> Self {
        self.required = scopes;
        self
    }

    /// How many verified tokens to remember (default [`DEFAULT_CACHED_TOKENS`]; 0 turns
    /// the cache off). A token presented again is then accepted without a second RSA
    /// check, as long as it is the very same token (its SHA-256 is the key), before its
    /// `exp`, and while the key set still holds the key that verified it: a key dropped
    /// from the set (a revoked key) stops vouching for its cached tokens at the next
    /// refresh of the set, as it stops verifying new ones. Scopes required of every token
    /// are checked on every request, cached or not.
    pub fn cached_tokens(mut self, capacity: usize) -> Self {
        self.cached_tokens = capacity;
        self
    }

    /// The verifier.
    pub fn build(self) -> TokenVerifier {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        TokenVerifier {
            inner: Arc::new(Inner {
                keys: self.keys,
                verified: VerifiedTokens::new(self.cached_tokens),
                validation,
                issuer: self.issuer,
                audience: self.audience,
                required: self.required,
            }),
        }
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
    // jku, x5u, jwk and x5c are deliberately not read: a token must never choose its own
    // key or make us fetch a URL it names.
}

impl TokenVerifier {
    /// Settings for a verifier of tokens issued by `issuer` (compared byte for byte: no
    /// trailing slash is added or removed) for `audience`, whose keys are in `keys`.
    pub fn builder(
        keys: JwksCache,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            required: ScopeSet::default(),
            cached_tokens: DEFAULT_CACHED_TOKENS,
        }
    }

    /// How many verified tokens the cache holds now (see
    /// [`TokenVerifierBuilder::cached_tokens`]).
    pub fn cached_tokens(&self) -> usize {
        self.inner.verified.len()
    }

    /// The expected `iss`.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The expected `aud`.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The leeway applied to `exp` and `nbf`.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.inner.validation.leeway)
    }

    /// The key set this verifier uses.
    pub fn keys(&self) -> &JwksCache {
        &self.inner.keys
    }

    /// Verifies `token` (the compact JWS, without `Bearer `) and returns its claims. Every
    /// refusal is reported to the cache's [`Observer`](crate::Observer) and logged at debug
    /// level with its exact reason.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let result = self.check(token).await;
        if let Err(VerifyError::Rejected(rejection)) = &result {
            self.record(rejection);
        }
        result
    }

    /// Reports and logs a rejection found outside [`TokenVerifier::verify`] (an unusable
    /// `Authorization` header, say), so that it is counted like any other.
    pub fn record(&self, rejection: &Rejection) {
        self.inner.keys.observer().token_rejected(rejection);
        tracing::debug!(reason = %rejection, label = rejection.label(), "access token rejected");
    }

    /// Reports and logs a valid token that lacks some of the `required` scopes.
    pub fn record_scope(&self, required: &ScopeSet, granted: &ScopeSet) {
        self.inner
            .keys
            .observer()
            .insufficient_scope(required, granted);
        tracing::debug!(
            required = %required,
            granted = %granted,
            "access token lacks a required scope"
        );
    }

    async fn check(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge.into());
        }
        let verified = &self.inner.verified;
        let hash = verified.is_enabled().then(|| VerifiedTokens::hash(token));
        if let Some(hit) = hash.and_then(|hash| verified.get(hash)) {
            let current = self.inner.keys.cached_key(&hit.kid);
            if let Some(claims) = hit.confirm(current.as_ref()) {
                return self.require_scopes(claims);
            }
        }
        let header = parse_header(token)?;
        match header.alg.as_deref() {
            Some("RS256") => {}
            other => {
                return Err(Rejection::Algorithm(other.unwrap_or_default().to_owned()).into());
            }
        }
        if header.crit.is_some() {
            return Err(Rejection::Critical.into());
        }
        if !is_access_token_type(header.typ.as_deref()) {
            return Err(Rejection::Type(header.typ).into());
        }
        let kid = header
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or(Rejection::MissingKid)?;
        let key = match self.inner.keys.key_for(&kid).await {
            KeyLookup::Found(key) => key,
            KeyLookup::UnknownKid => return Err(Rejection::UnknownKid(kid).into()),
            KeyLookup::NoKeySet => return Err(VerifyError::KeysUnavailable),
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|error| VerifyError::Rejected(rejection_for(error.kind())))?;
        // The subject is what services key their data by; it must be storable.
        if !is_usable_subject(&claims.sub) {
            return Err(Rejection::Claims("unusable sub".to_owned()).into());
        }
        if let Some(hash) = hash {
            verified.insert(hash, &claims, &kid, &key);
        }
        self.require_scopes(claims)
    }

    fn require_scopes(&self, claims: Claims) -> Result<Claims, VerifyError> {
        if !claims.scope.contains_all(&self.inner.required) {
            self.record_scope(&self.inner.required, &claims.scope);
            return Err(VerifyError::InsufficientScope(self.inner.required.clone()));
        }
        Ok(claims)
    }
}

fn parse_header(token: &str) -> Result<JoseHeader, Rejection> {
    let mut segments = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(Rejection::Malformed("not three dot-separated segments"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Rejection::Malformed("header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed("header is not a JSON object"))
}

// RFC 9068 §4: "at+jwt"; RFC 7515 §4.1.9 allows the full media type and says to compare
// case-insensitively.
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    })
}

fn rejection_for(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidSignature => Rejection::Signature,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidIssuer => Rejection::Issuer,
        ErrorKind::InvalidAudience => Rejection::Audience,
        ErrorKind::MissingRequiredClaim(claim) => Rejection::Claims(format!("missing {claim}")),
        ErrorKind::InvalidClaimFormat(claim) => Rejection::Claims(format!("malformed {claim}")),
        ErrorKind::Json(error) => Rejection::Claims(error.to_string()),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            Rejection::Algorithm("unsupported".to_owned())
        }
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            Rejection::Malformed("undecodable segment")
        }
        // A key that aws-lc refuses (e.g. too long) cannot verify anything.
        _ => Rejection::Signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(json: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(json))
    }

    #[test]
    fn typ_accepts_at_jwt_in_any_case_and_as_a_media_type() {
        assert!(is_access_token_type(Some("at+jwt")));
        assert!(is_access_token_type(Some("AT+JWT")));
        assert!(is_access_token_type(Some("application/at+jwt")));
        assert!(!is_access_token_type(Some("JWT")));
        assert!(!is_access_token_type(None));
    }

    #[test]
    fn a_token_must_have_exactly_three_segments() {
        for token in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert!(
                matches!(parse_header(token), Err(Rejection::Malformed(_))),
                "{token}"
            );
        }
    }

    #[test]
    fn the_header_must_be_base64url_json() {
        assert!(parse_header("!!!.e30.c2ln").is_err());
        assert!(parse_header(&header_of("[1,2]")).is_err());
        let header = parse_header(&header_of(
            r#"{"alg":"RS256","kid":"k","jku":"http://evil"}"#,
        ))
        .unwrap();
        assert_eq!(header.alg.as_deref(), Some("RS256"));
        assert_eq!(header.kid.as_deref(), Some("k"));
    }
}
