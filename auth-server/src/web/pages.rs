//! The pages, as askama templates (compile-time checked, HTML-escaped by default), and the
//! responses that carry them. Templates only display; every decision is made before.

use askama::Template;
use poem::{
    IntoResponse, Response,
    http::{HeaderValue, StatusCode, header},
};

use super::headers::FormTargets;
use crate::config::Settings;

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The issuer's path, prefixed to our links (empty at the root).
    pub base: String,
    /// The product name in the header.
    pub brand: &'static str,
    /// The issuer's host, in the footer.
    pub host: String,
}

impl Layout {
    /// The layout for this server.
    pub fn new(settings: &Settings) -> Self {
        Self {
            base: settings.issuer.path().trim_end_matches('/').to_owned(),
            brand: "posts-auth",
            host: settings.issuer.host_str().unwrap_or_default().to_owned(),
        }
    }

    /// An absolute path under the issuer, with a query.
    pub fn href(&self, path: &str, query: &[(&str, &str)]) -> String {
        if query.is_empty() {
            return format!("{}{path}", self.base);
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        format!("{}{path}?{query}", self.base)
    }
}

/// `/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Around the page.
    pub layout: Layout,
    /// The client the user signs in to, if any.
    pub client_name: Option<String>,
    /// The pending request.
    pub request: Option<String>,
    /// The CSRF token.
    pub csrf: String,
    /// Pre-filled e-mail address.
    pub username: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The sign-up page, for the same request.
    pub signup_href: String,
}

/// `/signup`.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    /// Around the page.
    pub layout: Layout,
    /// The client the user signs up for, if any.
    pub client_name: Option<String>,
    /// The pending request.
    pub request: Option<String>,
    /// The CSRF token.
    pub csrf: String,
    /// What was typed (never the password).
    pub full_name: String,
    /// What was typed.
    pub email: String,
    /// Whether any field is wrong.
    pub has_errors: bool,
    /// The name's problem.
    pub full_name_error: Option<String>,
    /// The address's problem.
    pub email_error: Option<String>,
    /// The password's problem.
    pub password_error: Option<String>,
    /// The sign-in page, for the same request.
    pub login_href: String,
}

/// One permission on the consent page.
#[derive(Debug, Clone)]
pub struct ScopeLine {
    /// The scope.
    pub name: String,
    /// What it lets the client do.
    pub description: &'static str,
}

/// `/consent`.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// Around the page.
    pub layout: Layout,
    /// The client's name.
    pub client_name: String,
    /// What it asks for.
    pub scopes: Vec<ScopeLine>,
    /// The signed-in user.
    pub email: String,
    /// The pending request.
    pub request: String,
    /// The CSRF token.
    pub csrf: String,
    /// Sign in as someone else, for the same request.
    pub switch_href: String,
}

/// The logout confirmation.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    /// Around the page.
    pub layout: Layout,
    /// The signed-in user, if any.
    pub email: Option<String>,
    /// The client that asked, if known.
    pub client_name: Option<String>,
    /// The CSRF token.
    pub csrf: String,
    /// Carried to the confirmation.
    pub client_id: Option<String>,
    /// Carried to the confirmation (only when registered).
    pub post_logout_redirect_uri: Option<String>,
    /// Carried to the confirmation.
    pub state: Option<String>,
}

/// A link under a message.
#[derive(Debug, Clone)]
pub struct Link {
    /// The link target.
    pub href: String,
    /// The link text.
    pub text: String,
}

/// A page that only says something: errors, "signed out", "signed in".
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// Around the page.
    pub layout: Layout,
    /// The heading.
    pub heading: String,
    /// What to say.
    pub paragraphs: Vec<String>,
    /// Where to go from here.
    pub link: Option<Link>,
}

/// A rendered page with its status.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/html; charset=utf-8")
                .body("<!doctype html><title>Error</title><p>Something went wrong.</p>")
        }
    }
}

/// A message page.
pub fn message(
    settings: &Settings,
    status: StatusCode,
    heading: &str,
    paragraphs: &[&str],
    link: Option<Link>,
) -> Response {
    let page = MessagePage {
        layout: Layout::new(settings),
        heading: heading.to_owned(),
        paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
        link,
    };
    html(status, &page)
}

/// The page of a failure on our side; the cause is logged here, never shown. In a
/// database outage it is a 503 with `Retry-After` that says to try again: the same step
/// will work once the database is back (and a redirect to the client would tell it
/// something false).
pub fn server_error(settings: &Settings, error: &anyhow::Error) -> Response {
    if crate::error::is_outage(error) {
        tracing::warn!(
            error = format!("{error:#}"),
            "a sign-in page: database unavailable"
        );
        let page = message(
            settings,
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            &["The sign-in service cannot reach its data right now. \
                 Please try again in a few seconds."],
            None,
        );
        return with_retry_after(page, crate::error::RETRY_AFTER_SECONDS);
    }
    tracing::error!(error = ?error, "a sign-in page failed");
    message(
        settings,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        &["The server could not complete this step. Please try again in a moment."],
        None,
    )
}

/// A 303 to `location`.
pub fn redirect(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// Adds a `Set-Cookie` header.
pub fn with_cookie(mut resp: Response, cookie: Option<String>) -> Response {
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
    resp
}

/// Adds `Retry-After`.
pub fn with_retry_after(mut resp: Response, seconds: u64) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    resp
}

/// Lets the page's forms be redirected to `target` (the client a form's answer goes back
/// to): browsers apply the page's `form-action` to that redirect.
pub fn with_form_target(mut resp: Response, target: Option<String>) -> Response {
    if let Some(target) = target {
        resp.extensions_mut().insert(FormTargets(vec![target]));
    }
    resp.into_response()
}
