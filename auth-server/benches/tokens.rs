//! Micro-benchmarks of what a token request costs in cryptography: RS256 signing with our
//! cached key pair (and, for comparison, `jsonwebtoken::encode`, which parses the DER key on
//! every call), RS256 verification, Argon2id with the production parameters, and the whole
//! access-token issuance function.
//!
//! `cargo bench -p auth-server --bench tokens`; see BENCHMARKS.md for the figures.

use std::{hint::black_box, sync::Arc, time::Duration};

use auth_server::{
    config::Argon2Settings,
    domain::{Password, ScopeSet},
    keys::{KeyFiles, KeyPolicy, KeyStore},
    passwords::PasswordHasher,
    tokens::{AccessClaims, AccessTokenIssuer},
};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};

const ISSUER: &str = "http://127.0.0.1:8000";
const AUDIENCE: &str = "posts-api";

/// The production defaults (README, "Configuration"): OWASP / ASVS 5.0 minimum.
const ARGON2_DEFAULTS: Argon2Settings = Argon2Settings {
    memory_kib: 19_456,
    iterations: 2,
    parallelism: 1,
};

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    keys: Arc<KeyStore>,
    issuer: AccessTokenIssuer,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let ttl = Duration::from_secs(900);
    let keys = Arc::new(
        runtime
            .block_on(KeyStore::open(
                Arc::new(KeyFiles::new(dir.path())),
                KeyPolicy {
                    bits: 2048,
                    publish_lead: Duration::from_secs(360),
                    max_token_lifetime: ttl,
                    rotate_every: None,
                },
            ))
            .expect("keys"),
    );
    let issuer = AccessTokenIssuer::new(ISSUER.into(), AUDIENCE.into(), ttl, keys.clone());
    Fixture {
        _dir: dir,
        runtime,
        keys,
        issuer,
    }
}

fn rs256(c: &mut Criterion) {
    let f = fixture();
    let scope = ScopeSet::parse("posts:read posts:write").unwrap();
    let issued = f
        .runtime
        .block_on(f.issuer.issue("0190b6a3-user", "posts-web", &scope))
        .unwrap();
    let token = issued.token.clone();
    let signing_input = &token[..token.rfind('.').unwrap()];
    let key = f.keys.active();

    let mut group = c.benchmark_group("rs256");
    group.bench_function("sign_cached_key_pair", |b| {
        b.iter(|| key.sign_rs256(black_box(signing_input.as_bytes())).unwrap())
    });

    // What `jsonwebtoken::encode` costs with the same key: it re-parses the PKCS#8 DER on
    // every signature, which is why the issuer signs with the cached pair instead.
    let pem = std::fs::read_dir(f._dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .unwrap();
    let encoding = EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid.clone());
    group.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&issued.claims), &encoding).unwrap())
    });

    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    group.bench_function("verify_jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<AccessClaims>(black_box(&token), &key.decoding, &validation)
                .unwrap()
        })
    });
    group.finish();
}

fn issuance(c: &mut Criterion) {
    let f = fixture();
    let scope = ScopeSet::parse("posts:read posts:write").unwrap();
    let mut group = c.benchmark_group("access_token");
    // The whole function the grants call: claims, JOSE header, JSON, base64url, and the
    // signature on the blocking pool.
    group.bench_function("issue", |b| {
        b.iter(|| {
            f.runtime
                .block_on(f.issuer.issue("0190b6a3-user", "posts-web", &scope))
                .unwrap()
        })
    });
    group.bench_function("verify_own_token", |b| {
        let token = f
            .runtime
            .block_on(f.issuer.issue("0190b6a3-user", "posts-web", &scope))
            .unwrap()
            .token;
        b.iter(|| f.issuer.verify(black_box(&token)).unwrap())
    });
    group.finish();
}

fn argon2id(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hasher = runtime
        .block_on(PasswordHasher::new(ARGON2_DEFAULTS))
        .expect("hasher");
    let password = "correct horse battery staple";
    let stored = runtime
        .block_on(hasher.hash(Password::parse(password.into()).unwrap()))
        .unwrap();

    let mut group = c.benchmark_group("argon2id_m19456_t2_p1");
    // Tens of milliseconds per operation: fewer, longer samples.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("hash", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.hash(Password::parse(password.into()).unwrap()))
                .unwrap()
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            let ok = runtime
                .block_on(hasher.verify(password.into(), Some(stored.clone())))
                .unwrap();
            assert!(ok);
        })
    });
    group.finish();
}

criterion_group!(benches, rs256, issuance, argon2id);
criterion_main!(benches);
