//! `/consent`: the client's name and each scope in words, "allow" or "deny". An "allow"
//! is remembered for the scopes it covered; a "deny" is not remembered. The page only
//! answers a request whose next step is consent: one that still needs a (fresh) sign-in
//! goes to `/login` first, whatever the browser asks.

use poem::{Body, IntoResponse, Request, Response, handler, http::StatusCode, web::Data};

use super::{
    checked_form, consent_purpose, csrf, current_session, flow, form::Params, headers::source_of,
    pages, pending_for,
};
use crate::{
    authorization::{Next, Pending},
    domain::scope,
    sessions::{self, BrowserSession},
    state::AppState,
};

/// `GET /consent?request=…`.
#[handler]
pub async fn show(state: Data<&AppState>, req: &Request) -> Response {
    let params = Params::from_query(req);
    let (pending, session) = match context(&state, req, params.get("request")).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    match flow::next_for(&state, &pending, &session).await {
        Ok((_, Next::Consent)) => page(&state, req, &pending, &session).await,
        Ok((_, next)) => match flow::page_of(&state, &pending, next) {
            Some(elsewhere) => elsewhere,
            // Nothing to ask (a trusted client, or consent given meanwhile): answer.
            None => flow::issue(&state, &pending.request, &session, Some(&pending))
                .await
                .into_response(),
        },
        Err(page) => page,
    }
}

/// `POST /consent`.
#[handler]
pub async fn submit(state: Data<&AppState>, req: &Request, body: Body) -> Response {
    let body = super::body_bytes(body).await;
    let params = match super::form_params(&state, req, &body) {
        Ok(params) => params,
        Err(page) => return page,
    };
    let request_id = params.get("request").unwrap_or_default();
    // Without a session there is nobody to consent; the token is the session user's.
    let session = match current_session(&state, req).await {
        Ok(Some(session)) => session,
        Ok(None) => return super::forbidden(&state),
        Err(page) => return page,
    };
    if let Err(forbidden) = checked_form(
        &state,
        req,
        &params,
        &consent_purpose(request_id, &session.user.id),
    ) {
        return forbidden;
    }
    let pending = match pending_for(&state, req, request_id).await {
        Ok(pending) => pending,
        Err(page) => return page,
    };
    // prompt=login, max_age or id_token_hint may still want the password first.
    match flow::next_for(&state, &pending, &session).await {
        Ok((_, Next::Login)) => {
            return flow::page_of(&state, &pending, Next::Login).expect("a page for Login");
        }
        Ok(_) => {}
        Err(page) => return page,
    }
    match params.get("decision") {
        Some("allow") => {
            let scope = pending.request.scope();
            if let Err(e) = sessions::remember_consent(
                &state.writer,
                &session.user.id,
                &pending.request.client_id,
                &scope,
            )
            .await
            {
                return super::internal(&state, e);
            }
            tracing::info!(client_id = %pending.request.client_id, scope = %scope, "consent given");
            flow::issue(&state, &pending.request, &session, Some(&pending))
                .await
                .into_response()
        }
        Some("deny") => flow::deny(&state, &pending).await.into_response(),
        _ => pages::message(
            &state.settings,
            StatusCode::BAD_REQUEST,
            "No answer",
            &["Choose Allow or Deny."],
            None,
        ),
    }
}

/// The pending request of this browser and its signed-in session (without one, the
/// browser is sent to sign in first).
async fn context(
    state: &AppState,
    req: &Request,
    request_id: Option<&str>,
) -> Result<(Pending, BrowserSession), Response> {
    let Some(id) = request_id else {
        return Err(pages::message(
            &state.settings,
            StatusCode::BAD_REQUEST,
            "Nothing to allow",
            &[
                "This page is part of signing in to an application. Go back to the \
               application and start there.",
            ],
            None,
        ));
    };
    let pending = pending_for(state, req, id).await?;
    match current_session(state, req).await? {
        Some(session) => Ok((pending, session)),
        None => Err(flow::page_of(state, &pending, Next::Login).expect("a page for Login")),
    }
}

async fn page(
    state: &AppState,
    req: &Request,
    pending: &Pending,
    session: &BrowserSession,
) -> Response {
    let Some(browser) = super::existing_browser(state, req) else {
        return super::forbidden(state);
    };
    let layout = pages::Layout::new(&state.settings);
    let client_name = super::client_name(state, &pending.request.client_id)
        .await
        .unwrap_or_else(|| pending.request.client_id.clone());
    let mut scopes: Vec<pages::ScopeLine> = pending
        .request
        .scope()
        .iter()
        .map(|name| pages::ScopeLine {
            name: name.to_owned(),
            description: scope::describe(name),
        })
        .collect();
    // Who you are first, then what the client may do.
    let order = ["openid", "profile", "email", "posts:read", "posts:write"];
    scopes.sort_by_key(|line| order.iter().position(|s| *s == line.name));
    let page = pages::ConsentPage {
        switch_href: layout.href("/login", &[("request", &pending.id)]),
        layout,
        client_name,
        scopes,
        email: session.user.email.clone(),
        request: pending.id.clone(),
        csrf: csrf::token(&browser, &consent_purpose(&pending.id, &session.user.id)),
    };
    let target = source_of(&pending.request.redirect_uri);
    pages::with_form_target(pages::html(StatusCode::OK, &page), target)
}
