//! The steps of a pending authorization request after the authorization endpoint: where the
//! browser goes once the user signed in or answered the consent page, and the answer to the
//! client (a code, or `access_denied`). Every page that moves a request on asks
//! [`next_for`] first, so no page can skip a step the request still needs (`/consent`
//! cannot stand in for the fresh sign-in that `prompt=login` or `max_age` asks for).

use poem::{IntoResponse, Response, http::StatusCode};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};

use super::pages;
use crate::{
    authorization::{
        self, AuthorizationRequest, Next, Pending, Progress, code_redirect, error_redirect,
        next_step,
    },
    clients::Client,
    sessions::{self, BrowserSession},
    state::AppState,
    tokens::codes::{self, CodeGrant},
};

/// How a step that answers the client ended.
pub(super) enum Outcome {
    /// The browser goes back to the client (or to the next page).
    Answered(Response),
    /// Another submission of the same form answered the client first.
    AlreadyDone(Response),
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        match self {
            Self::Answered(resp) | Self::AlreadyDone(resp) => resp,
        }
    }
}

fn already_done(state: &AppState) -> Outcome {
    Outcome::AlreadyDone(pages::message(
        &state.settings,
        StatusCode::BAD_REQUEST,
        "Already done",
        &[
            "This sign-in request has been completed or has expired. Go back to the \
           application; if it did not continue, start again there.",
        ],
        None,
    ))
}

/// What the user has done so far, as [`next_step`] needs it.
pub(super) async fn progress(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    session: Option<&BrowserSession>,
    pending: Option<&Pending>,
) -> anyhow::Result<Progress> {
    let consent_remembered = match session {
        Some(session) if !client.trusted => {
            sessions::consent_covers(
                &state.db,
                &session.user.id,
                &client.client_id,
                &request.scope(),
            )
            .await?
        }
        _ => false,
    };
    Ok(Progress {
        started_at: pending.map(|p| p.created_at),
        trusted: client.trusted,
        consent_remembered,
    })
}

/// The client of a pending request and the step it needs next with this session; the page
/// that says why there is none when the client is gone.
pub(super) async fn next_for(
    state: &AppState,
    pending: &Pending,
    session: &BrowserSession,
) -> Result<(Client, Next), Response> {
    let client = match state.find_client(&pending.request.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return Err(pages::message(
                &state.settings,
                StatusCode::BAD_REQUEST,
                "Unknown application",
                &["The application you were signing in to is no longer registered."],
                None,
            ));
        }
        Err(e) => return Err(super::internal(state, e)),
    };
    let progress = progress(
        state,
        &client,
        &pending.request,
        Some(session),
        Some(pending),
    )
    .await
    .map_err(|e| super::internal(state, e))?;
    let next = next_step(
        &pending.request,
        Some(session),
        progress,
        chrono::Utc::now(),
    );
    Ok((client, next))
}

/// The page a step that is still needed lives on.
pub(super) fn page_of(state: &AppState, pending: &Pending, next: Next) -> Option<Response> {
    let layout = pages::Layout::new(&state.settings);
    let path = match next {
        Next::Login => "/login",
        Next::Consent => "/consent",
        Next::Issue => return None,
    };
    Some(pages::redirect(
        &layout.href(path, &[("request", &pending.id)]),
    ))
}

/// Issues the code and sends the browser back to the client. A pending request is marked
/// answered in the same transaction that stores the code: a form posted twice cannot issue
/// two codes, and a failure between the two steps leaves the request pending, not "done"
/// without a code.
pub(super) async fn issue(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &BrowserSession,
    pending: Option<&Pending>,
) -> Outcome {
    let issued = async {
        let txn = state.writer.begin().await?;
        Ok::<_, anyhow::Error>(issue_in(state, txn, request, session, pending).await)
    };
    match issued.await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(page)) => Outcome::Answered(page),
        Err(e) => Outcome::Answered(super::internal(state, e)),
    }
}

/// [`issue`] in `txn`, which holds what the caller wrote before (the sign-in's session):
/// committed with the code, or rolled back when another submission answered first. `Err`
/// is the error page of a failure, after which nothing of `txn` is kept.
pub(super) async fn issue_in(
    state: &AppState,
    txn: DatabaseTransaction,
    request: &AuthorizationRequest,
    session: &BrowserSession,
    pending: Option<&Pending>,
) -> Result<Outcome, Response> {
    // OpenID Connect Core §3.1.2.1: the user the id_token_hint names did not sign in (the
    // person signed in as someone else); the client learns so instead of getting another
    // user's code.
    let outcome = if let Some(expected) = &request.expected_sub
        && *expected != session.user.id
    {
        answer_with_error(
            state,
            &txn,
            request,
            pending,
            "login_required",
            "the signed-in user is not the one id_token_hint names",
        )
        .await
    } else {
        let grant = CodeGrant {
            request: request.clone(),
            user_id: session.user.id.clone(),
            sid: Some(session.sid.clone()),
            auth_time: session.auth_time,
        };
        let stored = async {
            if let Some(pending) = pending
                && !authorization::complete(&txn, &pending.id).await?
            {
                return Ok::<_, anyhow::Error>(None);
            }
            Ok(Some(
                codes::issue(&txn, &grant, state.settings.code_ttl).await?,
            ))
        };
        match stored.await {
            Ok(Some(code)) => {
                let location = code_redirect(request, &code, state.settings.issuer_str());
                Ok(Outcome::Answered(pages::redirect(&location)))
            }
            Ok(None) => Ok(already_done(state)),
            Err(e) => Err(super::internal(state, e)),
        }
    };
    let ended = match &outcome {
        Ok(Outcome::Answered(_)) => txn.commit().await,
        Ok(Outcome::AlreadyDone(_)) => txn.rollback().await,
        // Dropped, the transaction is rolled back.
        Err(_) => return outcome,
    };
    ended.map_err(|e| super::internal(state, anyhow::Error::from(e)))?;
    outcome
}

/// Denied by the user (RFC 6749 §4.1.2.1 `access_denied`); not remembered.
pub(super) async fn deny(state: &AppState, pending: &Pending) -> Outcome {
    answer_with_error(
        state,
        &state.writer,
        &pending.request,
        Some(pending),
        "access_denied",
        "the user denied the request",
    )
    .await
    .unwrap_or_else(Outcome::Answered)
}

/// Answers the client with an error redirect, once. `Err` is the error page of a failure.
async fn answer_with_error(
    state: &AppState,
    db: &impl ConnectionTrait,
    request: &AuthorizationRequest,
    pending: Option<&Pending>,
    error: &str,
    description: &str,
) -> Result<Outcome, Response> {
    if let Some(pending) = pending {
        match authorization::complete(db, &pending.id).await {
            Ok(true) => {}
            Ok(false) => return Ok(already_done(state)),
            Err(e) => return Err(super::internal(state, e)),
        }
    }
    let location = error_redirect(
        &request.redirect_uri,
        error,
        description,
        request.state.as_deref(),
        state.settings.issuer_str(),
    );
    Ok(Outcome::Answered(pages::redirect(&location)))
}
