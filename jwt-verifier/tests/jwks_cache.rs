//! The key set cache against a real HTTP endpoint: `max-age`, the unknown-kid cooldown,
//! stale-on-error, and no key set yet.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{AUDIENCE, ISSUER, JwksServer, Recorder, jwks_of, primary, second};
use jwt_verifier::{JwksCache, KeySource, Rejection, TokenVerifier, VerifyError};

fn cache(server: &JwksServer, cooldown: Duration, recorder: &Arc<Recorder>) -> JwksCache {
    JwksCache::builder(KeySource::Url(server.url.clone()))
        .cooldown(cooldown)
        .retry(Duration::from_millis(50))
        .observer(recorder.clone())
        .build()
        .expect("cache")
}

fn verifier(keys: JwksCache) -> TokenVerifier {
    TokenVerifier::builder(keys, ISSUER, AUDIENCE).build()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_random_kids_cost_one_fetch_per_cooldown() {
    // Arrange
    let server = JwksServer::start(jwks_of(&[primary()])).await;
    let recorder = Arc::new(Recorder::default());
    let keys = cache(&server, Duration::from_secs(60), &recorder);
    keys.load().await.expect("first fetch");
    let verifier = verifier(keys);
    server.publish(jwks_of(&[primary(), second()]));

    // Act: the rotated key, twice, then a flood of kids nobody publishes.
    let rotated = second().token("alice", "orders:read");
    assert!(verifier.verify(&rotated).await.is_ok());
    assert!(verifier.verify(&rotated).await.is_ok());
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..20 {
        let verifier = verifier.clone();
        let mut header = primary().header();
        header["kid"] = format!("random-{n}").into();
        let token = primary().sign(&header, &primary().claims("mallory", ""));
        flood.spawn(async move { verifier.verify(&token).await });
    }
    let refused = flood.join_all().await;

    // Assert: one fetch for the rotation, one for the whole flood (within the cooldown).
    assert_eq!(server.fetches(), 2);
    for result in refused {
        assert!(matches!(
            result,
            Err(VerifyError::Rejected(Rejection::UnknownKid(_)))
        ));
    }
    let events = recorder.events();
    assert_eq!(events[..2], ["fetch:startup:ok", "fetch:unknown_kid:ok"]);
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "rejected:unknown_kid")
            .count(),
        20
    );
}

#[tokio::test]
async fn keys_already_fetched_keep_working_while_the_server_is_down() {
    let server = JwksServer::start(jwks_of(&[primary()])).await;
    let recorder = Arc::new(Recorder::default());
    let keys = cache(&server, Duration::ZERO, &recorder);
    keys.load().await.expect("first fetch");
    let verifier = verifier(keys.clone());

    server.set_down(true);
    // An unknown kid makes the cache try, and fail.
    let unknown = verifier.verify(&second().token("alice", "")).await;
    let known = verifier.verify(&primary().token("alice", "")).await;

    assert!(matches!(
        unknown,
        Err(VerifyError::Rejected(Rejection::UnknownKid(_)))
    ));
    assert_eq!(known.expect("the key fetched before").sub, "alice");
    assert!(
        recorder
            .events()
            .contains(&"fetch:unknown_kid:failed".to_owned())
    );
    assert_eq!(keys.key_count(), 1);
    assert!(keys.load().await.is_err(), "a 503 is a failed fetch");
    assert!(keys.is_loaded());
}

#[tokio::test]
async fn until_a_key_set_is_fetched_tokens_cannot_be_checked() {
    // Arrange: the auth server is down when the service starts.
    let server = JwksServer::start(jwks_of(&[primary()])).await;
    server.set_down(true);
    let recorder = Arc::new(Recorder::default());
    let keys = cache(&server, Duration::ZERO, &recorder);
    let refresher = keys.spawn_refresher(Duration::ZERO);
    let verifier = verifier(keys.clone());
    eventually("a fetch failed", || server.fetches() > 0).await;

    // Act and assert: no keys is the service's problem, not a bad token.
    let token = primary().token("alice", "");
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::KeysUnavailable
    );
    assert_eq!(keys.age(), None);

    // The refresher retries with backoff until the server is back.
    server.set_down(false);
    eventually("the key set is loaded", || keys.is_loaded()).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert!(
        recorder
            .events()
            .contains(&"fetch:background:failed".to_owned())
    );
    assert!(
        recorder
            .events()
            .contains(&"fetch:background:ok".to_owned())
    );
    refresher.abort();
}

#[tokio::test]
async fn max_age_schedules_the_background_refresh() {
    // Arrange: the server asks for a refetch every second.
    let server = JwksServer::start(jwks_of(&[primary()])).await;
    server.set_cache_control("public, max-age=1");
    let recorder = Arc::new(Recorder::default());
    let keys = JwksCache::builder(KeySource::Url(server.url.clone()))
        .cooldown(Duration::from_millis(100))
        .refresh(Duration::from_secs(3600))
        .observer(recorder.clone())
        .build()
        .unwrap();
    let refresher = keys.spawn_refresher(Duration::ZERO);
    eventually("the first fetch", || keys.is_loaded()).await;

    // Act: a rotation, published without any token asking for it.
    server.publish(jwks_of(&[primary(), second()]));
    eventually("the refresher picked up the rotation", || {
        keys.key_count() == 2
    })
    .await;

    // Assert: roughly one fetch a second, not one per cooldown.
    let background = |events: Vec<String>| {
        events
            .iter()
            .filter(|e| *e == "fetch:background:ok")
            .count()
    };
    assert!(background(recorder.events()) >= 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        background(recorder.events()) <= 4,
        "{:?}",
        recorder.events()
    );
    assert!(keys.age().is_some_and(|age| age < Duration::from_secs(2)));
    refresher.abort();
}
