//! `GET`/`POST /oauth/authorize`: RFC 6749 §4.1.1 with PKCE, OpenID Connect Core §3.1.2.
//!
//! The validation order is the security boundary: until the client and its redirect URI
//! are known, nothing may be redirected (RFC 6749 §4.1.2.1) — those failures are a 400
//! page. Every later error goes back to the client as `error`, `state` and `iss`.

use poem::{Body, IntoResponse, Request, Response, handler, http::StatusCode, web::Data};

use super::{browser_cookie, flow, form::Params, pages};
use crate::{
    authorization::{self, AuthorizationRequest, Next, error_redirect, next_step},
    clients::Client,
    domain::{CodeChallenge, Prompt, parse_max_age},
    error::OAuthError,
    state::AppState,
    tokens::{grants::negotiate_scope, id_token},
};

/// Longest `state`, `nonce` and `login_hint` accepted, in bytes.
pub const MAX_PARAMETER_BYTES: usize = 4096;

/// `GET /oauth/authorize`.
#[handler]
pub async fn get(state: Data<&AppState>, req: &Request) -> Response {
    authorize(&state, req, Params::from_query(req)).await
}

/// `POST /oauth/authorize` (form-encoded, OpenID Connect Core §3.1.2.1).
#[handler]
pub async fn post(state: Data<&AppState>, req: &Request, body: Body) -> Response {
    let body = super::body_bytes(body).await;
    match super::form_params(&state, req, &body) {
        Ok(params) => authorize(&state, req, params).await,
        Err(page) => page,
    }
}

/// Why a request was refused.
enum Refusal {
    /// No trustworthy redirect URI: say so on a page.
    Page(&'static str, String),
    /// Back to the client with an RFC 6749 §4.1.2.1 error.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
    /// Our failure.
    Internal(anyhow::Error),
}

async fn authorize(state: &AppState, req: &Request, params: Params) -> Response {
    match parse(state, &params).await {
        Ok((client, request)) => begin(state, req, &client, request).await,
        Err(refusal) => refuse(state, refusal),
    }
}

fn refuse(state: &AppState, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(heading, detail) => pages::message(
            &state.settings,
            StatusCode::BAD_REQUEST,
            heading,
            &[
                &detail,
                "The application sent an invalid sign-in request, so you cannot be sent back \
                 to it. Please tell its developers.",
            ],
            None,
        ),
        Refusal::Redirect {
            redirect_uri,
            error,
            description,
            state: client_state,
        } => {
            tracing::debug!(%error, %description, "authorization request refused");
            let location = error_redirect(
                &redirect_uri,
                error,
                &description,
                client_state.as_deref(),
                state.settings.issuer_str(),
            );
            pages::redirect(&location)
        }
        Refusal::Internal(e) => pages::server_error(&state.settings, &e),
    }
}

/// Parses and validates in the contract's order.
async fn parse(
    state: &AppState,
    params: &Params,
) -> Result<(Client, AuthorizationRequest), Refusal> {
    let page = |heading: &'static str, detail: &str| Refusal::Page(heading, detail.to_owned());
    // 1. The client and the redirect URI: without both, nothing may be redirected.
    let client_id = params
        .one("client_id")
        .map_err(|_| page("Invalid sign-in request", "client_id is repeated."))?
        .ok_or_else(|| page("Invalid sign-in request", "client_id is missing."))?;
    let client = state
        .find_client(client_id)
        .await
        .map_err(Refusal::Internal)?
        .ok_or_else(|| {
            page(
                "Unknown application",
                "No application is registered with this client_id.",
            )
        })?;
    let redirect_uri = params
        .one("redirect_uri")
        .map_err(|_| page("Invalid sign-in request", "redirect_uri is repeated."))?
        .ok_or_else(|| page("Invalid sign-in request", "redirect_uri is missing."))?;
    if client.redirect_uri(redirect_uri).is_none() {
        return Err(page(
            "Invalid sign-in request",
            "The redirect_uri is not registered for this application.",
        ));
    }
    let redirect_uri = redirect_uri.to_owned();

    // 2. Everything else goes back to the client.
    // The state goes back exactly as sent, or not at all: never a cut, re-encoded or
    // repeated one.
    let (client_state, state_problem) = match params.one("state") {
        _ if params.not_utf8() == Some("state") => (None, Some("state is not UTF-8".to_owned())),
        Ok(Some(s)) if s.len() > MAX_PARAMETER_BYTES => (
            None,
            Some(format!("state is longer than {MAX_PARAMETER_BYTES} bytes")),
        ),
        Ok(Some(s)) if s.chars().any(char::is_control) => {
            (None, Some("state holds a control character".to_owned()))
        }
        Ok(s) => (s.map(str::to_owned), None),
        Err(_) => (None, Some("state is repeated".to_owned())),
    };
    let fail = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: client_state.clone(),
    };
    if let Some(problem) = state_problem {
        return Err(fail("invalid_request", problem));
    }
    if let Some(name) = params.not_utf8() {
        return Err(fail(
            "invalid_request",
            format!("{} is not UTF-8", short(name)),
        ));
    }
    if let Some(name) = params.first_repeated() {
        return Err(fail(
            "invalid_request",
            format!("{} is repeated", short(name)),
        ));
    }
    let one = |name: &str| params.one(name).ok().flatten();
    match one("response_type") {
        None => return Err(fail("invalid_request", "response_type is required".into())),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported".into(),
            ));
        }
    }
    // OpenID Connect Core §6: request objects are not supported.
    if one("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    if one("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    if one("registration").is_some() {
        return Err(fail(
            "registration_not_supported",
            "the registration parameter is not supported".into(),
        ));
    }
    if one("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported".into(),
        ));
    }
    if !client.may_use("authorization_code") {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow".into(),
        ));
    }
    let challenge = CodeChallenge::parse(one("code_challenge"), one("code_challenge_method"))
        .map_err(|e| fail("invalid_request", e))?;
    let scope = negotiate_scope(one("scope"), &client.scopes).map_err(|e| match e {
        OAuthError::InvalidScope(d) => fail("invalid_scope", d),
        other => fail("invalid_scope", other.to_string()),
    })?;
    let prompt = Prompt::parse(one("prompt")).map_err(|e| fail("invalid_request", e))?;
    let max_age = parse_max_age(one("max_age")).map_err(|e| fail("invalid_request", e))?;
    let bounded = |name: &'static str| -> Result<Option<String>, Refusal> {
        match one(name) {
            Some(v) if v.len() > MAX_PARAMETER_BYTES => Err(fail(
                "invalid_request",
                format!("{name} is longer than {MAX_PARAMETER_BYTES} bytes"),
            )),
            // Copied into ID tokens and stored in text columns (PostgreSQL refuses NUL).
            Some(v) if v.chars().any(char::is_control) => Err(fail(
                "invalid_request",
                format!("{name} holds a control character"),
            )),
            v => Ok(v.map(str::to_owned)),
        }
    };
    let nonce = bounded("nonce")?;
    let login_hint = bounded("login_hint")?;
    // OpenID Connect Core §3.1.2.1: a hint about the user the client expects; it must be
    // an ID token we issued to this client (expired ones are fine).
    let expected_sub = match one("id_token_hint") {
        None => None,
        Some(hint) => match id_token::verify_hint(&state.issuer, hint) {
            Ok(claims) if claims.aud == client.client_id => Some(claims.sub),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint is not an ID token issued to this client".into(),
                ));
            }
        },
    };
    let request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        scope: scope.to_string(),
        state: client_state,
        nonce,
        code_challenge: challenge.as_stored().to_owned(),
        prompt,
        max_age,
        login_hint,
        expected_sub,
    };
    Ok((client, request))
}

/// A parameter name, cut short for an error description.
fn short(name: &str) -> String {
    name.chars().take(64).collect()
}

/// A valid request arrived: single sign-on, or the pages.
async fn begin(
    state: &AppState,
    req: &Request,
    client: &Client,
    request: AuthorizationRequest,
) -> Response {
    let session = match super::current_session(state, req).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let progress = match flow::progress(state, client, &request, session.as_ref(), None).await {
        Ok(progress) => progress,
        Err(e) => return super::internal(state, e),
    };
    let next = next_step(&request, session.as_ref(), progress, chrono::Utc::now());
    if request.prompt.none {
        // OpenID Connect Core §3.1.2.1: no page may be shown.
        let error = match next {
            Next::Login => "login_required",
            Next::Consent => "consent_required",
            Next::Issue => {
                let session = session.expect("Issue needs a session");
                return flow::issue(state, &request, &session, None)
                    .await
                    .into_response();
            }
        };
        return refuse(
            state,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                error,
                description: match next {
                    Next::Login => "the user must sign in".into(),
                    _ => "the user must consent".into(),
                },
                state: request.state.clone(),
            },
        );
    }
    match (next, session) {
        (Next::Issue, Some(session)) => flow::issue(state, &request, &session, None)
            .await
            .into_response(),
        (next, _) => {
            let (browser, set_cookie) = match browser_cookie(state, req) {
                Ok(b) => b,
                Err(e) => return super::internal(state, e),
            };
            let browser_hash = crate::digest::sha256_hex(browser.as_bytes());
            let id = match authorization::store(&state.writer, &request, &browser_hash).await {
                Ok(id) => id,
                Err(e) => return super::internal(state, e),
            };
            let page = if next == Next::Consent {
                "/consent"
            } else {
                "/login"
            };
            let location = pages::Layout::new(&state.settings).href(page, &[("request", &id)]);
            pages::with_cookie(pages::redirect(&location), set_cookie)
        }
    }
}
