use std::{collections::BTreeSet, fmt, str::FromStr};

use oxide_auth::primitives::scope::Scope;

/// Every scope this server knows. A request naming another is `invalid_scope`.
pub const KNOWN_SCOPES: [&str; 5] = ["posts:read", "posts:write", "openid", "profile", "email"];

/// The scopes of the resource server's API: what a request without `scope` gets.
pub const API_SCOPES: [&str; 2] = ["posts:read", "posts:write"];

/// The OpenID Connect scopes: granted only when asked for, and only for a user.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// What a scope lets a client do, in words, for the consent page.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are when you sign in",
        "profile" => "See your name",
        "email" => "See your e-mail address",
        "posts:read" => "Read posts",
        "posts:write" => "Write posts and change or delete yours",
        _ => "An unknown permission",
    }
}

/// A set of known scopes. Parsing and the subset rule are oxide-auth's [`Scope`]; this
/// wrapper adds the rule that only known scopes exist, and a stable (sorted) rendering
/// for the `scope` claim and response field.
#[derive(Clone, PartialEq, Eq)]
pub struct ScopeSet(Scope);

/// Why a `scope` parameter was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    /// RFC 6749 §3.3 syntax violation.
    #[error("scope contains a character RFC 6749 §3.3 does not allow")]
    Malformed,
    /// A well-formed scope this server does not define.
    #[error("unknown scope `{0}`")]
    Unknown(String),
}

impl ScopeSet {
    /// Parses a space-separated scope parameter into known scopes.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let scope = Scope::from_str(raw).map_err(|_| ScopeError::Malformed)?;
        if let Some(unknown) = scope.iter().find(|s| !KNOWN_SCOPES.contains(s)) {
            return Err(ScopeError::Unknown(unknown.to_owned()));
        }
        Ok(Self(scope))
    }

    /// Every known scope.
    pub fn all() -> Self {
        Self::parse(&KNOWN_SCOPES.join(" ")).expect("the known scopes are valid")
    }

    /// The API scopes of this set (no OpenID Connect scope).
    pub fn api_only(&self) -> ScopeSet {
        let api: Vec<&str> = self.0.iter().filter(|s| API_SCOPES.contains(s)).collect();
        Self(Scope::from_str(&api.join(" ")).expect("subset of a valid scope"))
    }

    /// Whether the set holds an OpenID Connect scope.
    pub fn has_oidc(&self) -> bool {
        self.0.iter().any(|s| OIDC_SCOPES.contains(&s))
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().collect::<BTreeSet<&str>>().into_iter()
    }

    /// Every scope of either set.
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        let all: BTreeSet<&str> = self.0.iter().chain(other.0.iter()).collect();
        Self(Scope::from_str(&all.into_iter().collect::<Vec<_>>().join(" ")).expect("valid"))
    }

    /// The scopes present in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        let common: Vec<&str> = self.0.iter().filter(|s| other.contains(s)).collect();
        Self(Scope::from_str(&common.join(" ")).expect("subset of a valid scope"))
    }

    /// Whether every scope of `self` is also in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        other.0.priviledged_to(&self.0)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().next().is_none()
    }

    /// The underlying oxide-auth scope.
    pub fn as_oxide(&self) -> &Scope {
        &self.0
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sorted: BTreeSet<&str> = self.0.iter().collect();
        let mut first = true;
        for scope in sorted {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scopes_parse_and_render_sorted() {
        let s = ScopeSet::parse("posts:write  posts:read").unwrap();
        assert_eq!(s.to_string(), "posts:read posts:write");
    }

    #[test]
    fn unknown_scopes_are_rejected_by_name() {
        assert_eq!(
            ScopeSet::parse("posts:read admin").unwrap_err(),
            ScopeError::Unknown("admin".into())
        );
    }

    #[test]
    fn forbidden_characters_are_malformed() {
        assert_eq!(
            ScopeSet::parse("posts:read \"x\"").unwrap_err(),
            ScopeError::Malformed
        );
        assert_eq!(
            ScopeSet::parse("posts\\read").unwrap_err(),
            ScopeError::Malformed
        );
    }

    #[test]
    fn intersection_and_subset_follow_set_rules() {
        let all = ScopeSet::all();
        let read = ScopeSet::parse("posts:read").unwrap();
        assert!(read.is_subset_of(&all));
        assert!(!all.is_subset_of(&read));
        assert_eq!(all.intersection(&read), read);
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn oidc_scopes_are_told_apart_from_api_scopes() {
        let s = ScopeSet::parse("openid email posts:read").unwrap();
        assert!(s.has_oidc());
        assert_eq!(s.api_only().to_string(), "posts:read");
        assert!(!s.api_only().has_oidc());
        let u = s.union(&ScopeSet::parse("profile").unwrap());
        assert_eq!(u.to_string(), "email openid posts:read profile");
    }
}
