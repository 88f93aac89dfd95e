//! Test keys and token minting: what the auth server would sign, and what attackers would.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The issuer the test app expects.
pub const ISSUER: &str = "http://127.0.0.1:8000";
/// The audience the test app expects.
pub const AUDIENCE: &str = "posts-api";

/// An RSA key the tests sign with, and its public forms.
pub struct TestKey {
    /// RFC 7638 thumbprint, as the auth server names keys.
    pub kid: String,
    /// For signing.
    pub encoding: EncodingKey,
    /// The public key as a JWK.
    pub jwk: Value,
    /// The public key as `-----BEGIN PUBLIC KEY-----` PEM.
    pub public_pem: String,
}

/// Keys generated once per test binary: RSA key generation is slow.
pub struct TestKeys {
    /// The key the app trusts from the start.
    pub primary: TestKey,
    /// A key the app learns about only when the JWKS server starts publishing it.
    pub rotated: TestKey,
    /// A key the app never trusts.
    pub foreign: TestKey,
}

/// The shared test keys.
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        primary: generate_key(),
        rotated: generate_key(),
        foreign: generate_key(),
    })
}

fn generate_key() -> TestKey {
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let pkcs8 = pair.as_der().expect("PKCS#8 encoding");
    let encoding =
        EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).expect("PEM key");
    let public = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, thumbprint_input.as_bytes()).as_ref(),
    );
    let spki = public.as_der().expect("SPKI encoding");
    TestKey {
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
        public_pem: pem("PUBLIC KEY", spki.as_ref()),
        kid,
        encoding,
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Signs `claims` with `key` under `header`.
pub fn sign(header: &Header, claims: &Value, key: &TestKey) -> String {
    jsonwebtoken::encode(header, claims, &key.encoding).expect("signing")
}

/// The header the auth server puts on access tokens, naming `key`.
pub fn at_jwt_header(key: &TestKey) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid.clone());
    header
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims as the auth server issues them, for `sub`, with every scope.
pub fn default_claims(sub: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": AUDIENCE,
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": uuid::Uuid::new_v4().to_string(),
        "client_id": "posts-web",
        "scope": "posts:read posts:write",
    })
}

/// `base` with `overrides` merged in; a `null` override removes the claim.
pub fn merge(mut base: Value, overrides: Value) -> Value {
    if let (Some(base), Value::Object(overrides)) = (base.as_object_mut(), overrides) {
        for (name, value) in overrides {
            if value.is_null() {
                base.remove(&name);
            } else {
                base.insert(name, value);
            }
        }
    }
    base
}

/// A valid token for `sub` with every scope, signed with the primary key.
pub fn token_for(sub: &str) -> String {
    let key = &keys().primary;
    sign(&at_jwt_header(key), &default_claims(sub), key)
}
