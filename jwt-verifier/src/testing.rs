//! Test support (feature `testing`): an issuer that signs access tokens the way the auth
//! server does, so a service can test its authentication without running one.
//!
//! Never enable this feature in production builds: it mints valid tokens for its own key,
//! which is harmless only as long as no production verifier trusts that key.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// An RSA key that signs RFC 9068 access tokens for one issuer and audience.
///
/// ```
/// use jwt_verifier::testing::TestIssuer;
///
/// let issuer = TestIssuer::new("https://auth.example.com", "orders-api");
/// let token = issuer.token("alice", "orders:read");
/// assert_eq!(token.split('.').count(), 3);
/// assert!(issuer.jwks().contains(issuer.kid()));
/// ```
pub struct TestIssuer {
    issuer: String,
    audience: String,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
    public_pem: String,
}

impl TestIssuer {
    /// A fresh RSA-2048 key (generating one takes a moment: share it between tests) for
    /// tokens with this `iss` and `aud`. Its kid is its RFC 7638 thumbprint, as the auth
    /// server names its keys.
    ///
    /// # Panics
    ///
    /// If the crypto library cannot generate or encode an RSA key, which is a broken build.
    pub fn new(issuer: &str, audience: &str) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let pkcs8 = pair.as_der().expect("PKCS#8 encoding");
        let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
            .expect("PKCS#8 PEM");
        let spki = pair.public_key().as_der().expect("SPKI encoding");
        let public = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("public JWK");
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .expect("thumbprint");
        let mut jwk = serde_json::to_value(&public).expect("JWK as JSON");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kid,
            encoding,
            jwk,
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
        }
    }

    /// The kid of the key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document: serve it, or write it to a file for
    /// [`KeySource::File`](crate::KeySource::File).
    pub fn jwks(&self) -> String {
        json!({ "keys": [self.jwk] }).to_string()
    }

    /// The public key as `-----BEGIN PUBLIC KEY-----` PEM, the other form
    /// [`KeySource::File`](crate::KeySource::File) reads.
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The claims of a token for `sub` with `scope`, valid for 15 minutes from now, to be
    /// changed and signed with [`TestIssuer::sign`].
    pub fn claims(&self, sub: &str, scope: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "client_id": "test-client",
            "scope": scope,
            "jti": format!("{sub}-{now}-{}", next_serial()),
            "iat": now,
            "nbf": now,
            "exp": now + 900,
        })
    }

    /// The header of an access token: RS256, `typ` `at+jwt`, this key's kid.
    pub fn header(&self) -> Value {
        json!({ "alg": "RS256", "typ": "at+jwt", "kid": self.kid })
    }

    /// A valid access token for `sub` with `scope`.
    pub fn token(&self, sub: &str, scope: &str) -> String {
        self.sign(&self.header(), &self.claims(sub, scope))
    }

    /// `header` and `claims` signed with RS256 under this key, whatever the header says:
    /// for tests of what a verifier must refuse (`alg: none`, a `crit` header, a wrong
    /// `typ`).
    ///
    /// # Panics
    ///
    /// If the key cannot sign, which is a broken build.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.encoding, Algorithm::RS256)
                .expect("RS256 signing");
        format!("{signing_input}.{signature}")
    }
}

// One line of base64 is still PEM to every reader this crate uses.
fn pem(label: &str, der: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        STANDARD.encode(der)
    )
}

// Distinct jtis for tokens minted within the same second.
fn next_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
