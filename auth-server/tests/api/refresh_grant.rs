use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, assert_oauth_error, spawn_app};

fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_refresh_rotates_the_refresh_token() {
    let app = spawn_app().await;
    app.signed_up_user("r@example.com").await;
    let first = app.password_tokens("r@example.com").await;

    let resp = app.refresh(&refresh_token(&first)).await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let second: Value = resp.json().await.unwrap();
    assert_ne!(refresh_token(&second), refresh_token(&first));
    assert_eq!(second["scope"], "posts:read posts:write");
    assert_eq!(
        app.get_me(second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let third = app.refresh(&refresh_token(&second)).await;
    assert_eq!(third.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_login() {
    let app = spawn_app().await;
    app.signed_up_user("reuse@example.com").await;
    let secret = app
        .create_client("rs", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();
    let first = app.password_tokens("reuse@example.com").await;
    let second: Value = app
        .refresh(&refresh_token(&first))
        .await
        .json()
        .await
        .unwrap();

    let replay = app.refresh(&refresh_token(&first)).await;

    assert_oauth_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let successor = app.refresh(&refresh_token(&second)).await;
    assert_oauth_error(successor, StatusCode::BAD_REQUEST, "invalid_grant").await;
    for body in [&first, &second] {
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(
            app.introspect("rs", &secret, access).await,
            serde_json::json!({"active": false})
        );
        assert_eq!(app.get_me(access).await.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_succeed_at_most_once() {
    let app = spawn_app().await;
    app.signed_up_user("race@example.com").await;
    let first = app.password_tokens("race@example.com").await;
    let token = refresh_token(&first);

    let attempts = (0..8).map(|_| app.refresh(&token));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();

    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_narrower_scope_may_be_requested_but_not_a_wider_one() {
    let app = spawn_app().await;
    app.signed_up_user("n@example.com").await;
    let read_only = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", "n@example.com"),
            ("password", PASSWORD),
            ("scope", "posts:read"),
        ])
        .await
        .json::<Value>()
        .await
        .unwrap();
    let full = app.password_tokens("n@example.com").await;

    let wider = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token(&read_only)),
            ("scope", "posts:read posts:write"),
        ])
        .await;
    let narrower = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token(&full)),
            ("scope", "posts:read"),
        ])
        .await;

    assert_oauth_error(wider, StatusCode::BAD_REQUEST, "invalid_scope").await;
    let narrower: Value = narrower.json().await.unwrap();
    assert_eq!(narrower["scope"], "posts:read");
    // The login keeps its original scope: a later refresh may ask for all of it again.
    let again: Value = app
        .refresh(&refresh_token(&narrower))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["scope"], "posts:read posts:write");
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token_and_garbage_is_invalid_grant() {
    let app = spawn_app().await;
    app.signed_up_user("k@example.com").await;
    let body = app.password_tokens("k@example.com").await;

    for presented in [
        body["access_token"].as_str().unwrap(),
        "garbage",
        &"x".repeat(5000),
    ] {
        let resp = app.refresh(presented).await;
        assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let missing = app.post_token(&[("grant_type", "refresh_token")]).await;
    assert_oauth_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_refresh_token_only_works_for_the_client_it_was_issued_to() {
    let app = spawn_app().await;
    app.signed_up_user("c@example.com").await;
    app.create_client(
        "other-app",
        false,
        &["password", "refresh_token"],
        "posts:read posts:write",
    )
    .await;
    let body = app.password_tokens("c@example.com").await;

    let resp = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "other-app"),
            ("refresh_token", &refresh_token(&body)),
        ])
        .await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(
        app.refresh(&refresh_token(&body)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_login_ends_after_the_refresh_token_lifetime() {
    let app =
        crate::helpers::spawn_app_with(|s| s.refresh_token_ttl = std::time::Duration::from_secs(1))
            .await;
    app.signed_up_user("e@example.com").await;
    let body = app.password_tokens("e@example.com").await;

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let resp = app.refresh(&refresh_token(&body)).await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
