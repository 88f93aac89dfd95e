//! The two error surfaces of the auth server, each mapped to its wire format in one place:
//! [`OAuthError`] for `/oauth/*` (RFC 6749 §5.2 JSON), [`ApiError`] for everything else
//! (RFC 9457 `application/problem+json`). Internal failures keep their cause for the log
//! and never show it to the client.
//!
//! A failure is sorted once, where it becomes one of these types (the `From` impls): a
//! database outage (see [`db_outage::is_outage`]) is "temporarily unavailable", 503 with
//! `Retry-After`, because the same request will succeed once the database is back;
//! anything else is internal, 500.

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};

pub use db_outage::RETRY_AFTER_SECONDS;

/// Whether `error` is a database outage: the one question every surface asks.
pub fn is_outage(error: &anyhow::Error) -> bool {
    db_outage::is_outage(error.as_ref())
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI identifying the problem type; `about:blank` when the status says it all.
    #[oai(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

impl Problem {
    /// A problem of the given status with a detail message.
    pub fn new(status: StatusCode, detail: impl Into<Option<String>>) -> Self {
        Self {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }
}

/// A JSON body served as `application/problem+json`.
pub struct ProblemJson(pub Problem);

impl IntoResponse for ProblemJson {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body =
            serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&self.0)).unwrap_or_default();
        Response::builder()
            .status(status)
            .content_type("application/problem+json")
            .body(body)
    }
}

impl poem_openapi::payload::Payload for ProblemJson {
    const CONTENT_TYPE: &'static str = "application/problem+json";

    fn schema_ref() -> MetaSchemaRef {
        Problem::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Errors of the non-OAuth endpoints.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request syntax.
    #[error("{0}")]
    BadRequest(String),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing state (e-mail taken).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but invalid input.
    #[error("{0}")]
    Unprocessable(String),
    /// The database is unavailable for now; the cause is logged, not shown.
    #[error("the service is temporarily unavailable; retry in a few seconds")]
    Unavailable(anyhow::Error),
    /// Anything else; the cause is logged, not shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        if is_outage(&e) {
            Self::Unavailable(e)
        } else {
            Self::Internal(e)
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document the client sees.
    pub fn problem(&self) -> Problem {
        match self {
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                Problem::new(self.status(), None)
            }
            Self::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable");
                Problem::new(self.status(), self.to_string())
            }
            other => Problem::new(other.status(), other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = ProblemJson(self.problem()).into_response();
        if matches!(self, Self::Unauthorized(_)) {
            // RFC 6750 §3: the challenge for a bearer-protected resource.
            let challenge = r#"Bearer realm="auth-server", error="invalid_token""#;
            resp.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static(challenge),
            );
        }
        if matches!(self, Self::Unavailable(_)) {
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(RETRY_AFTER_SECONDS),
            );
        }
        resp
    }
}

/// A documented answer in problem+json, for the hand-written `ApiResponse` impls.
pub fn problem_response(status: u16, description: &'static str) -> MetaResponse {
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: "application/problem+json",
            schema: Problem::schema_ref(),
        }],
        headers: vec![],
    }
}

/// The documented `Retry-After` header of a 503.
pub fn retry_after_header() -> MetaHeader {
    MetaHeader {
        name: "Retry-After".into(),
        description: Some("Seconds to wait before retrying".into()),
        required: true,
        deprecated: false,
        schema: u64::schema_ref(),
    }
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let problem = problem_response;
        let mut unavailable = problem(
            503,
            "The database is unavailable for now; retry after `Retry-After` seconds",
        );
        unavailable.headers.push(retry_after_header());
        MetaResponses {
            responses: vec![
                problem(400, "Malformed request"),
                problem(401, "Missing or invalid access token"),
                problem(404, "Not found"),
                problem(409, "Conflict with existing state"),
                problem(422, "Invalid input"),
                unavailable,
            ],
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

impl From<ApiError> for poem::Error {
    fn from(e: ApiError) -> Self {
        poem::Error::from_response(e.into_response())
    }
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Clone, Object)]
pub struct OAuthErrorBody {
    /// The error code.
    pub error: String,
    /// Human-readable explanation.
    #[oai(skip_serializing_if_is_none)]
    pub error_description: Option<String>,
}

/// Errors of the token, revocation and introspection endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2 `invalid_request`.
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed; `basic` says whether Basic was attempted, which
    /// decides the `WWW-Authenticate` challenge (RFC 6749 §5.2).
    #[error("client authentication failed")]
    InvalidClient {
        /// The client used HTTP Basic.
        basic: bool,
    },
    /// Bad credentials or refresh token. One message for every cause, so the answer does
    /// not tell an unknown user from a wrong password.
    #[error("invalid credentials or grant")]
    InvalidGrant,
    /// The client may not use this grant type.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// The grant type is not supported.
    #[error("{0}")]
    UnsupportedGrantType(String),
    /// RFC 7009 §2.2.1: the token type is not supported for revocation.
    #[error("{0}")]
    UnsupportedTokenType(String),
    /// The requested scope is unknown, malformed or wider than allowed.
    #[error("{0}")]
    InvalidScope(String),
    /// Too many failed attempts; retry after the given number of seconds.
    #[error("too many failed attempts, retry later")]
    TooManyRequests {
        /// Seconds until the next attempt may succeed.
        retry_after: u64,
    },
    /// The database is unavailable for now (RFC 6749 §4.1.2.1's `temporarily_unavailable`,
    /// which clients of every endpoint understand); the cause is logged, not shown.
    #[error("the server is temporarily unavailable; retry in a few seconds")]
    TemporarilyUnavailable(anyhow::Error),
    /// Anything else; the cause is logged, not shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        if is_outage(&e) {
            Self::TemporarilyUnavailable(e)
        } else {
            Self::Internal(e)
        }
    }
}

impl From<sea_orm::DbErr> for OAuthError {
    fn from(e: sea_orm::DbErr) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl OAuthError {
    /// The cause of an internal or outage error, for a caller that maps it into another
    /// surface's error (which classifies it again); `Err(self)` for every other error.
    pub fn into_cause(self) -> Result<anyhow::Error, Self> {
        match self {
            Self::Internal(e) | Self::TemporarilyUnavailable(e) => Ok(e),
            other => Err(other),
        }
    }

    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedTokenType(_) => "unsupported_token_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::TooManyRequests { .. } => "invalid_request",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    /// The RFC 6749 §5.2 body; internal causes are logged here and not shown.
    pub fn body(&self) -> OAuthErrorBody {
        let description = match self {
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "the server could not complete the request".to_string()
            }
            Self::TemporarilyUnavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        OAuthErrorBody {
            error: self.code().into(),
            error_description: Some(description),
        }
    }
}

/// `Cache-Control` on every token-endpoint answer (RFC 6749 §5.1).
pub const NO_STORE: &str = "no-store";

/// The `WWW-Authenticate` challenge after failed HTTP Basic client authentication.
pub const BASIC_CHALLENGE: &str = r#"Basic realm="auth-server", charset="UTF-8""#;
