//! `POST /users`, `GET /users/me`, `GET /users/{id}`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_edge::Text;
use poem_openapi::{
    ApiResponse, OAuthScopes, Object, OpenApi, SecurityScheme, auth::Bearer, param::Path,
    payload::Json,
};

use super::ApiTags;
use crate::{
    entities::users as user_rows,
    error::{ApiError, Problem, ProblemJson},
    state::AppState,
    tokens::VerifyError,
    users::{self, NewUser, SignUpError},
};

/// An access token issued by this server, sent as `Authorization: Bearer …`. Documented as
/// the OAuth2 password flow against this server's own token endpoint (a relative URL, so
/// it holds for any issuer), so that Swagger UI's Authorize button can log a user in.
#[derive(SecurityScheme)]
#[oai(
    rename = "oauth2",
    ty = "oauth2",
    flows(password(token_url = "/oauth/token", scopes = "ScopeNames"))
)]
pub struct BearerToken(Bearer);

/// The scopes a token may carry (none is needed for the profile).
#[derive(OAuthScopes)]
pub enum ScopeNames {
    /// Read posts at the resource server.
    #[oai(rename = "posts:read")]
    PostsRead,
    /// Create, change and delete one's own posts.
    #[oai(rename = "posts:write")]
    PostsWrite,
}

/// Sign-up request.
#[derive(Object)]
pub struct SignUpRequest {
    /// E-mail address; unique, compared case-insensitively.
    #[oai(validator(max_length = 254))]
    email: Text,
    /// 8–128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    password: Text,
    /// 1–200 characters after trimming surrounding white space.
    #[oai(validator(min_length = 1))]
    full_name: Text,
}

/// A user's profile. Never includes the password hash.
#[derive(Object)]
pub struct UserBody {
    /// The user id (the `sub` of the user's access tokens).
    id: String,
    /// Lower-cased e-mail address.
    email: String,
    /// Display name.
    full_name: String,
    /// Sign-up time, RFC 3339 UTC.
    created_at: DateTime<Utc>,
}

impl From<user_rows::Model> for UserBody {
    fn from(u: user_rows::Model) -> Self {
        Self {
            id: u.id,
            email: u.email,
            full_name: u.full_name,
            created_at: u.created_at,
        }
    }
}

/// The answer to a sign-up.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "sign_up_bad_request")]
pub enum SignUpResponse {
    /// The user was created.
    #[oai(status = 201)]
    Created(Json<UserBody>, #[oai(header = "Location")] String),
    /// The body is not JSON.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(ProblemJson),
    /// The e-mail is taken.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemJson),
    /// A field is missing, of the wrong type, or invalid.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(ProblemJson),
    /// The request body is over the size limit (`AUTH_MAX_BODY_BYTES`). Sent by the
    /// body-limit layer before this endpoint runs; listed so the document says so.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(ProblemJson),
    /// The body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(ProblemJson),
}

/// JSON that does not parse at all is 400; JSON of the wrong shape (missing field, wrong
/// type, violated length) is 422, like any other invalid field.
fn sign_up_bad_request(err: poem::Error) -> SignUpResponse {
    let reason = err
        .downcast_ref::<poem_openapi::error::ParseRequestPayloadError>()
        .map(|e| e.reason.clone());
    match reason {
        Some(reason) if !is_json_syntax_error(&reason) => {
            SignUpResponse::Unprocessable(ProblemJson(ApiError::Unprocessable(reason).problem()))
        }
        Some(reason) => SignUpResponse::BadRequest(ProblemJson(
            ApiError::BadRequest(format!("malformed JSON: {reason}")).problem(),
        )),
        None if err.is::<poem_openapi::error::ContentTypeError>() => {
            SignUpResponse::UnsupportedMediaType(ProblemJson(Problem::new(
                poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json".to_owned(),
            )))
        }
        None => {
            SignUpResponse::BadRequest(ProblemJson(ApiError::BadRequest(err.to_string()).problem()))
        }
    }
}

/// serde_json reports syntax errors with a position ("… at line 1 column 9"); schema
/// violations found by poem-openapi never carry one.
fn is_json_syntax_error(reason: &str) -> bool {
    reason.contains(" at line ") && reason.contains(" column ")
}

/// The users area.
pub struct UsersApi;

#[OpenApi(prefix_path = "/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// Sign up.
    ///
    /// Creates a user. The password is stored only as an Argon2id hash.
    #[oai(path = "/", method = "post")]
    async fn sign_up(
        &self,
        state: Data<&AppState>,
        body: Json<SignUpRequest>,
    ) -> Result<SignUpResponse, ApiError> {
        let body = body.0;
        let new = match NewUser::parse(&body.email.0, body.password.0, &body.full_name.0) {
            Ok(new) => new,
            Err(problems) => {
                let message = problems.first().unwrap_or("invalid sign-up").to_owned();
                return Ok(SignUpResponse::Unprocessable(ProblemJson(
                    ApiError::Unprocessable(message).problem(),
                )));
            }
        };
        match users::sign_up(&state.writer, &state.hasher, new).await {
            Ok(user) => {
                let location = format!("/users/{}", user.id);
                Ok(SignUpResponse::Created(Json(user.into()), location))
            }
            Err(SignUpError::EmailTaken) => Ok(SignUpResponse::Conflict(ProblemJson(
                ApiError::Conflict(SignUpError::EmailTaken.to_string()).problem(),
            ))),
            Err(SignUpError::Internal(e)) => Err(e.into()),
        }
    }

    /// The caller's profile.
    #[oai(path = "/me", method = "get")]
    async fn me(
        &self,
        state: Data<&AppState>,
        auth: BearerToken,
    ) -> Result<Json<UserBody>, ApiError> {
        let user = caller(&state, &auth).await?;
        Ok(Json(user.into()))
    }

    /// A user's profile; only the user themself may read it.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerToken,
        id: Path<String>,
    ) -> Result<Json<UserBody>, ApiError> {
        let user = caller(&state, &auth).await?;
        // Other users' existence is not disclosed: anything but yourself is 404.
        if user.id != id.0 {
            return Err(ApiError::NotFound("no such user".into()));
        }
        Ok(Json(user.into()))
    }
}

/// The user a user access token belongs to.
async fn caller(state: &AppState, auth: &BearerToken) -> Result<user_rows::Model, ApiError> {
    let claims = match state.verify_access_token(&auth.0.token).await {
        Ok(claims) => claims,
        // The token may be fine: a 401 would make the client throw it away.
        Err(VerifyError::Unchecked(e)) => return Err(e.into()),
        Err(e) => {
            tracing::debug!(reason = %e, "bearer token refused");
            return Err(ApiError::Unauthorized(
                "the access token is invalid or expired".into(),
            ));
        }
    };
    users::find(&state.db, &claims.sub)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the access token does not belong to a user".into()))
}
