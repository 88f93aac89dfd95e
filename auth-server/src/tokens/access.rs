use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation};
use serde::Serialize;
use uuid::Uuid;

use super::AccessClaims;
use crate::{domain::ScopeSet, keys::KeyStore};

/// An access token fresh from the signer.
#[derive(Clone)]
pub struct IssuedAccessToken {
    /// The compact JWS.
    pub token: String,
    /// What it says.
    pub claims: AccessClaims,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("jti", &self.claims.jti)
            .finish_non_exhaustive()
    }
}

/// Why a presented access token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a token this server issued, or no longer valid.
    #[error("{0}")]
    Invalid(String),
    /// Well signed, but whether it was revoked could not be read: neither accepted nor
    /// refused. The cause is mapped like any other failure (503 in an outage, else 500).
    #[error("the revocation state could not be read")]
    Unchecked(anyhow::Error),
}

#[derive(Serialize)]
struct JoseHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// Keys up to this size sign on the calling async thread (see [`AccessTokenIssuer::sign_jwt`]).
const INLINE_SIGNING_MAX_BITS: usize = 2048;

/// Signs RFC 9068 access tokens with the active key.
///
/// The JWS is assembled here rather than by `jsonwebtoken::encode`, which would parse the
/// DER key again for every signature; the key pair is parsed once when the key is loaded.
#[derive(Debug, Clone)]
pub struct AccessTokenIssuer {
    issuer: String,
    audience: String,
    ttl: Duration,
    keys: Arc<KeyStore>,
}

impl AccessTokenIssuer {
    /// An issuer for `iss`/`aud` with the given token lifetime.
    pub fn new(issuer: String, audience: String, ttl: Duration, keys: Arc<KeyStore>) -> Self {
        Self {
            issuer,
            audience,
            ttl,
            keys,
        }
    }

    /// The access-token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing keys.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Signs `claims` as an RS256 JWS with header `typ` and the active key's `kid`.
    pub async fn sign_jwt(
        &self,
        typ: &'static str,
        claims: &impl Serialize,
    ) -> anyhow::Result<String> {
        let key = self.keys.active();
        let header = JoseHeader {
            alg: "RS256",
            typ,
            kid: &key.kid,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let inline = key.bits() <= INLINE_SIGNING_MAX_BITS;
        let sign = move || -> anyhow::Result<String> {
            let signature = key.sign_rs256(signing_input.as_bytes())?;
            Ok(format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(signature)
            ))
        };
        // A 2048-bit signature takes about 0.3 ms of CPU; handing it to the blocking pool
        // and back cost a third as much again in thread wake-ups and context switches
        // (BENCHMARKS.md, issue 14), so it runs here, like the JSON encoding of a large
        // answer. Larger keys (4096 bits: about 2 ms) still leave the async thread.
        if inline {
            sign()
        } else {
            tokio::task::spawn_blocking(sign).await?
        }
    }

    /// Issues a token for `sub`, on behalf of `client_id`, with `scope`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn issue(
        &self,
        sub: &str,
        client_id: &str,
        scope: &ScopeSet,
    ) -> anyhow::Result<IssuedAccessToken> {
        self.sign(self.claims(sub, client_id, scope)).await
    }

    /// The claims of a new token for `sub`, on behalf of `client_id`, with `scope`: a new
    /// `jti`, issued now. [`Self::sign`] makes the token; in between, its `jti` and `exp`
    /// can be recorded while the signature is computed.
    pub fn claims(&self, sub: &str, client_id: &str, scope: &ScopeSet) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: self.audience.clone(),
            exp: now + self.ttl.as_secs() as i64,
            iat: now,
            nbf: now,
            // Time-ordered (UUIDv7, 74 random bits): the `jti`s recorded under a login
            // (and revoked ones) go to the end of their index instead of to a random page
            // of it, one page fewer written per rotation. The time it shows is `iat`.
            jti: Uuid::now_v7().to_string(),
            client_id: client_id.to_owned(),
            scope: scope.to_string(),
        }
    }

    /// Signs `claims` (from [`Self::claims`]) into an access token.
    pub async fn sign(&self, claims: AccessClaims) -> anyhow::Result<IssuedAccessToken> {
        let token = self.sign_jwt("at+jwt", &claims).await?;
        Ok(IssuedAccessToken {
            token,
            claims,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Checks a token this server issued: RS256 with a published key, `typ` at+jwt, our
    /// `iss` and `aud`, and not expired. Revocation is checked by the caller.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if token.len() > 8 * 1024 {
            return Err(VerifyError::Invalid("token too large".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid("malformed token".into()))?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Invalid("unexpected algorithm".into()));
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
        {
            return Err(VerifyError::Invalid("not an access token".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| VerifyError::Invalid("no key id".into()))?;
        let key = self
            .keys
            .published(&kid)
            .ok_or_else(|| VerifyError::Invalid("unknown key".into()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Invalid(format!("invalid token: {e}")))
    }
}
