//! `GET`/`POST /oauth/userinfo`: OpenID Connect Core §5.3, with RFC 6750 errors.
//!
//! The access token comes in the `Authorization: Bearer` header, or for `POST` in the
//! `access_token` form field (RFC 6750 §2.2), never both. It must be one of ours, valid,
//! not revoked (the same check as `/users/me`) and carry `openid`. An ID token is refused:
//! its `typ` and `aud` are not an access token's.
//!
//! The answers are built here, not by poem-openapi: the token may come from the header or
//! the body, and every refusal carries an RFC 6750 challenge. The document describes them
//! by hand ([`UserInfoAnswer`], [`UserInfoBody`]).

use poem::{
    Body, Request, RequestBody, Response,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
    registry::{MetaHeader, MetaMediaType, MetaRequest, MetaResponse, MetaResponses, Registry},
    types::Type,
};
use serde_json::{Map, Value, json};

use super::ApiTags;
use crate::{
    domain::ScopeSet,
    error::{
        OAuthError, OAuthErrorBody, Problem, RETRY_AFTER_SECONDS, problem_response,
        retry_after_header,
    },
    state::AppState,
    tokens::VerifyError,
    users,
};

/// `GET` and `POST /oauth/userinfo` in the OpenAPI document.
pub struct UserInfoApi;

#[OpenApi]
impl UserInfoApi {
    /// UserInfo (OpenID Connect Core §5.3).
    ///
    /// The claims about the user of an access token with scope `openid`, sent as
    /// `Authorization: Bearer …` (OpenID Connect Core §5.3): `sub`; `name` and
    /// `updated_at` with scope `profile`; `email` and `email_verified` with scope `email`.
    /// Refusals follow RFC 6750 §3.1, with a `WWW-Authenticate` challenge.
    #[oai(
        path = "/oauth/userinfo",
        method = "get",
        tag = "ApiTags::OpenIdConnect"
    )]
    async fn userinfo(&self, state: Data<&AppState>, req: &Request) -> UserInfoAnswer {
        UserInfoAnswer(get(&state, req).await)
    }

    /// UserInfo by POST, the token in the header or the form (RFC 6750 §2.2).
    ///
    /// As the `GET`; the access token may also come as the form field `access_token`
    /// (RFC 6750 §2.2), but not in both places.
    #[oai(
        path = "/oauth/userinfo",
        method = "post",
        tag = "ApiTags::OpenIdConnect"
    )]
    async fn userinfo_post(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: UserInfoBody,
    ) -> UserInfoAnswer {
        UserInfoAnswer(post(&state, req, body.0).await)
    }
}

// Describes the answer in the document; the answer itself is built by `answer`.
/// The claims about the user.
#[derive(Object)]
#[oai(rename = "UserInfo")]
struct UserInfoClaims {
    /// The user id, the `sub` of the user's tokens.
    sub: String,
    /// Scope `profile`: the full name.
    name: Option<String>,
    /// Scope `profile`: when the profile last changed, in seconds since the epoch.
    updated_at: Option<i64>,
    /// Scope `email`: the e-mail address.
    email: Option<String>,
    /// Scope `email`: always `false` (addresses are not verified).
    email_verified: Option<bool>,
}

// Describes the form in the document; `post` reads it.
/// The form of `POST /oauth/userinfo`.
#[derive(Object)]
#[oai(rename = "UserInfoRequest")]
struct UserInfoForm {
    /// The access token, when it is not in the `Authorization` header.
    access_token: Option<String>,
}

/// The body of `POST /oauth/userinfo`, taken as it comes: a form is optional (the token
/// may be in the header), and a body that is not one is ignored, as RFC 6750 §2.2 reads
/// only forms.
pub struct UserInfoBody(Body);

impl<'a> ApiExtractor<'a> for UserInfoBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        UserInfoForm::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("`access_token`, when it is not in the `Authorization` header"),
            content: vec![MetaMediaType {
                content_type: "application/x-www-form-urlencoded",
                schema: UserInfoForm::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        _req: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Ok(Self(body.take().unwrap_or_default()))
    }
}

/// An answer of `/oauth/userinfo`, as built here.
pub struct UserInfoAnswer(Response);

impl poem::IntoResponse for UserInfoAnswer {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for UserInfoAnswer {
    fn meta() -> MetaResponses {
        let header = |name: &str, description: &str, required| MetaHeader {
            name: name.into(),
            description: Some(description.into()),
            required,
            deprecated: false,
            schema: String::schema_ref(),
        };
        let no_store = || header("Cache-Control", "`no-store`", true);
        let json = |status, description, schema, headers| MetaResponse {
            description,
            status: Some(status),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema,
            }],
            headers,
        };
        let refusal = |status, description| {
            let challenge = header(
                "WWW-Authenticate",
                "RFC 6750 §3 challenge: `Bearer realm=…`, with `error` unless the token was missing",
                true,
            );
            json(
                status,
                description,
                OAuthErrorBody::schema_ref(),
                vec![challenge, no_store()],
            )
        };
        MetaResponses {
            responses: vec![
                json(
                    200,
                    "The user's claims",
                    UserInfoClaims::schema_ref(),
                    vec![no_store()],
                ),
                refusal(
                    400,
                    "`invalid_request`: the token sent twice, or in two places",
                ),
                refusal(
                    401,
                    "No token (`invalid_token` in the body, a bare challenge), or `invalid_token`: \
                     bad, expired or revoked, or its user is gone",
                ),
                refusal(403, "`insufficient_scope`: the token lacks `openid`"),
                problem_response(
                    413,
                    "The request body is over the size limit (`AUTH_MAX_BODY_BYTES`)",
                ),
                json(
                    500,
                    "`server_error`",
                    OAuthErrorBody::schema_ref(),
                    vec![no_store()],
                ),
                json(
                    503,
                    "`temporarily_unavailable`: the database is unavailable for now",
                    OAuthErrorBody::schema_ref(),
                    vec![retry_after_header(), no_store()],
                ),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        UserInfoClaims::register(registry);
        OAuthErrorBody::register(registry);
        Problem::register(registry);
    }
}

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
async fn get(state: &AppState, req: &Request) -> Response {
    match header_token(req) {
        Ok(Some(token)) => answer(state, &token).await,
        Ok(None) => Challenge::Missing.respond("an access token is required"),
        Err(c) => c.respond("send one Authorization: Bearer header"),
    }
}

/// `POST /oauth/userinfo`.
async fn post(state: &AppState, req: &Request, body: Body) -> Response {
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
        (Some(token), None) | (None, Some(token)) => answer(state, &token).await,
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
