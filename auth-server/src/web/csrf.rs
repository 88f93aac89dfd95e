//! CSRF tokens bound to the browser, with nothing to store and no secret to configure.
//!
//! A token is the SHA-256 of the browser cookie's random value and what the form is for
//! (a pending request's id, or the name of a stand-alone form). The cookie is `HttpOnly`,
//! so a page of another origin can neither read it nor compute the token, and every
//! replica recomputes it from the cookie it receives. A token expires with the pending
//! request it names. `SameSite=Lax` already keeps the cookie off cross-site POSTs; the
//! token adds a proof that the form came from our page. Someone who can plant cookies (a
//! sibling subdomain, a plain-http network attacker) could choose the browser value and
//! compute its tokens, so on https the cookie carries the `__Host-` prefix, which only this
//! host can set (see `cookies`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The CSRF token of the browser with cookie value `browser` for the form `purpose`.
pub fn token(browser: &str, purpose: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"posts-auth csrf v1\0");
    hasher.update(browser.as_bytes());
    hasher.update(b"\0");
    hasher.update(purpose.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Whether `presented` is the token of this browser for `purpose`, in constant time.
pub fn is_valid(browser: Option<&str>, purpose: &str, presented: Option<&str>) -> bool {
    match (browser, presented) {
        (Some(browser), Some(presented)) => bool::from(
            token(browser, purpose)
                .as_bytes()
                .ct_eq(presented.as_bytes()),
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_valid_for_its_browser_and_purpose_only() {
        let t = token("browser-a", "req-1");
        assert!(is_valid(Some("browser-a"), "req-1", Some(&t)));
        assert!(!is_valid(Some("browser-b"), "req-1", Some(&t)));
        assert!(!is_valid(Some("browser-a"), "req-2", Some(&t)));
        assert!(!is_valid(None, "req-1", Some(&t)));
        assert!(!is_valid(Some("browser-a"), "req-1", None));
        assert!(!is_valid(Some("browser-a"), "req-1", Some("")));
    }
}
