//! Why a token was refused: distinguishable for logs and metrics, generic for the client.

/// Tokens longer than this are refused before any parsing; the auth server's are well
/// under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. The variant is logged and counted (see [`Rejection::label`]);
/// the client only learns "invalid" or "expired" ([`Rejection::description`]), as RFC 6750
/// §3.1 asks for no more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// Not a JWS in compact serialization with a JSON header, or not a b64token in the
    /// `Authorization` header.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` other than RS256 (`none`, HMAC, other RSA or EC algorithms).
    #[error("algorithm {0:?} is not RS256")]
    Algorithm(String),
    /// `typ` other than `at+jwt` (RFC 9068 §4 keeps ID tokens out).
    #[error("typ {0:?} is not at+jwt")]
    Type(Option<String>),
    /// A `crit` header: no extension is understood, so RFC 7515 §4.1.11 says refuse.
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
    /// A required claim is missing or has the wrong type, or `sub` is unusable.
    #[error("bad claims: {0}")]
    Claims(String),
}

impl Rejection {
    /// A stable short label for metrics and logs, one per variant: `too_large`,
    /// `malformed`, `algorithm`, `typ`, `crit`, `missing_kid`, `unknown_kid`, `signature`,
    /// `expired`, `not_yet_valid`, `issuer`, `audience`, `claims`. Never carries token
    /// content, so it is safe as a metric label.
    pub fn label(&self) -> &'static str {
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

    /// What the client is told in `error_description`: deliberately generic, so that a
    /// forger learns nothing about which check failed.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Expired => "The access token expired",
            _ => "The access token is invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn labels_never_carry_token_content() {
        let kid = Rejection::UnknownKid("attacker-chosen".to_owned());
        assert_eq!(kid.label(), "unknown_kid");
        let alg = Rejection::Algorithm("HS256".to_owned());
        assert_eq!(alg.label(), "algorithm");
    }
}
