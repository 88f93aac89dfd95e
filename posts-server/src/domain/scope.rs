//! OAuth 2.0 scopes (RFC 6749 §3.3) as this API understands them.

use std::collections::BTreeSet;
use std::fmt;

use poem_openapi::OAuthScopes;
use serde::{Deserialize, Deserializer};

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
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes granted to a token: the space-separated `scope` claim as a set. Tokens this
/// API does not know are kept (another resource server may use them) but grant nothing here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

/// Why a `scope` claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope token {0:?} contains characters RFC 6749 §3.3 forbids")]
pub struct ScopeSetError(String);

impl ScopeSet {
    /// Parses `scope = scope-token *( SP scope-token )`,
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`. Repeated spaces are tolerated; any
    /// other character (quote, backslash, control, non-ASCII) refuses the whole claim.
    pub fn parse(raw: &str) -> Result<Self, ScopeSetError> {
        let mut scopes = BTreeSet::new();
        for token in raw.split(' ').filter(|token| !token.is_empty()) {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(ScopeSetError(token.to_owned()));
            }
            scopes.insert(token.to_owned());
        }
        Ok(Self(scopes))
    }

    /// Whether the set grants this scope.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(scope.as_str())
    }

    /// The scope tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_separated_scopes_become_a_set() {
        let set = ScopeSet::parse("posts:read posts:write").unwrap();
        assert!(set.contains(Scope::PostsRead));
        assert!(set.contains(Scope::PostsWrite));
    }

    #[test]
    fn order_and_repeated_spaces_do_not_matter() {
        assert_eq!(
            ScopeSet::parse("  posts:write   posts:read ").unwrap(),
            ScopeSet::parse("posts:read posts:write").unwrap()
        );
    }

    #[test]
    fn an_empty_claim_grants_nothing() {
        let set = ScopeSet::parse("").unwrap();
        assert!(!set.contains(Scope::PostsRead));
        assert_eq!(set.iter().count(), 0);
    }

    #[test]
    fn scopes_match_exactly_not_by_prefix_or_case() {
        let set = ScopeSet::parse("posts:readwrite POSTS:WRITE posts").unwrap();
        assert!(!set.contains(Scope::PostsRead));
        assert!(!set.contains(Scope::PostsWrite));
    }

    #[test]
    fn unknown_scopes_are_kept_but_grant_nothing() {
        let set = ScopeSet::parse("openid posts:read").unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), ["openid", "posts:read"]);
        assert!(!set.contains(Scope::PostsWrite));
    }

    #[test]
    fn forbidden_characters_refuse_the_claim() {
        for raw in ["posts:read\tposts:write", "a\"b", "back\\slash", "naïve"] {
            assert!(ScopeSet::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn a_claim_deserializes_from_a_json_string() {
        let set: ScopeSet = serde_json::from_str("\"posts:read\"").unwrap();
        assert!(set.contains(Scope::PostsRead));
        assert!(serde_json::from_str::<ScopeSet>("[\"posts:read\"]").is_err());
    }
}
