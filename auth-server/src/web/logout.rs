//! `GET`/`POST /oauth/logout`: OpenID Connect RP-Initiated Logout 1.0.
//!
//! With a valid `id_token_hint` of this very session (its `sid`), the session ends at once;
//! without one — or with an ID token of another session, which any site that ever held one
//! could send (§2: the OP must then ask) — the user confirms on a CSRF-protected form
//! (posted, never a GET) first, so that a link on another site cannot sign anyone out. Ending the session revokes every login made
//! in it. The browser goes back only to a `post_logout_redirect_uri` registered for the
//! client; otherwise it sees a "signed out" page. Other browsers' sessions stay.

use poem::{Body, Request, Response, handler, http::StatusCode, web::Data};

use super::{
    browser_cookie, checked_form, csrf, current_session, form::Params, headers::source_of, pages,
};
use crate::{
    authorization::with_query,
    clients::Client,
    sessions::{self, BrowserSession},
    state::AppState,
    tokens::id_token,
};

/// The CSRF purpose of the confirmation form.
const PURPOSE: &str = "logout";

/// `GET /oauth/logout`.
#[handler]
pub async fn get(state: Data<&AppState>, req: &Request) -> Response {
    logout(&state, req, Params::from_query(req), false).await
}

/// `POST /oauth/logout`: a relying party's form, or our confirmation.
#[handler]
pub async fn post(state: Data<&AppState>, req: &Request, body: Body) -> Response {
    let body = super::body_bytes(body).await;
    match super::form_params(&state, req, &body) {
        Ok(params) => logout(&state, req, params, true).await,
        Err(page) => page,
    }
}

/// A validated logout request.
struct LogoutRequest {
    client: Option<Client>,
    /// Set only when registered for `client`.
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    /// The session a valid hint names (`sid`), when a valid hint was sent.
    hinted: Option<id_token::IdTokenClaims>,
}

async fn logout(state: &AppState, req: &Request, params: Params, posted: bool) -> Response {
    let request = match parse(state, &params).await {
        Ok(request) => request,
        Err(resp) => return resp,
    };
    let session = match current_session(state, req).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let confirmed = match params.get("decision") {
        // The confirmation is a POST of our form; a GET that says so is only a link.
        Some("logout") if posted => {
            if let Err(forbidden) = checked_form(state, req, &params, PURPOSE) {
                return forbidden;
            }
            true
        }
        Some("logout") => false,
        Some(_) => {
            return pages::message(
                &state.settings,
                StatusCode::BAD_REQUEST,
                "Unknown answer",
                &["Use the Sign out button to sign out."],
                None,
            );
        }
        None => false,
    };
    // Only an ID token of this very session ends it without asking. Without a session
    // there is nothing to end: a valid hint just goes back.
    let hint_matches = request.hinted.as_ref().is_some_and(|hint| match &session {
        Some(s) => hint.sid.as_deref() == Some(s.sid.as_str()) && hint.sub == s.user.id,
        None => true,
    });
    if confirmed || hint_matches {
        end(state, session.as_ref(), &request).await
    } else {
        confirm(state, req, session.as_ref(), &request)
    }
}

async fn parse(state: &AppState, params: &Params) -> Result<LogoutRequest, Response> {
    let bad = |detail: &str| {
        pages::message(
            &state.settings,
            StatusCode::BAD_REQUEST,
            "Invalid sign-out request",
            &[detail, "Nothing was changed."],
            None,
        )
    };
    if let Some(name) = params.first_repeated() {
        let name: String = name.chars().take(64).collect();
        return Err(bad(&format!("The parameter {name} is repeated.")));
    }
    let one = |name: &str| params.get(name);
    let hint = match one("id_token_hint") {
        Some(token) => match id_token::verify_hint(&state.issuer, token) {
            Ok(claims) => Some(claims),
            Err(e) => {
                tracing::debug!(reason = %e, "id_token_hint refused");
                return Err(bad("The id_token_hint is not an ID token issued here."));
            }
        },
        None => None,
    };
    let client_id = match (one("client_id"), &hint) {
        (Some(id), Some(h)) if id != h.aud => {
            return Err(bad("client_id is not the audience of the id_token_hint."));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let client = match client_id {
        Some(id) => match state.find_client(&id).await {
            Ok(Some(client)) => Some(client),
            Ok(None) => return Err(bad("No application is registered with this client_id.")),
            Err(e) => return Err(super::internal(state, e)),
        },
        None => None,
    };
    let post_logout_redirect_uri = one("post_logout_redirect_uri")
        .filter(|uri| {
            client
                .as_ref()
                .is_some_and(|c| c.allows_post_logout_redirect(uri))
        })
        .map(str::to_owned);
    if post_logout_redirect_uri.is_none() && one("post_logout_redirect_uri").is_some() {
        tracing::debug!("post_logout_redirect_uri not registered for the client; not redirecting");
    }
    let logout_state = match one("state") {
        Some(s) if s.len() > super::authorize::MAX_PARAMETER_BYTES => {
            return Err(bad("The state is too long."));
        }
        Some(s) if s.chars().any(char::is_control) || params.not_utf8() == Some("state") => {
            return Err(bad("The state holds characters it may not."));
        }
        s => s.map(str::to_owned),
    };
    Ok(LogoutRequest {
        client,
        post_logout_redirect_uri,
        state: logout_state,
        hinted: hint,
    })
}

/// Ends the session (and its logins), clears the cookie, and goes back or says so.
async fn end(
    state: &AppState,
    session: Option<&BrowserSession>,
    request: &LogoutRequest,
) -> Response {
    if let Some(session) = session
        && let Err(e) = sessions::end(&state.writer, &session.sid).await
    {
        return super::internal(state, e);
    }
    let clear = super::clear_session_cookie(state);
    let resp = match &request.post_logout_redirect_uri {
        Some(uri) => {
            let location = match &request.state {
                Some(s) => with_query(uri, &[("state", s)]),
                None => uri.clone(),
            };
            pages::redirect(&location)
        }
        None => pages::message(
            &state.settings,
            StatusCode::OK,
            "Signed out",
            &["You are signed out in this browser. You can close this page."],
            None,
        ),
    };
    pages::with_cookie(resp, Some(clear))
}

/// The confirmation form.
fn confirm(
    state: &AppState,
    req: &Request,
    session: Option<&BrowserSession>,
    request: &LogoutRequest,
) -> Response {
    let (browser, set_cookie) = match browser_cookie(state, req) {
        Ok(b) => b,
        Err(e) => return super::internal(state, e),
    };
    let page = pages::LogoutPage {
        layout: pages::Layout::new(&state.settings),
        email: session.map(|s| s.user.email.clone()),
        client_name: request.client.as_ref().map(|c| c.name.clone()),
        csrf: csrf::token(&browser, PURPOSE),
        client_id: request.client.as_ref().map(|c| c.client_id.clone()),
        post_logout_redirect_uri: request.post_logout_redirect_uri.clone(),
        state: request.state.clone(),
    };
    let target = request
        .post_logout_redirect_uri
        .as_deref()
        .and_then(source_of);
    let resp = pages::with_form_target(pages::html(StatusCode::OK, &page), target);
    pages::with_cookie(resp, set_cookie)
}
