//! OAuth 2.0 scopes (RFC 6749 §3.3): the `scope` claim of a token, and the scopes a service
//! requires.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A set of scope tokens: the space-separated `scope` claim, or what a service requires.
///
/// Every token is checked against RFC 6749 §3.3 when parsed, so a set can be written into a
/// `WWW-Authenticate` challenge as it is. Tokens a service does not know are kept (another
/// resource server may use them) but grant nothing it checks.
///
/// ```
/// use jwt_verifier::ScopeSet;
///
/// let granted: ScopeSet = "openid orders:read".parse()?;
/// assert!(granted.contains("orders:read"));
/// assert!(!granted.contains("orders:write"));
/// assert!(granted.contains_all(&"orders:read".parse()?));
/// assert_eq!(granted.to_string(), "openid orders:read");
/// # Ok::<(), jwt_verifier::ScopeSetError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope token {0:?} contains characters RFC 6749 §3.3 forbids")]
pub struct ScopeSetError(String);

impl ScopeSet {
    /// Parses `scope = scope-token *( SP scope-token )`,
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`. Repeated spaces are tolerated; any
    /// other character (quote, backslash, control, non-ASCII) refuses the whole string.
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

    /// Whether the set holds this scope token, compared exactly (no prefixes, no case folding).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether the set holds every scope of `required`.
    pub fn contains_all(&self, required: &ScopeSet) -> bool {
        required.0.is_subset(&self.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scope tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeSetError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// The tokens, sorted, separated by single spaces: the form of a `scope` claim and of the
/// `scope` attribute of an RFC 6750 challenge.
impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, scope) in self.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
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
        assert!(set.contains("posts:read"));
        assert!(set.contains("posts:write"));
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
        assert!(!set.contains("posts:read"));
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
    }

    #[test]
    fn scopes_match_exactly_not_by_prefix_or_case() {
        let set = ScopeSet::parse("posts:readwrite POSTS:WRITE posts").unwrap();
        assert!(!set.contains("posts:read"));
        assert!(!set.contains("posts:write"));
    }

    #[test]
    fn unknown_scopes_are_kept_but_grant_nothing() {
        let set = ScopeSet::parse("openid posts:read").unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), ["openid", "posts:read"]);
        assert!(!set.contains("posts:write"));
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
        assert!(set.contains("posts:read"));
        assert!(serde_json::from_str::<ScopeSet>("[\"posts:read\"]").is_err());
    }

    #[test]
    fn every_required_scope_must_be_granted() {
        let granted = ScopeSet::parse("a b c").unwrap();
        assert!(granted.contains_all(&ScopeSet::parse("a c").unwrap()));
        assert!(granted.contains_all(&ScopeSet::default()));
        assert!(!granted.contains_all(&ScopeSet::parse("a d").unwrap()));
    }

    #[test]
    fn a_set_prints_as_a_scope_claim() {
        let set = ScopeSet::parse(" b  a ").unwrap();
        assert_eq!(set.to_string(), "a b");
        assert_eq!(ScopeSet::default().to_string(), "");
    }
}
