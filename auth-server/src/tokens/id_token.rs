//! OpenID Connect ID tokens (Core §2): a separate RS256 JWT with `typ: JWT` and the client
//! as audience, so it can never pass for an access token (`typ: at+jwt`, `aud` the API),
//! and an access token can never pass for it.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AccessTokenIssuer, VerifyError};

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user id, as in the access token.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// The client id again (Core §2: the authorized party).
    pub azp: String,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// When the user last entered their password.
    pub auth_time: i64,
    /// The `nonce` of the authorization request, exactly as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Core §3.1.3.6: half of the SHA-256 of the access token issued with it.
    pub at_hash: String,
    /// The browser session (absent for the password grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// What an ID token is issued for.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenFor<'a> {
    /// The user.
    pub sub: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// When the user entered their password.
    pub auth_time: DateTime<Utc>,
    /// The request's nonce (never on refresh).
    pub nonce: Option<&'a str>,
    /// The browser session.
    pub sid: Option<&'a str>,
    /// The access token it accompanies.
    pub access_token: &'a str,
}

/// Core §3.1.3.6 `at_hash`: the left half of the SHA-256 of the access token's ASCII,
/// base64url-encoded (SHA-256 because the ID token is RS256).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Signs an ID token with the active key.
pub async fn issue(
    signer: &AccessTokenIssuer,
    ttl: Duration,
    what: IdTokenFor<'_>,
) -> anyhow::Result<String> {
    let now = Utc::now().timestamp();
    let claims = IdTokenClaims {
        iss: signer.issuer().to_owned(),
        sub: what.sub.to_owned(),
        aud: what.client_id.to_owned(),
        azp: what.client_id.to_owned(),
        exp: now + ttl.as_secs() as i64,
        iat: now,
        auth_time: what.auth_time.timestamp(),
        nonce: what.nonce.map(str::to_owned),
        at_hash: at_hash(what.access_token),
        sid: what.sid.map(str::to_owned),
    };
    signer.sign_jwt("JWT", &claims).await
}

/// Checks an `id_token_hint` (RP-Initiated Logout §2): an ID token this server signed with a
/// key it still publishes, for any client. Expired hints are fine (the logout of an old
/// session is still a logout); anything else (an access token, another issuer's token, a
/// tampered one) is refused.
pub fn verify_hint(signer: &AccessTokenIssuer, token: &str) -> Result<IdTokenClaims, VerifyError> {
    let invalid = |why: &str| VerifyError::Invalid(why.to_owned());
    if token.len() > 16 * 1024 {
        return Err(invalid("token too large"));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid("unexpected algorithm"));
    }
    if header.typ.as_deref() != Some("JWT") {
        return Err(invalid("not an ID token"));
    }
    let kid = header.kid.ok_or_else(|| invalid("no key id"))?;
    let key = signer
        .keys()
        .published(&kid)
        .ok_or_else(|| invalid("unknown key"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[signer.issuer()]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &key.decoding, &validation)
        .map_err(|e| VerifyError::Invalid(format!("invalid ID token: {e}")))?
        .claims;
    if claims.azp != claims.aud {
        return Err(invalid("not an ID token of this server"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::at_hash;

    // OpenID Connect Core, Appendix A.3: the example access token and its at_hash.
    #[test]
    fn at_hash_matches_the_openid_connect_example() {
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
