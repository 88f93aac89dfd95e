use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, assert_oauth_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_account_is_locked_after_five_failures_with_retry_after() {
    let app = spawn_app().await;
    app.signed_up_user("victim@example.com").await;
    for _ in 0..5 {
        assert_oauth_error(
            app.login("victim@example.com", "wrong password").await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
    }

    let locked = app.login("victim@example.com", PASSWORD).await;

    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("auth_throttled_requests_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("auth_failed_logins_total 5"), "{metrics}");
}

#[tokio::test]
async fn the_lock_is_short_and_a_success_resets_it() {
    let app = spawn_app().await;
    app.signed_up_user("victim@example.com").await;
    for _ in 0..5 {
        app.login("victim@example.com", "wrong password").await;
    }
    let retry_after: u64 = app.login("victim@example.com", PASSWORD).await.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    tokio::time::sleep(Duration::from_secs(retry_after)).await;

    assert_eq!(
        app.login("victim@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    // The counter was reset: one more failure does not lock again.
    app.login("victim@example.com", "wrong password").await;
    assert_eq!(
        app.login("victim@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_accounts_are_throttled_like_known_ones() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.login("ghost@example.com", "wrong password").await;
    }

    let resp = app.login("ghost@example.com", "wrong password").await;

    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn one_address_spraying_many_accounts_runs_out_of_budget() {
    let app = spawn_app_with(|s| s.throttle.ip_budget = 8).await;
    app.signed_up_user("someone@example.com").await;
    for i in 0..8 {
        let resp = app
            .login(&format!("user{i}@example.com"), "Winter2026!")
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }

    let resp = app.login("someone@example.com", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn an_absurdly_long_username_is_an_ordinary_invalid_grant() {
    let app = spawn_app().await;

    let resp = app.login(&"x".repeat(20_000), "wrong password").await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn a_nul_in_the_username_or_client_id_is_an_ordinary_refusal() {
    // PostgreSQL refuses NUL in text parameters; these were 500s there.
    let app = spawn_app().await;

    let user = app.login("a\0b@example.com", "wrong password").await;
    assert_oauth_error(user, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let client = app
        .post_token(&[
            ("grant_type", "password"),
            ("client_id", "a\0b"),
            ("username", "x@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_oauth_error(client, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_lock() {
    let app = spawn_app().await;
    app.signed_up_user("target@example.com").await;

    let guesses = (0..30).map(|i| {
        let password = format!("guess {i}");
        let app = &app;
        async move { app.login("target@example.com", &password).await.status() }
    });
    let statuses = futures::future::join_all(guesses).await;

    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!(checked, 5, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::BAD_REQUEST || *s == StatusCode::TOO_MANY_REQUESTS)
    );
}

#[tokio::test]
async fn empty_credentials_are_missing_credentials() {
    let app = spawn_app().await;

    let resp = app.login("", "").await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_locked_account_is_answered_before_a_spent_address_budget() {
    // Five failures both lock the account (for 2 s) and spend the address's budget (for
    // the rest of its 300 s window): the answer is the account's lock.
    let app = spawn_app_with(|s| s.throttle.ip_budget = 5).await;
    app.signed_up_user("victim@example.com").await;
    for _ in 0..5 {
        app.login("victim@example.com", "wrong password").await;
    }

    let resp = app.login("victim@example.com", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
}
