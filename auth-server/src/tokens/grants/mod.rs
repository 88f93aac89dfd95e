//! The grant types of the token endpoint, one file each.

pub mod client_credentials;
pub mod password;
pub mod refresh_token;

use serde::Serialize;

use crate::{domain::ScopeSet, error::OAuthError};

/// RFC 6749 §5.1 successful token response.
#[derive(Debug, Clone, Serialize, poem_openapi::Object)]
pub struct TokenBody {
    /// The RFC 9068 JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Present for the password and refresh grants.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// Granted scope = requested ∩ allowed; everything allowed when nothing is requested.
/// An unknown or malformed scope, or a request of which nothing can be granted, is
/// `invalid_scope` (RFC 6749 §5.2).
pub fn negotiate_scope(
    requested: Option<&str>,
    allowed: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    let requested = match requested.map(str::trim) {
        None | Some("") => return non_empty(allowed.clone()),
        Some(raw) => ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?,
    };
    non_empty(requested.intersection(allowed))
}

fn non_empty(scope: ScopeSet) -> Result<ScopeSet, OAuthError> {
    if scope.is_empty() {
        Err(OAuthError::InvalidScope(
            "none of the requested scopes may be granted to this client".into(),
        ))
    } else {
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_scope_grants_everything_allowed() {
        let allowed = ScopeSet::parse("posts:read").unwrap();
        assert_eq!(negotiate_scope(None, &allowed).unwrap(), allowed);
        assert_eq!(negotiate_scope(Some("  "), &allowed).unwrap(), allowed);
    }

    #[test]
    fn requested_scope_is_narrowed_to_what_is_allowed() {
        let allowed = ScopeSet::parse("posts:read").unwrap();
        let granted = negotiate_scope(Some("posts:read posts:write"), &allowed).unwrap();
        assert_eq!(granted.to_string(), "posts:read");
    }

    #[test]
    fn unknown_or_ungrantable_scope_is_invalid_scope() {
        let allowed = ScopeSet::parse("posts:read").unwrap();
        assert!(matches!(
            negotiate_scope(Some("admin"), &allowed),
            Err(OAuthError::InvalidScope(_))
        ));
        assert!(matches!(
            negotiate_scope(Some("posts:write"), &allowed),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}
