//! The browser side: the authorization endpoint, the sign-in, sign-up and consent pages,
//! and logout. Server-rendered HTML that works without JavaScript and loads nothing from
//! another origin; every route goes through [`headers::PageHeaders`].

pub mod authorize;
mod consent;
mod cookies;
mod csrf;
mod flow;
mod form;
mod headers;
mod login;
mod logout;
mod pages;
mod signup;

use std::sync::Arc;

use poem::{
    EndpointExt, IntoResponse, Request, Response, Route, get, handler,
    http::{StatusCode, header},
};
use subtle::ConstantTimeEq;

use crate::{
    authorization::{self, Pending},
    config::Settings,
    digest::{is_token, random_token, sha256_hex},
    sessions::{self, BrowserSession},
    state::AppState,
};

/// Adds the browser side's routes to `route`.
pub fn mount(route: Route, settings: &Arc<Settings>) -> Route {
    let page_headers = || headers::PageHeaders(Arc::clone(settings));
    route
        .at(
            "/oauth/authorize",
            get(authorize::get)
                .post(authorize::post)
                .with(page_headers()),
        )
        .at(
            "/login",
            get(login::show).post(login::submit).with(page_headers()),
        )
        .at(
            "/signup",
            get(signup::show).post(signup::submit).with(page_headers()),
        )
        .at(
            "/consent",
            get(consent::show)
                .post(consent::submit)
                .with(page_headers()),
        )
        .at(
            "/oauth/logout",
            get(logout::get).post(logout::post).with(page_headers()),
        )
        .at("/assets/auth.css", get(stylesheet))
}

/// The paths of the pages [`mount`] adds.
const PAGES: [&str; 5] = [
    "/oauth/authorize",
    "/login",
    "/signup",
    "/consent",
    "/oauth/logout",
];

/// The answer to a request for a page that the request limits refuse (a form over the
/// body limit, headers over theirs, a body that did not arrive in time): a page with the
/// same status, since a browser shows it to the person who sent the form. `None` for any
/// other path, whose refusal is the API's problem+json.
pub fn refusal(req: &Request, status: StatusCode, detail: &str) -> Option<Response> {
    if !PAGES.contains(&req.uri().path()) {
        return None;
    }
    let state = req.data::<AppState>()?;
    let mut page = refused_page(&state.settings, status, detail);
    headers::add(&mut page);
    Some(page)
}

/// The page of an error a page's route answered itself: in practice 405, a method no page
/// takes. A server error's text may describe internals: it goes to the log, and the page is
/// the pages' own error page.
fn refused(settings: &Settings, err: poem::Error) -> Response {
    let status = err.status();
    if status.is_server_error() {
        let error = anyhow::anyhow!("{err}");
        return pages::server_error(settings, &error);
    }
    refused_page(settings, status, &err.to_string())
}

/// A page saying why a request was refused with `status`; `detail` is the API's wording
/// ("the request body exceeds … bytes").
fn refused_page(settings: &Settings, status: StatusCode, detail: &str) -> Response {
    let heading = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Form too large",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request headers too large",
        StatusCode::REQUEST_TIMEOUT => "Form not received in time",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        _ => "Request refused",
    };
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this page takes GET and POST only",
        _ => detail,
    };
    let mut chars = detail.chars();
    let first = chars.next().map(|c| c.to_uppercase().to_string());
    let detail = format!("{}{}.", first.unwrap_or_default(), chars.as_str());
    let paragraphs = [detail.as_str(), "Go back and try again."];
    let mut page = pages::message(settings, status, heading, &paragraphs, None);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // RFC 9110 §15.5.6; every page takes these (see `mount`).
        page.headers_mut().insert(
            header::ALLOW,
            header::HeaderValue::from_static("GET, HEAD, POST"),
        );
    }
    page
}

const STYLESHEET: &str = include_str!("assets/auth.css");

/// The pages' one stylesheet.
#[handler]
fn stylesheet() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(STYLESHEET)
}

/// Whether cookies get `Secure`.
fn secure(state: &AppState) -> bool {
    state.settings.issuer.scheme() == "https"
}

/// The browser cookie of this request, or a new one (with the `Set-Cookie` to send).
fn browser_cookie(state: &AppState, req: &Request) -> anyhow::Result<(String, Option<String>)> {
    if let Some(value) = existing_browser(state, req) {
        return Ok((value, None));
    }
    let value = random_token()?;
    let set = cookies::set(cookies::browser(secure(state)), &value, None, secure(state));
    Ok((value, Some(set)))
}

/// The browser cookie, if this request has one shaped like ours.
fn existing_browser(state: &AppState, req: &Request) -> Option<String> {
    cookies::get(req, cookies::browser(secure(state))).filter(|v| is_token(v))
}

/// The signed-in session of this browser, if any.
async fn current_session(
    state: &AppState,
    req: &Request,
) -> Result<Option<BrowserSession>, Response> {
    let cookie = cookies::get(req, cookies::session(secure(state)));
    sessions::find(&state.db, cookie.as_deref())
        .await
        .map_err(|e| internal(state, e))
}

/// The `Set-Cookie` of a new session's cookie value.
fn session_cookie(state: &AppState, value: &str) -> String {
    let secure = secure(state);
    cookies::set(
        cookies::session(secure),
        value,
        Some(state.settings.session_ttl),
        secure,
    )
}

/// The `Set-Cookie` that removes the session cookie.
fn clear_session_cookie(state: &AppState) -> String {
    cookies::clear(cookies::session(secure(state)), secure(state))
}

/// The one CSRF check of every form: the post must carry this browser's token for
/// `purpose`. Returns the browser cookie's value, or the 403 page (nothing was changed).
// The page is the error: built once per request and returned at once.
#[allow(clippy::result_large_err)]
fn checked_form(
    state: &AppState,
    req: &Request,
    params: &form::Params,
    purpose: &str,
) -> Result<String, Response> {
    let browser = existing_browser(state, req);
    if !purpose.is_empty() && csrf::is_valid(browser.as_deref(), purpose, params.get("csrf")) {
        Ok(browser.expect("a valid CSRF token implies the cookie"))
    } else {
        Err(forbidden(state))
    }
}

/// The CSRF purpose of the consent form: the request and the user it was shown to, so
/// that after a switch of user in another tab the old page cannot consent for the new one.
fn consent_purpose(request_id: &str, user_id: &str) -> String {
    format!("consent\0{request_id}\0{user_id}")
}

/// Whether `pending` belongs to the browser with cookie `browser`.
fn is_bound(pending: &Pending, browser: Option<&str>) -> bool {
    browser.is_some_and(|b| {
        bool::from(
            sha256_hex(b.as_bytes())
                .as_bytes()
                .ct_eq(pending.browser_hash.as_bytes()),
        )
    })
}

/// The pending request `id` of this browser, or the page that says why there is none.
async fn pending_for(state: &AppState, req: &Request, id: &str) -> Result<Pending, Response> {
    let settings = &state.settings;
    let pending = match authorization::load(&state.db, state.readers.as_ref(), id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return Err(pages::message(
                settings,
                StatusCode::BAD_REQUEST,
                "Unknown sign-in request",
                &[
                    "This link does not belong to a sign-in in progress. Go back to the \
                   application and start again.",
                ],
                None,
            ));
        }
        Err(e) => return Err(pages::server_error(settings, &e)),
    };
    if !is_bound(&pending, existing_browser(state, req).as_deref()) {
        return Err(pages::message(
            settings,
            StatusCode::FORBIDDEN,
            "This sign-in began elsewhere",
            &[
                "It was started in another browser, or this browser does not keep cookies. \
               Go back to the application and start again here (cookies must be allowed).",
            ],
            None,
        ));
    }
    if pending.completed {
        return Err(pages::message(
            settings,
            StatusCode::BAD_REQUEST,
            "Already done",
            &[
                "This sign-in request has been completed. Go back to the application; if it \
               did not continue, start again there.",
            ],
            None,
        ));
    }
    if pending.expired {
        return Err(pages::message(
            settings,
            StatusCode::BAD_REQUEST,
            "This sign-in expired",
            &["It was left open too long. Go back to the application and start again."],
            None,
        ));
    }
    Ok(pending)
}

/// The 403 of a form posted without this browser's CSRF token; nothing was changed.
fn forbidden(state: &AppState) -> Response {
    pages::message(
        &state.settings,
        StatusCode::FORBIDDEN,
        "This form has expired",
        &[
            "The form was not sent from this browser's page, or the page is too old. Nothing \
           was changed. Open the page again and retry.",
        ],
        None,
    )
}

/// The form body of a POST, or the 415 page.
// The page is the error: built once per request and returned at once, never passed around.
#[allow(clippy::result_large_err)]
fn form_params(state: &AppState, req: &Request, body: &[u8]) -> Result<form::Params, Response> {
    form::Params::from_form(req, body).ok_or_else(|| {
        pages::message(
            &state.settings,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported form",
            &["The form must be sent as application/x-www-form-urlencoded."],
            None,
        )
    })
}

/// The client's name for a pending request's pages.
async fn client_name(state: &AppState, client_id: &str) -> Option<String> {
    state
        .find_client(client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.name)
}

/// What the sign-in and sign-up forms carry: the pending request (or none, on their own),
/// the client's name, the CSRF token, and the link to the other form for the same request.
struct FormContext {
    request: Option<String>,
    client_name: Option<String>,
    csrf: String,
    other_href: String,
}

async fn form_context(
    state: &AppState,
    browser: &str,
    pending: Option<&Pending>,
    standalone: &str,
    other_page: &str,
) -> FormContext {
    let layout = pages::Layout::new(&state.settings);
    match pending {
        Some(p) => FormContext {
            request: Some(p.id.clone()),
            client_name: client_name(state, &p.request.client_id).await,
            csrf: csrf::token(browser, &p.id),
            other_href: layout.href(other_page, &[("request", &p.id)]),
        },
        None => FormContext {
            request: None,
            client_name: None,
            csrf: csrf::token(browser, standalone),
            other_href: layout.href(other_page, &[]),
        },
    }
}

/// Reads a request body that the request-limits layer already bounded.
async fn body_bytes(body: poem::Body) -> Vec<u8> {
    body.into_vec().await.unwrap_or_default()
}

/// A response to a failure of ours.
fn internal(state: &AppState, e: impl Into<anyhow::Error>) -> Response {
    pages::server_error(&state.settings, &e.into()).into_response()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[tokio::test]
    async fn a_route_error_is_a_page_that_shows_no_server_error_text() {
        let settings = crate::cli::Cli::try_parse_from(["auth-server"])
            .unwrap()
            .settings;

        let not_allowed = poem::Error::from_status(StatusCode::METHOD_NOT_ALLOWED);
        let page = refused(&settings, not_allowed);
        assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(page.headers()[header::ALLOW], "GET, HEAD, POST");

        let failed = poem::Error::from_string("pool: password=hunter2", StatusCode::BAD_GATEWAY);
        let page = refused(&settings, failed);
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(page.content_type(), Some("text/html; charset=utf-8"));
        let text = page.into_body().into_string().await.unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
