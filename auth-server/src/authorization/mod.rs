//! The authorization request (RFC 6749 §4.1, OpenID Connect Core §3.1.2) once validated,
//! the rules that decide what the browser sees next, and the pending requests that wait
//! for the user in the database.
//!
//! Like node oidc-provider's interactions and Hydra's login challenge, a request that needs
//! the user (sign-in, sign-up, consent) is stored once, validated, under a random id bound to
//! the browser that sent it; every page after that carries only the id, so no step re-reads
//! raw query strings and any replica can serve any step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Prompt, ScopeSet},
    sessions::BrowserSession,
};

mod pending;
pub use pending::{PENDING_TTL, Pending, complete, load, purge, store};

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The redirect URI as sent (it matched a registered one).
    pub redirect_uri: String,
    /// The scope to grant: requested ∩ allowed, space-separated.
    pub scope: String,
    /// Returned to the client unchanged.
    pub state: Option<String>,
    /// Copied into the ID token unchanged.
    pub nonce: Option<String>,
    /// The PKCE challenge as stored with the code.
    pub code_challenge: String,
    /// `prompt` (OpenID Connect Core §3.1.2.1).
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<u64>,
    /// Pre-fills the sign-in form.
    pub login_hint: Option<String>,
    /// The user a valid `id_token_hint` names: another user's session does not count.
    #[serde(default)]
    pub expected_sub: Option<String>,
}

impl AuthorizationRequest {
    /// The scope to grant.
    pub fn scope(&self) -> ScopeSet {
        ScopeSet::parse(&self.scope).unwrap_or_else(|_| ScopeSet::parse("").expect("empty"))
    }
}

/// What the browser needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The password: no session, or not a fresh enough one.
    Login,
    /// The user's consent.
    Consent,
    /// Nothing: issue the code.
    Issue,
}

/// What the user has done so far for one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// When the request arrived (a sign-in since then counts as fresh).
    pub started_at: Option<DateTime<Utc>>,
    /// Whether the client is trusted (no consent page).
    pub trusted: bool,
    /// Whether the user's remembered consent covers the scope.
    pub consent_remembered: bool,
}

/// The rule of the authorization endpoint: sign in when there is no session, or when
/// `prompt=login` or `max_age` asks for a password entry the session does not have (one
/// made after the request arrived always counts: `max_age=0` must not loop); then ask for
/// consent unless the client is trusted or the user's remembered consent covers the scope
/// (`prompt=consent` asks anyway); then issue.
pub fn next_step(
    request: &AuthorizationRequest,
    session: Option<&BrowserSession>,
    progress: Progress,
    now: DateTime<Utc>,
) -> Next {
    let Some(session) = session else {
        return Next::Login;
    };
    let fresh = progress
        .started_at
        .is_some_and(|started| session.auth_time >= started);
    if !fresh {
        if request.prompt.login {
            return Next::Login;
        }
        if request
            .expected_sub
            .as_ref()
            .is_some_and(|sub| *sub != session.user.id)
        {
            return Next::Login;
        }
        if let Some(max_age) = request.max_age {
            let age = (now - session.auth_time).num_seconds().max(0) as u64;
            if age > max_age || max_age == 0 {
                return Next::Login;
            }
        }
    }
    if !progress.trusted && (request.prompt.consent || !progress.consent_remembered) {
        return Next::Consent;
    }
    Next::Issue
}

/// The redirect of a successful authorization: `code`, `state` and `iss` (RFC 9207) added
/// to the redirect URI's own query.
pub fn code_redirect(request: &AuthorizationRequest, code: &str, issuer: &str) -> String {
    let mut params = vec![("code", code)];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    with_query(&request.redirect_uri, &params)
}

/// The redirect of an error (RFC 6749 §4.1.2.1): `error`, `error_description`, `state`
/// and `iss`.
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    with_query(redirect_uri, &params)
}

/// `uri` with `params` appended to its query (RFC 6749 §3.1.2: its own query is kept).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        // Registered URIs always parse; never fail a redirect over it.
        Err(_) => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::users;

    fn request(prompt: Prompt, max_age: Option<u64>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://app.example/cb?x=1".into(),
            scope: "openid".into(),
            state: Some("s&t".into()),
            nonce: None,
            code_challenge: "c".into(),
            prompt,
            max_age,
            login_hint: None,
            expected_sub: None,
        }
    }

    fn session(auth_time: DateTime<Utc>) -> BrowserSession {
        BrowserSession {
            sid: "sid".into(),
            user: users::Model {
                id: "u".into(),
                email: "u@example.com".into(),
                password_hash: String::new(),
                full_name: "U".into(),
                created_at: auth_time,
            },
            auth_time,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + secs, 0).unwrap()
    }

    const REMEMBERED: Progress = Progress {
        started_at: None,
        trusted: false,
        consent_remembered: true,
    };

    #[test]
    fn without_a_session_the_user_signs_in() {
        let next = next_step(&request(Prompt::default(), None), None, REMEMBERED, at(0));
        assert_eq!(next, Next::Login);
    }

    #[test]
    fn a_session_is_single_sign_on() {
        let s = session(at(0));
        let next = next_step(
            &request(Prompt::default(), None),
            Some(&s),
            REMEMBERED,
            at(500),
        );
        assert_eq!(next, Next::Issue);
    }

    #[test]
    fn prompt_login_and_max_age_want_a_password_entered_since_the_request() {
        let s = session(at(0));
        let login = Prompt {
            login: true,
            ..Prompt::default()
        };
        assert_eq!(
            next_step(&request(login, None), Some(&s), REMEMBERED, at(5)),
            Next::Login
        );
        assert_eq!(
            next_step(
                &request(Prompt::default(), Some(60)),
                Some(&s),
                REMEMBERED,
                at(61)
            ),
            Next::Login
        );
        assert_eq!(
            next_step(
                &request(Prompt::default(), Some(60)),
                Some(&s),
                REMEMBERED,
                at(59)
            ),
            Next::Issue
        );
        // Signed in after the request arrived: max_age=0 and prompt=login are satisfied.
        let fresh = Progress {
            started_at: Some(at(0)),
            ..REMEMBERED
        };
        assert_eq!(
            next_step(&request(Prompt::default(), Some(0)), Some(&s), fresh, at(3)),
            Next::Issue
        );
        assert_eq!(
            next_step(&request(login, None), Some(&s), fresh, at(3)),
            Next::Issue
        );
    }

    #[test]
    fn a_session_of_another_user_than_the_hinted_one_does_not_count() {
        let s = session(at(0));
        let mut r = request(Prompt::default(), None);
        r.expected_sub = Some("someone-else".into());
        assert_eq!(next_step(&r, Some(&s), REMEMBERED, at(1)), Next::Login);
        r.expected_sub = Some("u".into());
        assert_eq!(next_step(&r, Some(&s), REMEMBERED, at(1)), Next::Issue);
    }

    #[test]
    fn consent_is_asked_unless_trusted_or_remembered() {
        let s = session(at(0));
        let r = request(Prompt::default(), None);
        let unknown = Progress::default();
        assert_eq!(next_step(&r, Some(&s), unknown, at(1)), Next::Consent);
        let trusted = Progress {
            trusted: true,
            ..unknown
        };
        assert_eq!(next_step(&r, Some(&s), trusted, at(1)), Next::Issue);
        let again = request(
            Prompt {
                consent: true,
                ..Prompt::default()
            },
            None,
        );
        assert_eq!(
            next_step(&again, Some(&s), REMEMBERED, at(1)),
            Next::Consent
        );
    }

    #[test]
    fn redirects_keep_the_uris_query_and_encode_every_value() {
        let r = request(Prompt::default(), None);
        let url = code_redirect(&r, "abc", "https://issuer.example");
        assert_eq!(
            url,
            "https://app.example/cb?x=1&code=abc&state=s%26t&iss=https%3A%2F%2Fissuer.example"
        );
        let err = error_redirect("com.example:/cb", "access_denied", "no", None, "http://i");
        assert_eq!(
            err,
            "com.example:/cb?error=access_denied&error_description=no&iss=http%3A%2F%2Fi"
        );
    }
}
