//! The claims of a verified access token.

use serde::Deserialize;

use crate::ScopeSet;

/// The claims of a verified access token (RFC 9068 §2.2). `iss`, `aud`, `exp` and `nbf`
/// have been checked by the time a caller sees these.
///
/// Marked non-exhaustive so that claims can be added without breaking callers.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// The caller: a user id, or a client id for client_credentials tokens. 1–255
    /// characters, none of them control characters.
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

/// The longest subject: OpenID Connect Core 1.0 §2 caps `sub` at 255 characters, and a
/// service storing it as a key (an author id, say) needs a bound.
pub const MAX_SUBJECT_CHARS: usize = 255;

/// A subject of 1–255 characters, none of them control characters (PostgreSQL, for one,
/// refuses NUL in text).
pub(crate) fn is_usable_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.chars().count() <= MAX_SUBJECT_CHARS
        && !sub.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subjects_a_service_can_store_are_usable() {
        assert!(is_usable_subject("0b9a0d5e-5c1e-4c43-9d1f-3f1d7e2a9b10"));
        assert!(!is_usable_subject(""));
        assert!(!is_usable_subject("a\0b"));
        assert!(!is_usable_subject(&"x".repeat(256)));
    }

    #[test]
    fn claims_need_every_rfc_9068_member() {
        let full = r#"{"sub":"u","client_id":"c","scope":"posts:read","jti":"j","exp":1,"iat":1}"#;
        assert!(serde_json::from_str::<Claims>(full).is_ok());
        let no_client = r#"{"sub":"u","scope":"posts:read","jti":"j","exp":1,"iat":1}"#;
        assert!(serde_json::from_str::<Claims>(no_client).is_err());
    }
}
