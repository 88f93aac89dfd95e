//! The two cookies of the browser side. Both hold only a random value: the session cookie
//! names a signed-in session (stored hashed in the database), the browser cookie binds
//! pending requests and CSRF tokens to one browser before anyone has signed in. Both are
//! `HttpOnly`, `SameSite=Lax` (cross-site POSTs do not carry them), `Path=/`, and `Secure`
//! when the issuer is https — and then named with the `__Host-` prefix, which browsers
//! only accept from this very host, over https, for `Path=/`: a sibling subdomain or a
//! plain-http attacker on the network cannot plant one (and with it, a known browser value
//! whose CSRF tokens they could compute).

use std::time::Duration;

use poem::{Request, http::header};

/// The name of the signed-in browser session's cookie.
pub fn session(secure: bool) -> &'static str {
    if secure {
        "__Host-auth_session"
    } else {
        "auth_session"
    }
}

/// The name of the cookie that binds pending requests and CSRF tokens to the browser.
pub fn browser(secure: bool) -> &'static str {
    if secure {
        "__Host-auth_browser"
    } else {
        "auth_browser"
    }
}

/// The value of cookie `name` in the request, if it is there exactly once. Two cookies of
/// one name (one set by a sibling host, say) are ambiguous: neither is trusted.
pub fn get(req: &Request, name: &str) -> Option<String> {
    let mut found = None;
    for value in req.headers().get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for pair in value.split(';') {
            let Some((key, val)) = pair.trim().split_once('=') else {
                continue;
            };
            if key == name {
                if found.is_some() {
                    return None;
                }
                found = Some(val.trim_matches('"').to_owned());
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for `name`; without `max_age` it lasts until the browser closes.
pub fn set(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that removes `name`.
pub fn clear(name: &str, secure: bool) -> String {
    let mut cookie = format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cookies: &[&str]) -> Request {
        let mut builder = Request::builder();
        for c in cookies {
            builder = builder.header(header::COOKIE, *c);
        }
        builder.finish()
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let req = request(&["a=1; auth_session=xyz; b=2"]);
        assert_eq!(get(&req, session(false)).as_deref(), Some("xyz"));
        assert_eq!(get(&req, browser(false)), None);
        assert_eq!(
            get(&req, session(true)),
            None,
            "https wants the __Host- cookie"
        );
    }

    #[test]
    fn a_cookie_sent_twice_is_not_trusted() {
        let req = request(&["auth_session=one", "auth_session=two"]);
        assert_eq!(get(&req, session(false)), None);
        let req = request(&["auth_session=one; auth_session=two"]);
        assert_eq!(get(&req, session(false)), None);
    }

    #[test]
    fn set_cookie_carries_the_security_attributes() {
        let c = set(session(true), "v", Some(Duration::from_secs(60)), true);
        assert_eq!(
            c,
            "__Host-auth_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!set(session(false), "v", None, false).contains("Secure"));
        assert!(clear(session(false), false).contains("Max-Age=0"));
    }
}
