//! `/login`: the e-mail and password form. It signs in through the same path as the
//! password grant (one throttle, one dummy-hash timing, one answer for an unknown e-mail
//! and a wrong password), then starts a browser session with a new id and continues the
//! interrupted authorization.

use poem::{Body, IntoResponse, Request, Response, handler, http::StatusCode, web::Data};

use super::{
    browser_cookie, checked_form, current_session, flow, form::Params, headers::source_of, pages,
    pending_for,
};
use crate::{
    authorization::Pending,
    sessions::{self, BrowserSession},
    state::AppState,
    users::{self, CredentialError},
};

/// The CSRF purpose of the form without a pending request.
const STANDALONE: &str = "login";

/// One answer for an unknown e-mail and a wrong password.
const WRONG: &str = "The e-mail address or the password is not correct.";

/// `GET /login[?request=…]`.
#[handler]
pub async fn show(state: Data<&AppState>, req: &Request) -> Response {
    let params = Params::from_query(req);
    let (browser, set_cookie) = match browser_cookie(&state, req) {
        Ok(b) => b,
        Err(e) => return super::internal(&state, e),
    };
    let pending = match params.get("request") {
        Some(id) => match pending_for(&state, req, id).await {
            Ok(pending) => Some(pending),
            Err(page) => return page,
        },
        None => None,
    };
    let username = pending
        .as_ref()
        .and_then(|p| p.request.login_hint.clone())
        .unwrap_or_default();
    let page = form(
        &state,
        &browser,
        pending.as_ref(),
        username,
        None,
        StatusCode::OK,
    )
    .await;
    pages::with_cookie(page, set_cookie)
}

/// `POST /login`.
#[handler]
pub async fn submit(state: Data<&AppState>, req: &Request, body: Body) -> Response {
    let body = super::body_bytes(body).await;
    let params = match super::form_params(&state, req, &body) {
        Ok(params) => params,
        Err(page) => return page,
    };
    let request_id = params.get("request");
    let browser = match checked_form(&state, req, &params, request_id.unwrap_or(STANDALONE)) {
        Ok(browser) => browser,
        Err(forbidden) => return forbidden,
    };
    let pending = match request_id {
        Some(id) => match pending_for(&state, req, id).await {
            Ok(pending) => Some(pending),
            Err(page) => return page,
        },
        None => None,
    };
    let username = params.get("username").unwrap_or_default().trim().to_owned();
    let Some(password) = params.get("password").filter(|_| !username.is_empty()) else {
        let missing = "Enter your e-mail address and your password.";
        let status = StatusCode::BAD_REQUEST;
        return form(
            &state,
            &browser,
            pending.as_ref(),
            username,
            Some(missing.into()),
            status,
        )
        .await;
    };
    let ip = crate::api::client_ip(req, state.settings.trust_forwarded_for);
    let user = match users::verify_credentials(&state, &username, password, ip).await {
        Ok(user) => user,
        Err(CredentialError::Invalid) => {
            let wrong = Some(WRONG.into());
            return form(
                &state,
                &browser,
                pending.as_ref(),
                username,
                wrong,
                StatusCode::OK,
            )
            .await;
        }
        Err(CredentialError::Throttled { retry_after }) => {
            state.metrics.throttled();
            let message = format!(
                "Too many failed attempts. Wait {retry_after} second{} and try again.",
                if retry_after == 1 { "" } else { "s" }
            );
            let status = StatusCode::TOO_MANY_REQUESTS;
            let page = form(
                &state,
                &browser,
                pending.as_ref(),
                username,
                Some(message),
                status,
            );
            return pages::with_retry_after(page.await, retry_after);
        }
        Err(CredentialError::Internal(e)) => return super::internal(&state, e),
    };
    signed_in(&state, req, user, pending.as_ref()).await
}

/// Starts the session of `user` in this browser and continues: back to the pending request,
/// or a "signed in" page.
pub(super) async fn signed_in(
    state: &AppState,
    req: &Request,
    user: crate::entities::users::Model,
    pending: Option<&Pending>,
) -> Response {
    let previous = match current_session(state, req).await {
        Ok(previous) => previous,
        Err(page) => return page,
    };
    let (cookie, sid) = match sessions::sign_in(
        &state.writer,
        &user.id,
        previous.as_ref(),
        state.settings.session_ttl,
    )
    .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => return super::internal(state, e),
    };
    let set_cookie = super::session_cookie(state, cookie.value());
    let new_session = previous.as_ref().is_none_or(|p| p.sid != sid);
    let email = user.email.clone();
    let session = BrowserSession {
        sid,
        user,
        auth_time: chrono::Utc::now(),
    };
    match pending {
        Some(pending) => {
            let outcome = flow::resume(state, pending, &session).await;
            if outcome.already_done() && new_session {
                // The same form, posted twice at once: the other post answered the client
                // with a code of its own session. This session is not the code's; keep
                // it from replacing that one in the browser.
                if let Err(e) = sessions::end(&state.writer, &session.sid).await {
                    return super::internal(state, e);
                }
                return outcome.into_response();
            }
            pages::with_cookie(outcome.into_response(), Some(set_cookie))
        }
        None => {
            let signed_in = format!("You are signed in as {email}.");
            let page = pages::message(
                &state.settings,
                StatusCode::OK,
                "Signed in",
                &[
                    &signed_in,
                    "You can close this page, or sign out when you are done.",
                ],
                Some(pages::Link {
                    href: pages::Layout::new(&state.settings).href("/oauth/logout", &[]),
                    text: "Sign out".into(),
                }),
            );
            pages::with_cookie(page, Some(set_cookie))
        }
    }
}

/// The form, for a pending request or on its own.
async fn form(
    state: &AppState,
    browser: &str,
    pending: Option<&Pending>,
    username: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let context = super::form_context(state, browser, pending, STANDALONE, "/signup").await;
    let page = pages::LoginPage {
        layout: pages::Layout::new(&state.settings),
        client_name: context.client_name,
        request: context.request,
        csrf: context.csrf,
        username,
        error,
        signup_href: context.other_href,
    };
    let target = pending.and_then(|p| source_of(&p.request.redirect_uri));
    pages::with_form_target(pages::html(status, &page), target)
}
