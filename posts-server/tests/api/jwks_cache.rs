//! The key set cache: refetch on an unknown kid with a cooldown, stale-on-error, background
//! refresh, offline key files, and readiness before the first key set.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    INVALID_TOKEN, JwksServer, TestApp, TestKey, at_jwt_header, default_claims, keys, launch, sign,
    spawn_app, spawn_app_with, www_authenticate,
};

fn token_signed_by(key: &TestKey, sub: &str) -> String {
    sign(&at_jwt_header(key), &default_claims(sub), key)
}

fn jwks(app: &TestApp) -> &JwksServer {
    app.jwks
        .as_ref()
        .expect("the app fetches from a JWKS server")
}

async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_key_set_once() {
    // Arrange: the auth server rotates to a key the app has not seen yet.
    let app = spawn_app().await;
    let fetches_at_start = jwks(&app).fetches();
    jwks(&app).set_keys(vec![keys().primary.jwk.clone(), keys().rotated.jwk.clone()]);
    let token = token_signed_by(&keys().rotated, "alice");

    // Act
    let first = app.get_posts(&token, "").await;
    let second = app.get_posts(&token, "").await;

    // Assert: one fetch picked up the new key, and the second request needed none.
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(jwks(&app).fetches(), fetches_at_start + 1);
}

#[tokio::test]
async fn a_flood_of_random_kids_costs_at_most_one_fetch_per_cooldown() {
    let app = spawn_app_with(|settings| settings.jwks.cooldown = Duration::from_secs(2)).await;
    let fetches_at_start = jwks(&app).fetches();

    // Act: 50 concurrent requests, each with a different unknown kid.
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..50 {
        let mut header = at_jwt_header(&keys().primary);
        header.kid = Some(format!("random-kid-{n}"));
        let token = sign(&header, &default_claims("attacker"), &keys().primary);
        let request = app.request(reqwest::Method::GET, "/posts", Some(&token));
        requests.spawn(async move { request.send().await.expect("an answer") });
    }
    let responses = requests.join_all().await;

    // Assert
    for response in &responses {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(www_authenticate(response), INVALID_TOKEN);
    }
    assert_eq!(jwks(&app).fetches(), fetches_at_start + 1);

    // After the cooldown, an unknown kid may refetch again, once.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let mut header = at_jwt_header(&keys().primary);
    header.kid = Some("yet-another-kid".to_owned());
    let token = sign(&header, &default_claims("attacker"), &keys().primary);
    for _ in 0..5 {
        assert_eq!(
            app.get_posts(&token, "").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(jwks(&app).fetches(), fetches_at_start + 2);
}

#[tokio::test]
async fn a_rotated_key_within_the_cooldown_waits_for_the_cooldown() {
    let app =
        spawn_app_with(|settings| settings.jwks.cooldown = Duration::from_millis(1_500)).await;
    let unknown = token_signed_by(&keys().rotated, "alice");
    // Spend the refetch on a kid the server does not publish yet.
    assert_eq!(
        app.get_posts(&unknown, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
    jwks(&app).set_keys(vec![keys().primary.jwk.clone(), keys().rotated.jwk.clone()]);

    let during_cooldown = app.get_posts(&unknown, "").await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let after_cooldown = app.get_posts(&unknown, "").await;

    assert_eq!(during_cooldown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(after_cooldown.status(), StatusCode::OK);
}

#[tokio::test]
async fn known_keys_keep_working_when_the_auth_server_is_down() {
    // Arrange: refresh often so that failures really happen during the test.
    let server = JwksServer::start(vec![keys().primary.jwk.clone()]).await;
    server.set_max_age(None);
    let mut app = launch(Some(server), |settings| {
        settings.jwks.cooldown = Duration::from_millis(100);
        settings.jwks.refresh = Duration::from_millis(100);
    })
    .await;
    app.wait_until_ready().await;
    let token = app.token_for("alice");
    let fetches_before = jwks(&app).fetches();

    // Act: the auth server fails, then disappears.
    jwks(&app).set_status(500);
    eventually("a refresh failed", Duration::from_secs(5), async || {
        jwks(&app).fetches() > fetches_before
    })
    .await;
    let while_failing = app.get_posts(&token, "").await;
    app.jwks.as_mut().unwrap().stop().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let while_down = app.get_posts(&token, "").await;
    let unknown_while_down = app
        .get_posts(&token_signed_by(&keys().rotated, "alice"), "")
        .await;

    // Assert
    assert_eq!(while_failing.status(), StatusCode::OK);
    assert_eq!(while_down.status(), StatusCode::OK);
    assert_eq!(unknown_while_down.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_readyz().await.status(), StatusCode::OK);
    let metrics = app.get_metrics().await;
    assert!(
        metrics.contains("jwks_fetches_total{trigger=\"background\",outcome=\"failure\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_long_max_age_means_no_background_fetches() {
    let app = spawn_app_with(|settings| settings.jwks.cooldown = Duration::from_millis(100)).await;

    tokio::time::sleep(Duration::from_millis(1_000)).await;

    assert_eq!(jwks(&app).fetches(), 1, "max-age=600 was honoured");
}

#[tokio::test]
async fn a_short_max_age_causes_regular_refreshes() {
    let jwks = JwksServer::start(vec![keys().primary.jwk.clone()]).await;
    jwks.set_max_age(Some(1));
    let app = launch(Some(jwks), |settings| {
        settings.jwks.cooldown = Duration::from_millis(100);
    })
    .await;
    app.wait_until_ready().await;

    tokio::time::sleep(Duration::from_millis(2_600)).await;

    let fetches = app.jwks.as_ref().unwrap().fetches();
    // About one per second after the first; never a tight loop.
    assert!(
        (2..=5).contains(&fetches),
        "{fetches} fetches in 2.6 s with max-age=1"
    );
}

#[tokio::test]
async fn readyz_is_503_until_the_first_key_set_arrives() {
    // Arrange: the auth server is up but failing when the app starts.
    let jwks = JwksServer::start(vec![keys().primary.jwk.clone()]).await;
    jwks.set_status(503);
    let app = launch(Some(jwks), |_| {}).await;

    // Assert: the app serves, but is not ready and cannot check tokens yet.
    assert_eq!(app.get_healthz().await.status(), StatusCode::OK);
    let readyz = app.get_readyz().await;
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    let posts = app.get_posts(&app.token_for("alice"), "").await;
    assert_eq!(posts.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(posts.headers().contains_key("retry-after"));

    // Act: the auth server recovers; the retry with backoff picks the keys up.
    app.jwks.as_ref().unwrap().set_status(200);
    app.wait_until_ready().await;
    let posts = app.get_posts(&app.token_for("alice"), "").await;
    assert_eq!(posts.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_local_jwks_file_needs_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({ "keys": [keys().primary.jwk] }).to_string()).unwrap();

    let app = launch(None, |settings| {
        settings.jwks.file = Some(path.clone());
        // Nothing listens here: any fetch would fail.
        settings.jwks.url = Some("http://127.0.0.1:9/jwks.json".parse().unwrap());
    })
    .await;

    assert_eq!(app.get_readyz().await.status(), StatusCode::OK);
    assert_eq!(
        app.get_posts(&app.token_for("alice"), "").await.status(),
        StatusCode::OK
    );
    let foreign = token_signed_by(&keys().foreign, "mallory");
    assert_eq!(
        app.get_posts(&foreign, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_local_pem_public_key_is_named_by_its_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("public.pem");
    std::fs::write(&path, &keys().primary.public_pem).unwrap();

    let app = launch(None, |settings| settings.jwks.file = Some(path.clone())).await;

    assert_eq!(app.get_readyz().await.status(), StatusCode::OK);
    assert_eq!(
        app.get_posts(&app.token_for("alice"), "").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_file_is_reread_for_an_unknown_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({ "keys": [keys().primary.jwk] }).to_string()).unwrap();
    let app = launch(None, |settings| settings.jwks.file = Some(path.clone())).await;

    std::fs::write(
        &path,
        json!({ "keys": [keys().primary.jwk, keys().rotated.jwk] }).to_string(),
    )
    .unwrap();
    let rotated = token_signed_by(&keys().rotated, "alice");

    assert_eq!(app.get_posts(&rotated, "").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unusable_key_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, "{\"keys\": []}").unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("posts.db").display()
    );
    let mut settings = crate::helpers::test_settings(&db, None);
    settings.jwks.file = Some(path);

    let built = posts_server::startup::Application::build(settings).await;

    assert!(built.is_err());
}

#[tokio::test]
async fn fetch_metrics_count_unknown_kid_refetches() {
    let app = spawn_app().await;
    let _ = app
        .get_posts(&token_signed_by(&keys().foreign, "x"), "")
        .await;

    let metrics = app.get_metrics().await;

    assert!(
        metrics.contains("jwks_fetches_total{trigger=\"unknown_kid\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("token_rejections_total{reason=\"unknown_kid\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jwks_keys 1"), "{metrics}");
}

#[tokio::test]
async fn a_token_verified_before_its_key_was_revoked_is_refused_after_the_next_refresh() {
    // Arrange: two published keys, refreshed every second; a token of the rotated key is
    // verified (and remembered by the cache of verified tokens) and used again.
    let server =
        JwksServer::start(vec![keys().primary.jwk.clone(), keys().rotated.jwk.clone()]).await;
    server.set_max_age(Some(1));
    let app = launch(Some(server), |settings| {
        settings.jwks.cooldown = Duration::from_millis(100);
    })
    .await;
    app.wait_until_ready().await;
    let revoked = token_signed_by(&keys().rotated, "alice");
    let kept = token_signed_by(&keys().primary, "bob");
    for token in [&revoked, &revoked, &kept] {
        assert_eq!(app.get_posts(token, "").await.status(), StatusCode::OK);
    }

    // Act: `keys revoke` on the auth server drops the rotated key from the JWKS.
    jwks(&app).set_keys(vec![keys().primary.jwk.clone()]);

    // Assert: within a refresh or two the remembered token is refused like a new one
    // (without the key check it would be served from the cache until its exp, 15 min
    // away); the other key's token still works.
    eventually(
        "the revoked key's token is refused",
        Duration::from_secs(5),
        async || app.get_posts(&revoked, "").await.status() == StatusCode::UNAUTHORIZED,
    )
    .await;
    let refused = app.get_posts(&revoked, "").await;
    assert!(www_authenticate(&refused).contains("invalid_token"));
    assert_eq!(app.get_posts(&kept, "").await.status(), StatusCode::OK);
}
