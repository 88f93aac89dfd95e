use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_oauth_error, spawn_app};

#[tokio::test]
async fn client_secret_basic_gets_a_token_for_the_client_itself() {
    let app = spawn_app().await;
    let secret = app
        .create_client("svc", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();

    let resp = app
        .post_token_basic("svc", &secret, &[("grant_type", "client_credentials")])
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "posts:read");
    let token = body["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let app = spawn_app().await;
    let secret = app
        .create_client(
            "svc",
            true,
            &["client_credentials"],
            "posts:read posts:write",
        )
        .await
        .unwrap();

    let resp = app
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", &secret),
            ("scope", "posts:write"),
        ])
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["scope"], "posts:write");
}

#[tokio::test]
async fn a_wrong_secret_is_401_with_a_basic_challenge_only_when_basic_was_used() {
    let app = spawn_app().await;
    app.create_client("svc", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();

    let basic = app
        .post_token_basic("svc", "wrong", &[("grant_type", "client_credentials")])
        .await;
    assert!(
        basic.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_oauth_error(basic, StatusCode::UNAUTHORIZED, "invalid_client").await;

    let post = app
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "wrong"),
        ])
        .await;
    assert!(post.headers().get("www-authenticate").is_none());
    assert_oauth_error(post, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn malformed_basic_headers_are_invalid_client_never_5xx() {
    let app = spawn_app().await;
    let url = format!("{}/oauth/token", app.address);

    for header in [
        "Basic",
        "Basic !!!",
        "Basic Zm9v",
        "Digest abc",
        "Basic OnNlY3JldA==",
    ] {
        let resp = app
            .http
            .post(&url)
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_oauth_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

#[tokio::test]
async fn a_public_client_cannot_use_client_credentials() {
    let app = spawn_app().await;

    let anonymous = app
        .post_token(&[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;

    let public = app
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "posts-web"),
        ])
        .await;
    assert_oauth_error(public, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

#[tokio::test]
async fn both_authentication_methods_at_once_are_invalid_request() {
    let app = spawn_app().await;
    let secret = app
        .create_client("svc", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();

    let resp = app
        .post_token_basic(
            "svc",
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
        )
        .await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_confidential_client_without_its_secret_is_invalid_client() {
    let app = spawn_app().await;
    app.create_client("svc", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();

    let resp = app
        .post_token(&[("grant_type", "client_credentials"), ("client_id", "svc")])
        .await;

    assert_oauth_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;
}
