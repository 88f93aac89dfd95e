//! The public API as a third party uses it: its own issuer, audience, leeway and required
//! scopes, keys from a local file, and a refusal for everything RFC 9068 forbids.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AUDIENCE, ISSUER, Recorder, key_file, primary, second};
use jwt_verifier::testing::TestIssuer;
use jwt_verifier::{
    JwksCache, KeySource, MAX_TOKEN_BYTES, Rejection, ScopeSet, TokenVerifier, VerifyError,
};
use serde_json::json;

/// A verifier trusting `primary()` from a JWKS file, reporting to the returned recorder.
async fn verifier() -> (TokenVerifier, Arc<Recorder>, tempfile::TempDir) {
    let (dir, path) = key_file(&primary().jwks());
    let recorder = Arc::new(Recorder::default());
    let keys = JwksCache::builder(KeySource::File(path))
        .observer(recorder.clone())
        .build()
        .expect("cache");
    keys.load().await.expect("key file");
    let verifier = TokenVerifier::builder(keys, ISSUER, AUDIENCE).build();
    (verifier, recorder, dir)
}

async fn rejection_of(verifier: &TokenVerifier, token: &str) -> Rejection {
    match verifier.verify(token).await {
        Err(VerifyError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn with_claims(changes: serde_json::Value) -> String {
    let mut claims = primary().claims("alice", "orders:read");
    for (name, value) in changes.as_object().expect("an object") {
        if value.is_null() {
            claims.as_object_mut().expect("claims").remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    primary().sign(&primary().header(), &claims)
}

fn with_header(changes: serde_json::Value) -> String {
    let mut header = primary().header();
    for (name, value) in changes.as_object().expect("an object") {
        if value.is_null() {
            header.as_object_mut().expect("header").remove(name);
        } else {
            header[name] = value.clone();
        }
    }
    primary().sign(&header, &primary().claims("alice", "orders:read"))
}

#[tokio::test]
async fn a_third_party_configures_its_own_issuer_audience_and_required_scopes() {
    // Arrange: another deployment, another API, two scopes required of every token.
    let other = TestIssuer::new("https://login.other.example/realms/shop", "inventory");
    let (_dir, path) = key_file(&other.jwks());
    let keys = JwksCache::builder(KeySource::File(path)).build().unwrap();
    keys.load().await.unwrap();
    let required = ScopeSet::parse("inventory:read inventory:write").unwrap();
    let verifier =
        TokenVerifier::builder(keys, "https://login.other.example/realms/shop", "inventory")
            .leeway(Duration::from_secs(5))
            .required_scopes(required.clone())
            .build();

    // Act
    let good = verifier
        .verify(&other.token("svc-1", "inventory:write openid inventory:read"))
        .await;
    let narrow = verifier
        .verify(&other.token("svc-1", "inventory:read"))
        .await;
    let posts_token = verifier
        .verify(&primary().token("svc-1", "inventory:read inventory:write"))
        .await;

    // Assert
    let claims = good.expect("a token with both scopes");
    assert_eq!(claims.sub, "svc-1");
    assert_eq!(claims.client_id, "test-client");
    assert!(claims.scope.contains("openid"));
    assert_eq!(
        narrow.unwrap_err(),
        VerifyError::InsufficientScope(required)
    );
    // Signed by a key this deployment does not publish, for another issuer.
    assert!(matches!(
        posts_token,
        Err(VerifyError::Rejected(Rejection::UnknownKid(_)))
    ));
    assert_eq!(verifier.leeway(), Duration::from_secs(5));
    assert_eq!(verifier.issuer(), "https://login.other.example/realms/shop");
    assert_eq!(verifier.audience(), "inventory");
}

#[tokio::test]
async fn issuer_and_audience_must_match_exactly() {
    let (verifier, _, _dir) = verifier().await;
    for (claims, expected) in [
        (json!({"iss": format!("{ISSUER}/")}), Rejection::Issuer),
        (
            json!({"iss": "https://AUTH.example.com"}),
            Rejection::Issuer,
        ),
        (json!({"aud": "orders-api-v2"}), Rejection::Audience),
        (json!({"aud": ["billing", "orders"]}), Rejection::Audience),
    ] {
        assert_eq!(
            rejection_of(&verifier, &with_claims(claims.clone())).await,
            expected,
            "{claims}"
        );
    }
    // An audience array that holds ours is fine (RFC 7519 §4.1.3).
    let token = with_claims(json!({"aud": ["billing", AUDIENCE]}));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn expiry_and_not_before_allow_the_leeway_and_no_more() {
    let (verifier, _, _dir) = verifier().await;
    let now = primary().claims("a", "")["iat"].as_i64().unwrap();
    let within = with_claims(json!({"exp": now - 20, "nbf": now + 20}));
    assert!(verifier.verify(&within).await.is_ok());
    let expired = with_claims(json!({"exp": now - 40}));
    assert_eq!(rejection_of(&verifier, &expired).await, Rejection::Expired);
    let early = with_claims(json!({"nbf": now + 40}));
    assert_eq!(
        rejection_of(&verifier, &early).await,
        Rejection::NotYetValid
    );
}

#[tokio::test]
async fn only_rs256_at_jwt_tokens_without_crit_are_accepted() {
    let (verifier, _, _dir) = verifier().await;
    for (header, label) in [
        (json!({"alg": "none"}), "algorithm"),
        (json!({"alg": "HS256"}), "algorithm"),
        (json!({"alg": "RS512"}), "algorithm"),
        (json!({"alg": null}), "algorithm"),
        (json!({"typ": "JWT"}), "typ"),
        (json!({"typ": null}), "typ"),
        (json!({"crit": ["exp"]}), "crit"),
        (json!({"kid": null}), "missing_kid"),
        (json!({"kid": ""}), "missing_kid"),
        (json!({"kid": "nobody"}), "unknown_kid"),
    ] {
        let rejection = rejection_of(&verifier, &with_header(header.clone())).await;
        assert_eq!(rejection.label(), label, "{header}");
        assert_eq!(rejection.description(), "The access token is invalid");
    }
    assert!(
        verifier
            .verify(&with_header(json!({"typ": "application/at+jwt"})))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn keys_named_by_the_token_itself_are_never_used() {
    let (verifier, _, _dir) = verifier().await;
    // Signed by a forger's key, which the header offers inline and by URL.
    let forger_jwk: serde_json::Value = serde_json::from_str(&second().jwks()).unwrap();
    let mut header = second().header();
    header["kid"] = json!(primary().kid());
    header["jwk"] = forger_jwk["keys"][0].clone();
    header["jku"] = json!("http://127.0.0.1:9/jwks.json");
    header["x5u"] = json!("http://127.0.0.1:9/cert.pem");
    header["x5c"] = json!(["MIIB"]);
    let token = second().sign(&header, &second().claims("mallory", "orders:read"));

    assert_eq!(rejection_of(&verifier, &token).await, Rejection::Signature);
}

#[tokio::test]
async fn garbage_and_oversized_tokens_are_refused_before_any_key_lookup() {
    let (verifier, recorder, _dir) = verifier().await;
    let huge = format!("{}.e30.c2ln", "a".repeat(MAX_TOKEN_BYTES));
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": "k"}).to_string()),
        URL_SAFE_NO_PAD.encode(primary().claims("root", "").to_string())
    );
    for (token, label) in [
        (huge.as_str(), "too_large"),
        ("", "malformed"),
        ("a.b", "malformed"),
        ("%%%.e30.c2ln", "malformed"),
        (alg_none.as_str(), "algorithm"),
    ] {
        assert_eq!(rejection_of(&verifier, token).await.label(), label);
    }
    // One startup read, then no fetch at all: garbage never reaches the cache.
    let fetches = recorder
        .events()
        .into_iter()
        .filter(|event| event.starts_with("fetch:"))
        .count();
    assert_eq!(fetches, 1);
}

#[tokio::test]
async fn missing_claims_and_unusable_subjects_are_refused() {
    let (verifier, _, _dir) = verifier().await;
    for claims in [
        json!({"sub": null}),
        json!({"exp": null}),
        json!({"client_id": null}),
        json!({"jti": null}),
        json!({"iat": null}),
        json!({"sub": ""}),
        json!({"sub": "a\u{0}b"}),
        json!({"sub": "x".repeat(256)}),
        json!({"scope": "a\"b"}),
        json!({"exp": "tomorrow"}),
    ] {
        assert_eq!(
            rejection_of(&verifier, &with_claims(claims.clone()))
                .await
                .label(),
            "claims",
            "{claims}"
        );
    }
}

#[tokio::test]
async fn every_refusal_reaches_the_observer_with_its_label() {
    let (verifier, recorder, _dir) = verifier().await;
    let _ = verifier.verify("nonsense").await;
    let _ = verifier.verify(&with_claims(json!({"aud": "x"}))).await;
    verifier.record(&Rejection::Malformed("from a header"));

    assert_eq!(
        recorder.events(),
        [
            "fetch:startup:ok",
            "rejected:malformed",
            "rejected:audience",
            "rejected:malformed"
        ]
    );
}

#[tokio::test]
async fn a_pem_public_key_file_is_a_key_set_of_one() {
    let (_dir, path) = key_file(primary().public_key_pem());
    let keys = JwksCache::builder(KeySource::File(path)).build().unwrap();
    keys.load().await.expect("a PEM key");
    assert_eq!(keys.key_count(), 1);
    let verifier = TokenVerifier::builder(keys, ISSUER, AUDIENCE).build();

    // The kid of a PEM key is its thumbprint, as the auth server names its keys.
    let claims = verifier.verify(&primary().token("bob", "")).await.unwrap();
    assert_eq!(claims.sub, "bob");
    assert!(claims.scope.is_empty());
}

#[tokio::test]
async fn broken_key_files_fail_to_load_and_no_token_is_accepted() {
    for contents in [
        "",
        "{}",
        r#"{"keys":[]}"#,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n",
    ] {
        let (_dir, path) = key_file(contents);
        let keys = JwksCache::builder(KeySource::File(path)).build().unwrap();
        assert!(keys.load().await.is_err(), "{contents:?}");
        let verifier = TokenVerifier::builder(keys, ISSUER, AUDIENCE).build();
        assert_eq!(
            verifier
                .verify(&primary().token("a", ""))
                .await
                .unwrap_err(),
            VerifyError::KeysUnavailable
        );
    }
}

#[tokio::test]
async fn an_absurd_leeway_is_capped_instead_of_overflowing() {
    let (_dir, path) = key_file(&primary().jwks());
    let keys = JwksCache::builder(KeySource::File(path)).build().unwrap();
    keys.load().await.unwrap();
    let verifier = TokenVerifier::builder(keys, ISSUER, AUDIENCE)
        .leeway(Duration::MAX)
        .build();
    assert_eq!(verifier.leeway(), jwt_verifier::MAX_LEEWAY);
    let expired = with_claims(json!({"exp": 1}));
    assert_eq!(rejection_of(&verifier, &expired).await, Rejection::Expired);
}

#[tokio::test]
async fn a_cached_verification_ends_when_its_key_leaves_the_key_set() {
    // Arrange: both keys published; a token of the second key verified once (cached).
    let (_dir, path) = key_file(&common::jwks_of(&[primary(), second()]));
    let keys = JwksCache::builder(KeySource::File(path.clone()))
        .build()
        .unwrap();
    keys.load().await.unwrap();
    let verifier = TokenVerifier::builder(keys.clone(), ISSUER, AUDIENCE).build();
    let token = second().token("alice", "orders:read");
    let other = primary().token("bob", "orders:read");
    verifier.verify(&token).await.expect("valid");
    verifier.verify(&other).await.expect("valid");
    assert_eq!(verifier.cached_tokens(), 2);
    verifier
        .verify(&token)
        .await
        .expect("still valid, from the cache");

    // Act: the auth server revokes the second key; the set is reloaded without it.
    std::fs::write(&path, primary().jwks()).unwrap();
    keys.load().await.unwrap();

    // Assert: the cached token is refused like a new one; the other key's token stands.
    assert_eq!(
        rejection_of(&verifier, &token).await,
        Rejection::UnknownKid(second().kid().to_owned())
    );
    verifier
        .verify(&other)
        .await
        .expect("its key is still published");
}

#[tokio::test]
async fn a_cached_verification_ends_at_the_tokens_exp() {
    let (verifier, _recorder, _dir) = verifier().await;
    let verifier = TokenVerifier::builder(verifier.keys().clone(), ISSUER, AUDIENCE)
        .leeway(Duration::ZERO)
        .build();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = with_claims(json!({ "exp": now + 2 }));
    verifier
        .verify(&token)
        .await
        .expect("valid for two seconds");
    assert_eq!(verifier.cached_tokens(), 1);

    tokio::time::sleep(Duration::from_millis(3100)).await;

    assert_eq!(rejection_of(&verifier, &token).await, Rejection::Expired);
}

#[tokio::test]
async fn cached_tokens_still_meet_the_required_scopes_and_the_cache_can_be_off() {
    let (verifier, _recorder, _dir) = verifier().await;
    let strict = TokenVerifier::builder(verifier.keys().clone(), ISSUER, AUDIENCE)
        .required_scopes(ScopeSet::parse("orders:write").unwrap())
        .build();
    let narrow = primary().token("alice", "orders:read");
    for _ in 0..2 {
        assert!(matches!(
            strict.verify(&narrow).await,
            Err(VerifyError::InsufficientScope(_))
        ));
    }
    let uncached = TokenVerifier::builder(verifier.keys().clone(), ISSUER, AUDIENCE)
        .cached_tokens(0)
        .build();
    uncached.verify(&narrow).await.expect("valid");
    assert_eq!(uncached.cached_tokens(), 0);
    // One character of the signature changed: not the cached token, verified and refused.
    verifier.verify(&narrow).await.expect("valid");
    let at = narrow.len() - 10;
    let swapped = if &narrow[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &narrow[..at], &narrow[at + 1..]);
    assert_eq!(rejection_of(&verifier, &forged).await, Rejection::Signature);
}
