//! Micro-benchmark of offline access-token verification, the work posts-server does on
//! every `/posts` request before touching the database: JOSE header parse, algorithm and
//! type checks, `kid` lookup in the cached key set, the RS256 signature, and the claims
//! (`iss`, `aud`, `exp`, `nbf`); the same token answered by the cache of verified tokens.
//! Also the cheapest and the dearest refusals.
//!
//! `cargo bench -p posts-server --bench verify`; see BENCHMARKS.md for the figures.

use std::{hint::black_box, time::Duration};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair, KeySize},
    signature::KeyPair as _,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jwt_verifier::{JwksCache, KeySource, TokenVerifier};
use serde_json::json;

const ISSUER: &str = "http://127.0.0.1:8000";
const AUDIENCE: &str = "posts-api";

/// A key pair as the auth server makes one, its JWKS file, and a verifier trusting it.
struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    verifier: TokenVerifier,
    uncached: TokenVerifier,
    encoding: EncodingKey,
    kid: String,
}

fn fixture() -> Fixture {
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let pkcs8 = pair.as_der().expect("PKCS#8");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("PEM key");
    let public = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let kid = "bench-key".to_owned();
    let jwks =
        json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]});
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).expect("write JWKS");

    let keys = JwksCache::builder(KeySource::File(jwks_path))
        .build()
        .expect("key cache");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(keys.load()).expect("load JWKS");
    let verifier = TokenVerifier::builder(keys.clone(), ISSUER, AUDIENCE)
        .leeway(Duration::from_secs(30))
        .build();
    let uncached = TokenVerifier::builder(keys, ISSUER, AUDIENCE)
        .leeway(Duration::from_secs(30))
        .cached_tokens(0)
        .build();
    Fixture {
        _dir: dir,
        runtime,
        verifier,
        uncached,
        encoding,
        kid,
    }
}

impl Fixture {
    /// An access token as the auth server issues it (RFC 9068).
    fn token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "0190b6a3-0000-7000-8000-000000000000",
            "client_id": "posts-web", "scope": "posts:read posts:write",
            "jti": "0190b6a3-0000-7000-8000-000000000001",
            "iat": now, "nbf": now, "exp": now + 900,
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign")
    }
}

fn verify(c: &mut Criterion) {
    let f = fixture();
    let valid = f.token();
    // Same header and claims, last signature bytes changed: every check runs, including
    // the RSA operation, before the refusal; the dearest token an attacker can send.
    let mut forged = valid.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str(if valid.ends_with("AAAA") {
        "BBBB"
    } else {
        "AAAA"
    });
    let garbage = "not-a-jwt";

    let mut group = c.benchmark_group("posts_verify");
    // Every check, the RSA signature included: a token seen for the first time.
    group.bench_function("valid_token", |b| {
        b.iter(|| {
            f.runtime
                .block_on(f.uncached.verify(black_box(&valid)))
                .unwrap()
        })
    });
    // The same token again: the cache of verified tokens answers (SHA-256 of the token,
    // one map lookup, the key-set check, the claims cloned).
    group.bench_function("valid_token_cached", |b| {
        b.iter(|| {
            f.runtime
                .block_on(f.verifier.verify(black_box(&valid)))
                .unwrap()
        })
    });
    group.bench_function("bad_signature", |b| {
        b.iter(|| {
            f.runtime
                .block_on(f.verifier.verify(black_box(&forged)))
                .unwrap_err()
        })
    });
    group.bench_function("malformed", |b| {
        b.iter(|| {
            f.runtime
                .block_on(f.verifier.verify(black_box(garbage)))
                .unwrap_err()
        })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
