//! `ApiError`: every non-RFC-6750 error answer, as RFC 9457 `application/problem+json`.
//!
//! Handlers return [`ApiError`]; [`ProblemDetails`] rewrites whatever else ends in an error
//! status (poem's own 404, 405, 415 and payload errors) into the same shape, so clients see
//! one error format everywhere.

use std::error::Error as StdError;
use std::fmt::Write as _;

use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use sea_orm::DbErr;
use serde::Serialize;

use crate::posts::PostsError;

/// The media type of every error body outside RFC 6750 challenges.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Problem {
    /// Always `about:blank`: the status code says it all (RFC 9457 §4.2.1).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP reason phrase of `status`.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for humans.
    pub detail: String,
}

impl Problem {
    /// A problem with the standard title for `status`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// The problem as a complete response, for code outside poem-openapi handlers.
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body)
    }
}

/// The error answers of the posts API.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: bad query parameters or cursor, unparsable JSON.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No access token, or a bad one: the RFC 6750 challenge says which.
    #[oai(status = 401, content_type = "application/problem+json")]
    // Answered by the bearer extractor; listed here so that the document shows it.
    #[allow(dead_code)]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Only the author may change or delete a post.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No post has this id.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The body is larger than the limit.
    #[oai(status = 413, content_type = "application/problem+json")]
    // Answered by the body-limit middleware; listed here so that the document shows it.
    #[allow(dead_code)]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    // Answered by poem-openapi's payload check; listed here so that the document shows it.
    #[allow(dead_code)]
    UnsupportedMediaType(Json<Problem>),
    /// The body is well-formed but breaks a rule (title or body length, empty change).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Something failed on our side; the details are in the server log only.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The database is unreachable for now (down, restarting, or every connection busy).
    /// Retry after the given number of seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u64),
}

impl ApiError {
    /// 400 with this detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(Problem::new(StatusCode::BAD_REQUEST, detail)))
    }

    /// 404 for a post id.
    pub fn post_not_found() -> Self {
        Self::NotFound(Json(Problem::new(
            StatusCode::NOT_FOUND,
            "No post has this id",
        )))
    }

    /// 422 with this detail.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Unprocessable(Json(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)))
    }

    /// The answer to a failed database call: 503 with `Retry-After` when the database is
    /// unavailable (the same request will succeed once it is back), else 500. Logged with
    /// the whole cause chain either way; an outage at warn, since it is not a bug.
    pub fn database(error: &(dyn StdError + 'static)) -> Self {
        if !db_outage::is_outage(error) {
            return Self::internal(error);
        }
        tracing::warn!(error = %error_chain(error), "database unavailable");
        Self::Unavailable(
            Json(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; retry in a few seconds",
            )),
            db_outage::RETRY_AFTER_SECONDS,
        )
    }

    /// 500 after logging `error` with its whole cause chain.
    pub fn internal(error: &(dyn StdError + 'static)) -> Self {
        tracing::error!(error = %error_chain(error), "request failed");
        Self::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server failed to handle the request",
        )))
    }
}

impl From<DbErr> for ApiError {
    fn from(error: DbErr) -> Self {
        Self::database(&error)
    }
}

impl From<PostsError> for ApiError {
    fn from(error: PostsError) -> Self {
        match error {
            PostsError::NotFound => Self::post_not_found(),
            PostsError::NotAuthor => Self::Forbidden(Json(Problem::new(
                StatusCode::FORBIDDEN,
                "Only the author may change or delete this post",
            ))),
            PostsError::Database(error) => Self::database(&error),
        }
    }
}

/// `error: cause: cause...`, for logs.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// Rewrites every error answer that is not problem+json yet into problem+json.
pub struct ProblemDetails;

impl<E: Endpoint> Middleware<E> for ProblemDetails {
    type Output = ProblemDetailsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ProblemDetailsEndpoint { inner: ep }
    }
}

/// The endpoint produced by [`ProblemDetails`].
pub struct ProblemDetailsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for ProblemDetailsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => {
                // A 503 was logged, at warn, where it was decided: an outage is not a bug.
                let status = error.status();
                if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                    tracing::error!(error = %error_chain(&error), "request failed");
                }
                if let Some(reason) = unprocessable_body(&error) {
                    return Ok(
                        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, reason).into_response()
                    );
                }
                error.into_response()
            }
        };
        Ok(as_problem(response).await)
    }
}

/// A JSON body that parsed as JSON but has the wrong shape (a missing field, a wrong
/// type, an unknown field) is invalid input like a too-long title: 422, with the reason.
/// JSON that does not parse at all stays 400. serde_json reports syntax errors with a
/// position ("… at line 1 column 9"); poem-openapi's schema errors never carry one.
fn unprocessable_body(error: &poem::Error) -> Option<String> {
    let reason = &error
        .downcast_ref::<poem_openapi::error::ParseRequestPayloadError>()?
        .reason;
    let syntax = reason.contains(" at line ") && reason.contains(" column ");
    (!syntax).then(|| reason.chars().take(MAX_DETAIL_CHARS).collect())
}

// Longest detail copied from a framework error message.
const MAX_DETAIL_CHARS: usize = 300;

async fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = if status.is_server_error() {
        // Framework 5xx texts may describe internals; the log has them.
        "The server failed to handle the request".to_owned()
    } else {
        let text = body.into_string().await.unwrap_or_default();
        let text: String = text.trim().chars().take(MAX_DETAIL_CHARS).collect();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("Error").to_owned()
        } else {
            text
        }
    };
    let mut problem = Problem::new(status, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in &parts.headers {
        problem.headers_mut().append(name.clone(), value.clone());
    }
    // Keep the matched route and similar data for the metrics middleware.
    *problem.extensions_mut() = parts.extensions;
    problem
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON))
}
