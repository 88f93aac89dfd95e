//! `/consent`: the client's name and each scope in words, "allow" or "deny". An "allow"
//! is remembered for the scopes it covered; a "deny" is not remembered.

use poem::{Body, Request, Response, handler, http::StatusCode, web::Data};

use super::{
    authorize, cookies, csrf, existing_browser, form::Params, headers::source_of, pages,
    pending_for,
};
use crate::{
    authorization::Pending,
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
    let Some(browser) = existing_browser(req) else {
        return super::forbidden(&state);
    };
    page(&state, &browser, &pending, &session).await
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
    if !csrf::is_valid(
        existing_browser(req).as_deref(),
        request_id,
        params.get("csrf"),
    ) || request_id.is_empty()
    {
        return super::forbidden(&state);
    }
    let (pending, session) = match context(&state, req, Some(request_id)).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
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
            authorize::issue(&state, &pending.request, &session, Some(&pending)).await
        }
        Some("deny") => authorize::deny(&state, &pending).await,
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
    let cookie = cookies::get(req, cookies::SESSION);
    match sessions::find(&state.db, cookie.as_deref()).await {
        Ok(Some(session)) => Ok((pending, session)),
        Ok(None) => {
            let login = pages::Layout::new(&state.settings).href("/login", &[("request", id)]);
            Err(pages::redirect(&login))
        }
        Err(e) => Err(super::internal(state, e)),
    }
}

async fn page(
    state: &AppState,
    browser: &str,
    pending: &Pending,
    session: &BrowserSession,
) -> Response {
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
        csrf: csrf::token(browser, &pending.id),
    };
    let target = source_of(&pending.request.redirect_uri);
    pages::with_form_target(pages::html(StatusCode::OK, &page), target)
}
