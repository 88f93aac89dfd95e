//! `/login`: the e-mail and password form. It signs in through the same path as the
//! password grant (one throttle, one dummy-hash timing, one answer for an unknown e-mail
//! and a wrong password), then starts a browser session with a new id and continues the
//! interrupted authorization.

use poem::{Body, Request, Response, handler, http::StatusCode, web::Data};
use sea_orm::{DatabaseTransaction, TransactionTrait};

use super::{
    browser_cookie, checked_form, current_session,
    flow::{self, Outcome},
    form::Params,
    headers::source_of,
    pages, pending_for,
};
use crate::{
    authorization::Pending,
    sessions::SignIn,
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
///
/// The step after signing in is decided first, on the session about to be made. When that
/// step is the code, the session and the code are one transaction: one commit per sign-in,
/// and of a form posted twice at once, the post that lost keeps nothing (the browser keeps
/// the session of the code that went to the client).
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
    let sign_in = match SignIn::new(user, previous.as_ref(), state.settings.session_ttl) {
        Ok(sign_in) => sign_in,
        Err(e) => return super::internal(state, e),
    };
    let next = match pending {
        Some(pending) => match flow::next_for(state, pending, sign_in.session()).await {
            Ok((_, next)) => Some((pending, next)),
            Err(page) => return page,
        },
        None => None,
    };
    let stored = async {
        let txn = state.writer.begin().await?;
        let (cookie, session) = sign_in.store(&txn).await?;
        Ok::<_, anyhow::Error>((txn, cookie, session))
    };
    let (txn, cookie, session) = match stored.await {
        Ok(stored) => stored,
        Err(e) => return super::internal(state, e),
    };
    let page = match next {
        Some((pending, next)) => match flow::page_of(state, pending, next) {
            Some(page) => committed(state, txn, page).await,
            None => {
                match flow::issue_in(state, txn, &pending.request, &session, Some(pending)).await {
                    Ok(Outcome::Answered(page)) => Ok(page),
                    // Rolled back with the code's transaction: no cookie of this post.
                    Ok(Outcome::AlreadyDone(page)) | Err(page) => return page,
                }
            }
        },
        None => {
            let signed_in = format!("You are signed in as {}.", session.user.email);
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
            committed(state, txn, page).await
        }
    };
    let page = match page {
        Ok(page) => page,
        Err(failed) => return failed,
    };
    let set_cookie = super::session_cookie(state, cookie.value());
    pages::with_cookie(page, Some(set_cookie))
}

/// `page` once `txn` is committed; the error page if the commit failed.
async fn committed(
    state: &AppState,
    txn: DatabaseTransaction,
    page: Response,
) -> Result<Response, Response> {
    match txn.commit().await {
        Ok(()) => Ok(page),
        Err(e) => Err(super::internal(state, anyhow::Error::from(e))),
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
