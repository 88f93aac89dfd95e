//! Who is calling the OAuth endpoints: client credentials from HTTP Basic or the form
//! (RFC 6749 §2.3.1), and the client address that failed logins are counted against.

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::Request;

use crate::{clients::Credentials, error::OAuthError};

/// The address failed logins are counted against.
pub(crate) fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<std::net::IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    req.remote_addr().as_socket_addr().map(|a| a.ip())
}

/// Reads client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form. Using both
/// methods at once is `invalid_request`; a Basic header that does not decode is
/// `invalid_client` with a Basic challenge.
///
/// Swagger UI's password flow sends `Basic base64(client_id:client_secret)` even when
/// both boxes are left empty, so an empty Basic pair (`Basic Og==`) counts as no client
/// authentication, and an empty secret as no secret (a public client naming itself; a
/// confidential client still fails, as it would without a secret in the form).
pub(super) fn client_credentials(
    req: &Request,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Credentials, OAuthError> {
    let form_id = form_id.filter(|s| !s.is_empty());
    let form_secret = form_secret.filter(|s| !s.is_empty());
    let Some(header) = req.headers().get(poem::http::header::AUTHORIZATION) else {
        return form_credentials(form_id, form_secret);
    };
    let parsed = parse_basic(header.as_bytes()).ok_or(OAuthError::InvalidClient { basic: true })?;
    let Some((id, secret)) = parsed else {
        return form_credentials(form_id, form_secret);
    };
    if form_secret.is_some() {
        return Err(OAuthError::InvalidRequest(
            "use one client authentication method, not both Basic and client_secret".into(),
        ));
    }
    if form_id.is_some_and(|f| f != id) {
        return Err(OAuthError::InvalidRequest(
            "client_id does not match the Basic credentials".into(),
        ));
    }
    Ok(Credentials::Presented {
        client_id: id,
        secret,
        basic: true,
    })
}

fn form_credentials(
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Credentials, OAuthError> {
    match (form_id, form_secret) {
        (None, None) => Ok(Credentials::None),
        (None, Some(_)) => Err(OAuthError::InvalidRequest(
            "client_secret without client_id".into(),
        )),
        (Some(id), secret) => Ok(Credentials::Presented {
            client_id: id.to_owned(),
            secret: secret.map(str::to_owned),
            basic: false,
        }),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1). `None` when the
/// header is malformed; `Some(None)` for an empty pair (no client authentication); an
/// empty secret is no secret.
fn parse_basic(header: &[u8]) -> Option<Option<(String, Option<String>)>> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_urldecode(id)?;
    let secret = form_urldecode(secret)?;
    match (id.is_empty(), secret.is_empty()) {
        (true, true) => Some(None),
        (true, false) => None,
        (false, true) => Some(Some((id, None))),
        (false, false) => Some(Some((id, Some(secret)))),
    }
}

fn form_urldecode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        assert_eq!(
            parse_basic(header.as_bytes()),
            Some(Some(("my client".to_string(), Some("s:cret".to_string()))))
        );
    }

    fn request_with_basic(pair: &str) -> Request {
        Request::builder()
            .header(
                poem::http::header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(pair)),
            )
            .finish()
    }

    // Swagger UI's password flow, client_id and client_secret left empty.
    #[test]
    fn an_empty_basic_pair_is_no_client_authentication() {
        let credentials = client_credentials(&request_with_basic(":"), None, None).unwrap();
        assert!(matches!(credentials, Credentials::None), "{credentials:?}");
    }

    // Swagger UI's password flow with only client_id filled in: a public client naming
    // itself, with no secret.
    #[test]
    fn an_empty_basic_secret_is_no_secret() {
        let credentials =
            client_credentials(&request_with_basic("posts-web:"), None, None).unwrap();
        assert!(
            matches!(
                &credentials,
                Credentials::Presented { client_id, secret: None, basic: true }
                    if client_id == "posts-web"
            ),
            "{credentials:?}"
        );
    }

    #[test]
    fn empty_basic_credentials_mean_no_client_authentication() {
        assert_eq!(parse_basic(b"Basic Og=="), Some(None));
        let public = format!("Basic {}", STANDARD.encode("posts-web:"));
        assert_eq!(
            parse_basic(public.as_bytes()),
            Some(Some(("posts-web".to_string(), None)))
        );
    }

    #[test]
    fn malformed_basic_headers_are_rejected() {
        for bad in [
            "Bearer abc",
            "Basic !!!",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            assert_eq!(parse_basic(bad.as_bytes()), None, "{bad}");
        }
    }
}
