//! `GET`/`POST /oauth/userinfo`: OpenID Connect Core §5.3, with RFC 6750 errors.
//!
//! The access token comes in the `Authorization: Bearer` header, or for `POST` in the
//! `access_token` form field (RFC 6750 §2.2), never both. It must be one of ours, valid,
//! not revoked (the same check as `/users/me`) and carry `openid`. An ID token is refused:
//! its `typ` and `aud` are not an access token's.

use poem::{
    Body, Request, Response, handler,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};
use serde_json::{Map, Value, json};

use crate::{
    domain::ScopeSet,
    error::{OAuthError, RETRY_AFTER_SECONDS},
    state::AppState,
    tokens::VerifyError,
    users,
};

/// RFC 6750 §3.1 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// No token: a bare challenge.
    Missing,
    /// Malformed request (two tokens, a bad body).
    InvalidRequest,
    /// Bad, expired or revoked token, or its user is gone.
    InvalidToken,
    /// The token lacks `openid`.
    InsufficientScope,
}

impl Challenge {
    fn respond(self, description: &str) -> Response {
        let realm = r#"Bearer realm="auth-server""#;
        let (status, code) = match self {
            Self::Missing => (StatusCode::UNAUTHORIZED, None),
            Self::InvalidRequest => (StatusCode::BAD_REQUEST, Some("invalid_request")),
            Self::InvalidToken => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            Self::InsufficientScope => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        };
        let challenge = match code {
            None => realm.to_owned(),
            Some("insufficient_scope") => {
                format!(r#"{realm}, error="insufficient_scope", scope="openid""#)
            }
            Some(code) => format!(r#"{realm}, error="{code}", error_description="{description}""#),
        };
        let body = json!({
            "error": code.unwrap_or("invalid_token"),
            "error_description": description,
        });
        let mut resp = Response::builder()
            .status(status)
            .content_type("application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(body.to_string());
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        resp
    }
}

/// `GET /oauth/userinfo`.
#[handler]
pub async fn get(state: Data<&AppState>, req: &Request) -> Response {
    match header_token(req) {
        Ok(Some(token)) => answer(&state, &token).await,
        Ok(None) => Challenge::Missing.respond("an access token is required"),
        Err(c) => c.respond("send one Authorization: Bearer header"),
    }
}

/// `POST /oauth/userinfo`.
#[handler]
pub async fn post(state: Data<&AppState>, req: &Request, body: Body) -> Response {
    let from_header = match header_token(req) {
        Ok(token) => token,
        Err(c) => return c.respond("send one Authorization: Bearer header"),
    };
    let body = body.into_vec().await.unwrap_or_default();
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let mut from_body = None;
    if is_form {
        for (key, value) in url::form_urlencoded::parse(&body) {
            if key == "access_token" {
                if from_body.is_some() {
                    return Challenge::InvalidRequest.respond("access_token is repeated");
                }
                from_body = Some(value.into_owned());
            }
        }
    }
    match (from_header, from_body) {
        (Some(_), Some(_)) => Challenge::InvalidRequest
            .respond("send the access token in one place only (RFC 6750 §2)"),
        (Some(token), None) | (None, Some(token)) => answer(&state, &token).await,
        (None, None) => Challenge::Missing.respond("an access token is required"),
    }
}

/// The bearer token of the `Authorization` header: `Ok(None)` without one (or with another
/// scheme), an error for two headers.
fn header_token(req: &Request) -> Result<Option<String>, Challenge> {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Challenge::InvalidRequest);
    }
    let Ok(value) = value.to_str() else {
        return Ok(Some(String::new()));
    };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Ok(None),
    }
}

async fn answer(state: &AppState, token: &str) -> Response {
    let claims = match state.verify_access_token(token).await {
        Ok(claims) => claims,
        // The token may be fine: a 401 would make the client throw it away.
        Err(VerifyError::Unchecked(e)) => return failure(e),
        Err(e) => {
            tracing::debug!(reason = %e, "userinfo: token refused");
            return Challenge::InvalidToken.respond("the access token is invalid or expired");
        }
    };
    let Ok(scope) = ScopeSet::parse(&claims.scope) else {
        return Challenge::InvalidToken.respond("the access token is invalid or expired");
    };
    if !scope.contains("openid") {
        return Challenge::InsufficientScope.respond("the access token lacks the openid scope");
    }
    let user = match users::find(&state.db, &claims.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Challenge::InvalidToken.respond("the access token does not belong to a user");
        }
        Err(e) => return failure(e),
    };
    let mut info = Map::new();
    info.insert("sub".into(), Value::String(user.id.clone()));
    if scope.contains("profile") {
        info.insert("name".into(), Value::String(user.full_name.clone()));
        // The profile cannot change after sign-up yet, so it was last updated then.
        info.insert("updated_at".into(), json!(user.created_at.timestamp()));
    }
    if scope.contains("email") {
        info.insert("email".into(), Value::String(user.email.clone()));
        // Addresses are not verified.
        info.insert("email_verified".into(), Value::Bool(false));
    }
    Response::builder()
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Value::Object(info).to_string())
}

/// A failure of ours, in the endpoint's JSON: `temporarily_unavailable` (503, with
/// `Retry-After`) in a database outage, else `server_error` (500). No challenge: the
/// token was not found wanting. The cause is logged by [`OAuthError::body`].
fn failure(e: anyhow::Error) -> Response {
    let error = OAuthError::from(e);
    let body = poem_openapi::types::ToJSON::to_json(&error.body()).unwrap_or_default();
    let resp = Response::builder()
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store");
    match error {
        OAuthError::TemporarilyUnavailable(_) => resp
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::RETRY_AFTER, RETRY_AFTER_SECONDS)
            .body(body.to_string()),
        _ => resp
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(body.to_string()),
    }
}
