//! The OAuth 2.0 scopes (RFC 6749 §3.3) this API checks. The `scope` claim itself is a
//! [`jwt_verifier::ScopeSet`].

use std::fmt;

use jwt_verifier::ScopeSet;
use poem_openapi::OAuthScopes;

/// A scope this API checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, OAuthScopes)]
pub enum Scope {
    /// Read posts.
    #[oai(rename = "posts:read")]
    PostsRead,
    /// Create, change and delete your own posts.
    #[oai(rename = "posts:write")]
    PostsWrite,
}

impl Scope {
    /// The scope token as it appears in the `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostsRead => "posts:read",
            Self::PostsWrite => "posts:write",
        }
    }

    /// The scope as a set of one, as the verifier checks and challenges name it.
    pub fn as_set(self) -> ScopeSet {
        // Both names are valid scope tokens (tested below), so nothing is ever dropped.
        ScopeSet::parse(self.as_str()).unwrap_or_default()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_is_a_valid_scope_token() {
        for scope in [Scope::PostsRead, Scope::PostsWrite] {
            assert_eq!(scope.as_set().iter().collect::<Vec<_>>(), [scope.as_str()]);
        }
    }

    #[test]
    fn scopes_are_checked_exactly() {
        let granted = ScopeSet::parse("posts:readwrite POSTS:WRITE").unwrap();
        assert!(!granted.contains_all(&Scope::PostsRead.as_set()));
        assert!(!granted.contains_all(&Scope::PostsWrite.as_set()));
    }
}
