//! `/signup`: the account form. It follows exactly the rules of `POST /users` (the same
//! domain types and the same `users::sign_up`), then signs the new user in and continues
//! the interrupted authorization.

use poem::{Body, Request, Response, handler, http::StatusCode, web::Data};

use super::{
    browser_cookie, checked_form, form::Params, headers::source_of, login, pages, pending_for,
};
use crate::{
    authorization::Pending,
    state::AppState,
    users::{self, NewUser, SignUpError},
};

/// The CSRF purpose of the form without a pending request.
const STANDALONE: &str = "signup";

/// What was typed and what is wrong with it.
#[derive(Default)]
struct Entered {
    full_name: String,
    email: String,
    full_name_error: Option<String>,
    email_error: Option<String>,
    password_error: Option<String>,
}

/// `GET /signup[?request=…]`.
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
    let entered = Entered {
        email: pending
            .as_ref()
            .and_then(|p| p.request.login_hint.clone())
            .unwrap_or_default(),
        ..Entered::default()
    };
    let page = form(&state, &browser, pending.as_ref(), entered, StatusCode::OK).await;
    pages::with_cookie(page, set_cookie)
}

/// `POST /signup`.
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
    let raw_name = params.get("full_name").unwrap_or_default();
    let raw_email = params.get("email").unwrap_or_default();
    let raw_password = params.get("password").unwrap_or_default();
    let mut entered = Entered {
        full_name: raw_name.chars().take(200).collect(),
        email: raw_email.chars().take(254).collect(),
        ..Entered::default()
    };
    let new = match NewUser::parse(raw_email, raw_password.to_owned(), raw_name) {
        Ok(new) => new,
        Err(problems) => {
            entered.full_name_error = problems
                .full_name
                .map(|e| sentence(&e, "full_name", "Your name"));
            entered.email_error = problems
                .email
                .map(|e| sentence(&e, "email", "The e-mail address"));
            entered.password_error = problems
                .password
                .map(|e| sentence(&e, "password", "The password"));
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form(&state, &browser, pending.as_ref(), entered, status).await;
        }
    };
    match users::sign_up(&state.writer, &state.hasher, new).await {
        Ok(user) => login::signed_in(&state, req, user, pending.as_ref()).await,
        Err(SignUpError::EmailTaken) => {
            entered.email_error =
                Some("An account with this e-mail address exists already. Sign in instead.".into());
            form(
                &state,
                &browser,
                pending.as_ref(),
                entered,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(SignUpError::Internal(e)) => super::internal(&state, e),
    }
}

/// The domain rule's message ("password must be at least 8 characters") as a sentence
/// about the field ("The password must be at least 8 characters.").
fn sentence(message: &str, field: &str, subject: &str) -> String {
    let rest = message.strip_prefix(field).unwrap_or(message).trim_start();
    format!("{subject} {}.", rest.trim_end_matches('.'))
}

async fn form(
    state: &AppState,
    browser: &str,
    pending: Option<&Pending>,
    entered: Entered,
    status: StatusCode,
) -> Response {
    let context = super::form_context(state, browser, pending, STANDALONE, "/login").await;
    let has_errors = entered.full_name_error.is_some()
        || entered.email_error.is_some()
        || entered.password_error.is_some();
    let page = pages::SignupPage {
        layout: pages::Layout::new(&state.settings),
        client_name: context.client_name,
        request: context.request,
        csrf: context.csrf,
        full_name: entered.full_name,
        email: entered.email,
        has_errors,
        full_name_error: entered.full_name_error,
        email_error: entered.email_error,
        password_error: entered.password_error,
        login_href: context.other_href,
    };
    let target = pending.and_then(|p| source_of(&p.request.redirect_uri));
    pages::with_form_target(pages::html(status, &page), target)
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn rule_messages_read_as_sentences() {
        assert_eq!(
            sentence(
                "password must be at least 8 characters",
                "password",
                "The password"
            ),
            "The password must be at least 8 characters."
        );
        assert_eq!(
            sentence(
                "email is not a valid e-mail address",
                "email",
                "The e-mail address"
            ),
            "The e-mail address is not a valid e-mail address."
        );
        assert_eq!(
            sentence("full_name must not be empty", "full_name", "Your name"),
            "Your name must not be empty."
        );
    }
}
