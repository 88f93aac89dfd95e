use std::fmt;

use oxide_auth::primitives::registrar::{ExactUrl, RegisteredUrl};

/// A redirect URI as a client registered it: absolute, without a fragment, `http` only on
/// a loopback host. It is kept exactly as written, because requests must match it as a
/// string (RFC 9700 §4.1.3), not after URL normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

/// Longest redirect URI accepted, in bytes.
const MAX_LEN: usize = 2000;

/// Schemes that would run code or read local data in the user's browser.
const FORBIDDEN_SCHEMES: [&str; 5] = ["javascript", "data", "vbscript", "file", "blob"];

impl RedirectUri {
    /// Validates a URI for registration (`clients create --redirect-uri`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(format!("a redirect URI must be 1-{MAX_LEN} characters"));
        }
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(format!(
                "redirect URI `{raw}` must be ASCII without spaces (percent-encode the rest)"
            ));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| format!("redirect URI `{raw}` is not an absolute URI: {e}"))?;
        if raw.contains('#') {
            return Err(format!(
                "redirect URI `{raw}` must not have a fragment (RFC 6749 §3.1.2)"
            ));
        }
        let scheme = url.scheme();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(format!(
                "redirect URI `{raw}` uses the unsafe scheme {scheme}"
            ));
        }
        if url.username() != "" || url.password().is_some() {
            return Err(format!("redirect URI `{raw}` must not carry credentials"));
        }
        match scheme {
            "https" if url.host().is_none() => {
                return Err(format!("redirect URI `{raw}` has no host"));
            }
            // RFC 8252 §7.3, RFC 9700 §2.6: plain http only where nothing leaves the machine.
            "http" if !is_loopback_host(&url) => {
                return Err(format!(
                    "redirect URI `{raw}`: http is only allowed for 127.0.0.1, [::1] and \
                     localhost; use https"
                ));
            }
            _ => {}
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The oxide-auth registrar form: an exact URL, compared as a string.
    pub fn to_registered(&self) -> RegisteredUrl {
        RegisteredUrl::Exact(ExactUrl::new(self.0.clone()).expect("validated at registration"))
    }

    /// Whether `requested` (from an authorization or token request) is this URI.
    ///
    /// Exact string equality (oxide-auth's [`ExactUrl`] comparison), except that for
    /// `http://127.0.0.1` and `http://[::1]` the port may differ: a native app listens on
    /// whatever port the system gives it (RFC 8252 §7.3). `localhost` is matched exactly, as
    /// RFC 8252 §8.3 advises against relying on it.
    pub fn matches(&self, requested: &str) -> bool {
        let Ok(exact) = ExactUrl::new(requested.to_owned()) else {
            return false;
        };
        if self.to_registered() == exact {
            return true;
        }
        match (
            without_loopback_port(&self.0),
            without_loopback_port(requested),
        ) {
            (Some(registered), Some(requested)) => registered == requested,
            _ => false,
        }
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST
    ) || matches!(
        url.host(),
        Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST
    ) || url.host_str() == Some("localhost")
}

/// `http://127.0.0.1:PORT/rest` or `http://[::1]:PORT/rest` with the `:PORT` taken out,
/// textually: nothing else of the string is normalised. `None` for any other URI.
fn without_loopback_port(uri: &str) -> Option<String> {
    for prefix in ["http://127.0.0.1", "http://[::1]"] {
        let Some(rest) = uri.strip_prefix(prefix) else {
            continue;
        };
        let rest = match rest.strip_prefix(':') {
            Some(after_colon) => {
                let digits = after_colon
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after_colon.len());
                let port: u16 = after_colon[..digits].parse().ok()?;
                if port == 0 {
                    return None;
                }
                &after_colon[digits..]
            }
            None => rest,
        };
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return None;
        }
        return Some(format!("{prefix}{rest}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(raw: &str) -> RedirectUri {
        RedirectUri::parse(raw).unwrap()
    }

    #[test]
    fn registration_accepts_https_loopback_http_and_private_schemes() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?tenant=1",
            "http://127.0.0.1:8001/docs/oauth-receiver.html",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn registration_refuses_relative_fragment_plain_http_and_script_uris() {
        for bad in [
            "",
            "/cb",
            "app.example.com/cb",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "http://127.0.0.2/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user:pw@app.example.com/cb",
            "https://app.example.com/a b",
            "https://app.example.com/é",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
        assert!(RedirectUri::parse(&format!("https://a.example/{}", "x".repeat(2000))).is_err());
    }

    #[test]
    fn matching_is_exact_string_equality() {
        let registered = uri("https://app.example.com/cb");
        assert!(registered.matches("https://app.example.com/cb"));
        for trick in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb2",
            "https://app.example.com/c",
            "https://APP.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com/cb#x",
            "https://app.example.com/cb?x=1",
            "https://app.example.com:443/cb",
            "https://app.example.com:8443/cb",
            "https://app.example.com.evil.example/cb",
            "https://app.example.com/cb/../cb",
            "",
            "not a uri",
        ] {
            assert!(!registered.matches(trick), "{trick}");
        }
    }

    #[test]
    fn loopback_ip_literals_match_on_any_port() {
        let v4 = uri("http://127.0.0.1/cb");
        assert!(v4.matches("http://127.0.0.1:51000/cb"));
        assert!(v4.matches("http://127.0.0.1/cb"));
        assert!(!v4.matches("http://127.0.0.1:51000/cb/"));
        assert!(!v4.matches("http://127.0.0.1:0/cb"));
        assert!(!v4.matches("http://127.0.0.1:99999/cb"));
        assert!(!v4.matches("http://127.0.0.1.evil.example:80/cb"));
        let with_port = uri("http://127.0.0.1:8001/docs/oauth-receiver.html");
        assert!(with_port.matches("http://127.0.0.1:39117/docs/oauth-receiver.html"));
        let v6 = uri("http://[::1]:8080/cb");
        assert!(v6.matches("http://[::1]:9090/cb"));
        assert!(!v6.matches("http://127.0.0.1:9090/cb"));
    }

    #[test]
    fn localhost_and_other_hosts_keep_their_port() {
        let localhost = uri("http://localhost:8001/cb");
        assert!(localhost.matches("http://localhost:8001/cb"));
        assert!(!localhost.matches("http://localhost:8002/cb"));
        let https = uri("https://app.example.com:8443/cb");
        assert!(!https.matches("https://app.example.com:9443/cb"));
    }
}
