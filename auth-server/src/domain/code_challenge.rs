use std::borrow::Cow;

use oxide_auth::{code_grant::extensions::Pkce, primitives::grant::Value};

/// An RFC 7636 S256 code challenge, in the form oxide-auth's [`Pkce`] extension stores it
/// with the code. `plain` is refused (RFC 9700 §2.1.1), and so is a missing challenge: PKCE
/// is required for every client, public or confidential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// RFC 7636 §4.1/§4.2: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
/// oxide-auth does not check this syntax; a challenge outside it could never be met by a
/// conforming verifier, so it is refused up front.
fn is_pkce_token(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl CodeChallenge {
    /// Parses `code_challenge` and `code_challenge_method` of an authorization request.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, String> {
        let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
            return Err("code_challenge is required (PKCE with S256)".into());
        };
        if !is_pkce_token(challenge) {
            return Err(
                "code_challenge must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)".into(),
            );
        }
        // RFC 7636 §4.3: an absent method means `plain`, which is refused like an explicit one.
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err("code_challenge_method must be S256; plain is not allowed".into());
            }
            Some(_) => return Err("code_challenge_method must be S256".into()),
        }
        let encoded = Pkce::required()
            .challenge(Some(Cow::Borrowed("S256")), Some(Cow::Borrowed(challenge)))
            .map_err(|()| "code_challenge_method must be S256".to_string())?
            .and_then(|value| value.into_private_value().ok().flatten())
            .ok_or_else(|| "code_challenge is required".to_string())?;
        Ok(Self(encoded))
    }

    /// A challenge as stored with a code.
    pub fn from_stored(encoded: String) -> Self {
        Self(encoded)
    }

    /// What the code row stores.
    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: whether `verifier` is the secret behind this challenge. A verifier
    /// outside the §4.1 syntax never matches.
    pub fn verify(&self, verifier: Option<&str>) -> bool {
        let Some(verifier) = verifier.filter(|v| is_pkce_token(v)) else {
            return false;
        };
        Pkce::required()
            .verify(
                Some(Value::private(Some(self.0.clone()))),
                Some(Cow::Borrowed(verifier)),
            )
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        let challenge = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(challenge.verify(Some(VERIFIER)));
        let stored = CodeChallenge::from_stored(challenge.as_stored().to_owned());
        assert!(stored.verify(Some(VERIFIER)));
    }

    #[test]
    fn a_wrong_missing_or_malformed_verifier_fails() {
        let challenge = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(!challenge.verify(None));
        assert!(!challenge.verify(Some("")));
        assert!(!challenge.verify(Some(&VERIFIER[1..])));
        assert!(!challenge.verify(Some(&format!("{VERIFIER}x"))));
        // The challenge itself is not the verifier (that would be `plain`).
        assert!(!challenge.verify(Some(CHALLENGE)));
    }

    #[test]
    fn plain_missing_and_unknown_methods_are_refused() {
        assert!(CodeChallenge::parse(Some(CHALLENGE), Some("plain")).is_err());
        assert!(CodeChallenge::parse(Some(CHALLENGE), None).is_err());
        assert!(CodeChallenge::parse(Some(CHALLENGE), Some("s256")).is_err());
        assert!(CodeChallenge::parse(None, Some("S256")).is_err());
        assert!(CodeChallenge::parse(Some(""), Some("S256")).is_err());
    }

    #[test]
    fn challenges_outside_the_rfc_syntax_are_refused() {
        for bad in [
            "short",
            &"a".repeat(42),
            &"a".repeat(129),
            &format!("{}+/", &CHALLENGE[..41]),
        ] {
            assert!(
                CodeChallenge::parse(Some(bad), Some("S256")).is_err(),
                "{bad}"
            );
        }
        assert!(CodeChallenge::parse(Some(&"a".repeat(128)), Some("S256")).is_ok());
    }
}
