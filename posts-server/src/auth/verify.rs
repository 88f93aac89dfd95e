//! Offline verification of RFC 9068 access tokens.
//!
//! Order matters: everything that can be refused without a key (size, header, algorithm,
//! type) is refused before a key is looked up, so garbage never triggers a JWKS fetch.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;

use super::jwks_cache::{JwksCache, KeyLookup};
use crate::config::TokenSettings;
use crate::domain::ScopeSet;
use crate::metrics::{Metrics, RejectionLabels};

/// Tokens longer than this are refused before any parsing; ours are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims this API relies on (RFC 9068 §2.2). `iss`, `aud`, `exp` and `nbf` are checked
/// by the verifier and not needed afterwards.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The caller: a user id, or a client id for client_credentials tokens.
    pub sub: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The granted scopes; absent means none.
    #[serde(default)]
    pub scope: ScopeSet,
    /// The token's unique id.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
}

/// Why a token was refused. The variant is logged and counted; the client only learns
/// "invalid" or "expired" (RFC 6750 §3.1 asks for no more).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// Not a JWS in compact serialization with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` other than RS256 (`none`, HMAC, other RSA or EC algorithms).
    #[error("algorithm {0:?} is not RS256")]
    Algorithm(String),
    /// `typ` other than `at+jwt` (RFC 9068 §4 keeps ID tokens out).
    #[error("typ {0:?} is not at+jwt")]
    Type(Option<String>),
    /// A `crit` header: we understand no extensions, so RFC 7515 §4.1.11 says refuse.
    #[error("critical header extensions are not supported")]
    Critical,
    /// No `kid` header.
    #[error("no kid header")]
    MissingKid,
    /// No key in the set (even after a refetch) has this kid.
    #[error("unknown kid {0:?}")]
    UnknownKid(String),
    /// The signature does not verify with the key named by `kid`.
    #[error("bad signature")]
    Signature,
    /// `exp` is past, beyond the leeway.
    #[error("expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    Audience,
    /// A required claim is missing or has the wrong type.
    #[error("bad claims: {0}")]
    Claims(String),
}

impl Rejection {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed(_) => "malformed",
            Self::Algorithm(_) => "algorithm",
            Self::Type(_) => "typ",
            Self::Critical => "crit",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid(_) => "unknown_kid",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Claims(_) => "claims",
        }
    }

    /// What the client is told in `error_description`: deliberately generic.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Expired => "The access token expired",
            _ => "The access token is invalid",
        }
    }
}

/// Why verification did not produce claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is bad.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// No key set has been loaded yet, so no token can be checked: the server's fault, not
    /// the client's.
    #[error("no key set loaded yet")]
    KeysUnavailable,
}

/// Checks access tokens against the cached key set and the configured issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: JwksCache,
    validation: Validation,
    rejections: Family<RejectionLabels, Counter>,
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
    /// A verifier for tokens issued by `settings.issuer` for `settings.audience`.
    pub fn new(keys: JwksCache, settings: &TokenSettings, metrics: &Metrics) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            keys,
            validation,
            rejections: metrics.token_rejections.clone(),
        }
    }

    /// The leeway applied to `exp` and `nbf`.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.validation.leeway)
    }

    /// Verifies `token` and returns its claims. Every rejection is counted and logged at
    /// debug level with its exact reason.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let result = self.check(token).await;
        if let Err(VerifyError::Rejected(rejection)) = &result {
            self.record(rejection);
        }
        result
    }

    /// Counts and logs a rejection, including ones found before a token reaches
    /// [`TokenVerifier::verify`] (an unusable `Authorization` header).
    pub fn record(&self, rejection: &Rejection) {
        self.rejections
            .get_or_create(&RejectionLabels {
                reason: rejection.reason(),
            })
            .inc();
        tracing::debug!(reason = %rejection, "access token rejected");
    }

    async fn check(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge.into());
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
        let key = match self.keys.key_for(&kid).await {
            KeyLookup::Found(key) => key,
            KeyLookup::UnknownKid => return Err(Rejection::UnknownKid(kid).into()),
            KeyLookup::NoKeySet => return Err(VerifyError::KeysUnavailable),
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| VerifyError::Rejected(rejection_for(error.kind())))?;
        // The subject becomes a post's author id: it must be something `?author=` can
        // name and the database can store (PostgreSQL refuses NUL).
        if !is_usable_subject(&claims.sub) {
            return Err(Rejection::Claims("unusable sub".to_owned()).into());
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

/// The longest subject: the limit of the `author` filter.
pub const MAX_SUBJECT_CHARS: usize = 255;

/// A subject of 1–255 characters, none of them control characters.
fn is_usable_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.chars().count() <= MAX_SUBJECT_CHARS
        && !sub.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subjects_an_author_filter_can_name_are_usable() {
        assert!(is_usable_subject("0b9a0d5e-5c1e-4c43-9d1f-3f1d7e2a9b10"));
        assert!(!is_usable_subject(""));
        assert!(!is_usable_subject("a\0b"));
        assert!(!is_usable_subject(&"x".repeat(256)));
    }

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

    #[test]
    fn claims_need_every_rfc_9068_member() {
        let full = r#"{"sub":"u","client_id":"c","scope":"posts:read","jti":"j","exp":1,"iat":1}"#;
        assert!(serde_json::from_str::<Claims>(full).is_ok());
        let no_client = r#"{"sub":"u","scope":"posts:read","jti":"j","exp":1,"iat":1}"#;
        assert!(serde_json::from_str::<Claims>(no_client).is_err());
    }

    #[test]
    fn only_expiry_is_described_specifically() {
        assert_eq!(Rejection::Expired.description(), "The access token expired");
        assert_eq!(
            Rejection::Signature.description(),
            "The access token is invalid"
        );
        assert_eq!(
            Rejection::Issuer.description(),
            "The access token is invalid"
        );
    }
}
