//! The security headers of every page and redirect of the browser side, added in one place.
//!
//! - `Cache-Control: no-store`: pages carry CSRF tokens and personal data.
//! - A `Content-Security-Policy` that allows no script at all, styles only from our own
//!   stylesheet, no framing (`frame-ancestors 'none'`, and `X-Frame-Options` for old
//!   browsers), and forms that post only to us — plus, when a form's answer redirects to
//!   the client, the client's origin (browsers apply `form-action` to the redirect too).
//! - `Referrer-Policy: no-referrer`, so a pending request's id or a code never leaks
//!   through `Referer`.
//! - No `Cross-Origin-Opener-Policy`: Swagger UI's sign-in popup needs `window.opener`
//!   when it lands back on its receiver page.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, StatusCode, header},
};

use crate::config::Settings;

/// Extra `form-action` sources of one response (the origin of the client a form's answer
/// redirects to), set by the handler as a response extension.
#[derive(Debug, Clone, Default)]
pub struct FormTargets(pub Vec<String>);

/// Adds the security headers to every response of the wrapped endpoint, and answers its
/// errors (a method no page takes; a panic, which is a bug) with a page too: a browser
/// shows what it gets, and poem's plain text or the API's JSON is no page.
pub struct PageHeaders(pub Arc<Settings>);

impl<E: Endpoint> Middleware<E> for PageHeaders {
    type Output = PageHeadersEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        PageHeadersEndpoint {
            inner: ep,
            settings: Arc::clone(&self.0),
        }
    }
}

/// See [`PageHeaders`].
pub struct PageHeadersEndpoint<E> {
    inner: E,
    settings: Arc<Settings>,
}

impl<E: Endpoint> Endpoint for PageHeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        use futures_util::FutureExt;
        let outcome = std::panic::AssertUnwindSafe(self.inner.call(req))
            .catch_unwind()
            .await;
        let mut resp = match outcome {
            Ok(Ok(resp)) => resp.into_response(),
            // The route's own refusal (a method no page takes).
            Ok(Err(err)) => super::refused(&self.settings, err),
            // The panic's message is on standard error already (the panic hook); the
            // page is the pages' own error page, which shows no internals.
            Err(_) => super::refused(
                &self.settings,
                poem::Error::from_string(
                    "a page handler panicked",
                    StatusCode::INTERNAL_SERVER_ERROR,
                ),
            ),
        };
        add(&mut resp);
        Ok(resp)
    }
}

/// Adds the security headers to `resp`, a page or a redirect of the browser side.
pub fn add(resp: &mut Response) {
    let targets = resp
        .extensions()
        .get::<FormTargets>()
        .cloned()
        .unwrap_or_default();
    let csp = policy(&targets.0);
    let headers = resp.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::CACHE_CONTROL, "no-store");
    set(header::PRAGMA, "no-cache");
    set(header::CONTENT_SECURITY_POLICY, &csp);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
}

/// The page's CSP, with `extra` (origins, or `scheme:` for private-use schemes) allowed as
/// form targets.
pub fn policy(extra: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for source in extra {
        // Only well-formed sources: a stray quote or semicolon would rewrite the policy.
        if !source.is_empty() && !source.contains([';', ',', '\'', ' ', '"']) {
            form_action.push(' ');
            form_action.push_str(source);
        }
    }
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The CSP source that allows a redirect to `uri`: its origin, or `scheme:` for a
/// private-use scheme (RFC 8252 §7.1).
pub fn source_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Some(format!("{}:", url.scheme())),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use poem::{EndpointExt, endpoint::make};

    use super::*;

    #[tokio::test]
    async fn a_panicking_page_is_the_error_page_with_the_page_headers() {
        let settings = crate::cli::Cli::try_parse_from(["auth-server"])
            .unwrap()
            .settings;
        let page = make(|_| async {
            if true {
                panic!("a bug: password=hunter2");
            }
            "unreachable"
        })
        .with(PageHeaders(Arc::new(settings)));

        let resp = page
            .call(Request::builder().uri("/login".parse().unwrap()).finish())
            .await
            .unwrap();

        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.content_type(), Some("text/html; charset=utf-8"));
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let text = resp.into_body().into_string().await.unwrap();
        assert!(text.contains("Something went wrong"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn the_policy_forbids_scripts_and_framing() {
        let p = policy(&[]);
        assert!(p.contains("default-src 'none'"));
        assert!(p.contains("frame-ancestors 'none'"));
        assert!(!p.contains("script-src"));
        assert!(p.contains("form-action 'self';"));
    }

    #[test]
    fn form_targets_are_origins_and_cannot_inject() {
        assert_eq!(
            source_of("https://app.example.com:8443/cb?x=1").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(
            source_of("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        let p = policy(&["https://a.example; script-src *".into()]);
        assert!(!p.contains("script-src"));
    }
}
