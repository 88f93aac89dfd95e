//! RFC 6750: reading the token of an `Authorization: Bearer` header, and answering every
//! failure with exactly one of the §3 challenges. Framework-agnostic: it speaks the `http`
//! crate's types, which poem, axum and hyper share.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::{Claims, Rejection, ScopeSet, TokenVerifier, VerifyError};

/// Why a request was not authenticated, answered per RFC 6750 §3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization: Bearer` header: a challenge without an error code (§3.1).
    #[error("no bearer token")]
    MissingToken,
    /// The request itself is malformed, e.g. two `Authorization` headers.
    #[error("malformed request: {0}")]
    InvalidRequest(&'static str),
    /// The token is bad; the rejection says why, the client learns only its
    /// [`Rejection::description`].
    #[error("invalid token: {0}")]
    InvalidToken(Rejection),
    /// The token is fine but lacks some of these scopes (all of which are required).
    #[error("missing scope {0}")]
    InsufficientScope(ScopeSet),
    /// No key set loaded yet, so no token can be checked (503, not the client's fault).
    #[error("no key set loaded yet")]
    KeysUnavailable,
}

impl BearerError {
    /// 401, 400, 403 or 503.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `WWW-Authenticate` value for `realm` (which [`BearerAuth::new`] has made safe to
    /// quote); `None` for a 503, which is no challenge.
    pub fn challenge(&self, realm: &str) -> Option<String> {
        let realm = format!("Bearer realm=\"{realm}\"");
        match self {
            Self::MissingToken => Some(realm),
            Self::InvalidRequest(description) => Some(format!(
                "{realm}, error=\"invalid_request\", error_description=\"{description}\""
            )),
            Self::InvalidToken(rejection) => Some(format!(
                "{realm}, error=\"invalid_token\", error_description=\"{}\"",
                rejection.description()
            )),
            Self::InsufficientScope(scope) => Some(format!(
                "{realm}, error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            Self::KeysUnavailable => None,
        }
    }

    /// What went wrong, for a human reading the response body; as generic as the challenge.
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            Self::MissingToken => "A bearer access token is required".into(),
            Self::InvalidRequest(description) => (*description).into(),
            Self::InvalidToken(rejection) => rejection.description().into(),
            Self::InsufficientScope(scope) => {
                format!("The access token lacks the {scope} scope").into()
            }
            Self::KeysUnavailable => {
                "Access tokens cannot be checked yet; try again shortly".into()
            }
        }
    }

    /// The headers of the answer: the challenge, `Cache-Control: no-store` (RFC 6750
    /// §5.4: responses about tokens must not be cached), and `Retry-After` on a 503.
    pub fn headers(&self, realm: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(challenge) = self
            .challenge(realm)
            .and_then(|c| HeaderValue::try_from(c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if matches!(self, Self::KeysUnavailable) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers
    }
}

impl From<VerifyError> for BearerError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => Self::InvalidToken(rejection),
            VerifyError::InsufficientScope(scope) => Self::InsufficientScope(scope),
            VerifyError::KeysUnavailable => Self::KeysUnavailable,
        }
    }
}

/// A [`TokenVerifier`] and the `realm` of its challenges: everything needed to turn a
/// request's headers into claims or an RFC 6750 answer. Cheap to clone.
///
/// ```
/// # use jwt_verifier::{BearerAuth, BearerError, JwksCache, KeySource, TokenVerifier};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let keys = JwksCache::builder(KeySource::File("jwks.json".into())).build()?;
/// let verifier = TokenVerifier::builder(keys, "https://auth.example.com", "orders-api").build();
/// let auth = BearerAuth::new(verifier, "orders-api");
///
/// let error = auth.authenticate(&http::HeaderMap::new()).await.unwrap_err();
/// assert_eq!(error, BearerError::MissingToken);
/// assert_eq!(error.status(), 401);
/// assert_eq!(
///     error.challenge(auth.realm()).unwrap(),
///     r#"Bearer realm="orders-api""#
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BearerAuth {
    verifier: TokenVerifier,
    realm: Arc<str>,
}

impl BearerAuth {
    /// Challenges name `realm`. Quotes, backslashes and control characters are dropped
    /// from it, so that it always fits in a quoted string.
    pub fn new(verifier: TokenVerifier, realm: &str) -> Self {
        let realm: String = realm
            .chars()
            .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
            .collect();
        Self {
            verifier,
            realm: realm.into(),
        }
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The verifier.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The claims of the request's bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, BearerError> {
        let token = match bearer_token(headers)? {
            Ok(token) => token,
            Err(rejection) => {
                self.verifier.record(&rejection);
                return Err(BearerError::InvalidToken(rejection));
            }
        };
        Ok(self.verifier.verify(token).await?)
    }

    /// The claims of the request's bearer token, which must grant every scope of
    /// `required`.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        required: &ScopeSet,
    ) -> Result<Claims, BearerError> {
        let claims = self.authenticate(headers).await?;
        if !claims.scope.contains_all(required) {
            self.verifier.record_scope(required, &claims.scope);
            return Err(BearerError::InsufficientScope(required.clone()));
        }
        Ok(claims)
    }

    /// The headers answering `error` (see [`BearerError::headers`]).
    pub fn headers(&self, error: &BearerError) -> HeaderMap {
        error.headers(&self.realm)
    }
}

/// The token of an `Authorization: Bearer` header. The outer error is a request-level
/// failure; the inner one a bad token that should be counted like any other.
pub fn bearer_token(headers: &HeaderMap) -> Result<Result<&str, Rejection>, BearerError> {
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
    // A table rather than a test per character: the check runs over every byte of every
    // token a resource server is shown.
    if !token.iter().all(|&b| B64TOKEN[usize::from(b)]) {
        return Ok(Err(Rejection::Malformed("not a b64token")));
    }
    match std::str::from_utf8(token) {
        Ok(token) => Ok(Ok(token)),
        Err(_) => Ok(Err(Rejection::Malformed("not a b64token"))),
    }
}

/// The bytes of RFC 6750's b64token: ASCII letters and digits, `-._~+/` and `=`.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        b += 1;
    }
    table
};

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
    fn the_b64token_table_holds_exactly_the_rfc_6750_alphabet() {
        let alphabet: Vec<u8> = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain(*b"-._~+/=")
            .collect();
        for b in 0..=255u8 {
            assert_eq!(B64TOKEN[usize::from(b)], alphabet.contains(&b), "byte {b}");
            // Control characters never arrive in a header value.
            let value = [&b"Bearer a"[..], &[b], b"z"].concat();
            if HeaderValue::from_bytes(&value).is_ok() {
                let accepted = matches!(bearer_token(&headers(&[&value])), Ok(Ok(_)));
                // A space inside is refused too; only the ends are trimmed.
                assert_eq!(accepted, alphabet.contains(&b), "byte {b}");
            }
        }
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            BearerError::MissingToken.challenge("posts-api").unwrap(),
            "Bearer realm=\"posts-api\""
        );
        assert_eq!(
            BearerError::InvalidToken(Rejection::Signature)
                .challenge("posts-api")
                .unwrap(),
            "Bearer realm=\"posts-api\", error=\"invalid_token\", error_description=\"The access token is invalid\""
        );
        assert_eq!(
            BearerError::InsufficientScope(ScopeSet::parse("posts:write").unwrap())
                .challenge("posts-api")
                .unwrap(),
            "Bearer realm=\"posts-api\", error=\"insufficient_scope\", scope=\"posts:write\""
        );
        assert_eq!(BearerError::KeysUnavailable.challenge("posts-api"), None);
    }

    #[test]
    fn every_answer_forbids_caching_and_a_503_says_when_to_retry() {
        let missing = BearerError::MissingToken.headers("r");
        assert_eq!(missing[header::CACHE_CONTROL], "no-store");
        assert!(missing.get(header::RETRY_AFTER).is_none());
        let unavailable = BearerError::KeysUnavailable.headers("r");
        assert_eq!(unavailable[header::RETRY_AFTER], "5");
        assert!(unavailable.get(header::WWW_AUTHENTICATE).is_none());
    }
}
