use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_oauth_error, spawn_app};

async fn app_with_introspector() -> (TestApp, String) {
    let app = spawn_app().await;
    let secret = app
        .create_client("rs", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();
    (app, secret)
}

async fn revoke(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(format!("{}/oauth/revoke", app.address))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn introspection_reports_an_access_token_and_its_claims() {
    let (app, secret) = app_with_introspector().await;
    let user = app.signed_up_user("i@example.com").await;
    let tokens = app.password_tokens("i@example.com").await;

    let resp = app
        .post_form_basic(
            "/oauth/introspect",
            "rs",
            &secret,
            &[("token", tokens["access_token"].as_str().unwrap())],
        )
        .await;

    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], user["id"]);
    assert_eq!(body["client_id"], "posts-web");
    assert_eq!(body["scope"], "posts:read posts:write");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], "http://127.0.0.1:8000");
    assert_eq!(body["aud"], "posts-api");
    for claim in ["exp", "iat", "nbf", "jti"] {
        assert!(!body[claim].is_null(), "{claim} missing: {body}");
    }
}

#[tokio::test]
async fn introspection_reports_a_refresh_token() {
    let (app, secret) = app_with_introspector().await;
    app.signed_up_user("i@example.com").await;
    let tokens = app.password_tokens("i@example.com").await;

    let body = app
        .introspect("rs", &secret, tokens["refresh_token"].as_str().unwrap())
        .await;

    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], "posts-web");
}

#[tokio::test]
async fn unknown_tokens_introspect_as_inactive_only() {
    let (app, secret) = app_with_introspector().await;

    for token in ["garbage", "a.b.c", ""] {
        let resp = app
            .post_form_basic("/oauth/introspect", "rs", &secret, &[("token", token)])
            .await;
        if token.is_empty() {
            assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        } else {
            assert_eq!(
                resp.json::<Value>().await.unwrap(),
                json!({"active": false})
            );
        }
    }
}

#[tokio::test]
async fn introspection_needs_an_authenticated_confidential_client() {
    let (app, _) = app_with_introspector().await;
    let url = format!("{}/oauth/introspect", app.address);

    let anonymous = app
        .http
        .post(&url)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let public = app
        .http
        .post(&url)
        .form(&[("token", "x"), ("client_id", "posts-web")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(public, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong = app
        .post_form_basic("/oauth/introspect", "rs", "wrong", &[("token", "x")])
        .await;
    assert!(wrong.headers().contains_key("www-authenticate"));
    assert_oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn revoking_an_access_token_makes_it_inactive() {
    let (app, secret) = app_with_introspector().await;
    app.signed_up_user("v@example.com").await;
    let tokens = app.password_tokens("v@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();

    let resp = revoke(
        &app,
        &[("token", access), ("token_type_hint", "access_token")],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.introspect("rs", &secret, access).await,
        json!({"active": false})
    );
    assert_eq!(app.get_me(access).await.status(), StatusCode::UNAUTHORIZED);
    // The login itself goes on.
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_login_and_its_access_tokens() {
    let (app, secret) = app_with_introspector().await;
    app.signed_up_user("v@example.com").await;
    let tokens = app.password_tokens("v@example.com").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // No hint: the server finds the token whatever its kind.
    let resp = revoke(&app, &[("token", refresh)]).await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_oauth_error(
        app.refresh(refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.introspect("rs", &secret, access).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revoking_an_unknown_token_is_still_200() {
    let (app, _) = app_with_introspector().await;

    let resp = revoke(
        &app,
        &[
            ("token", "never-issued"),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_tokens() {
    let (app, secret) = app_with_introspector().await;
    app.signed_up_user("v@example.com").await;
    let tokens = app.password_tokens("v@example.com").await;

    let resp = app
        .post_form_basic(
            "/oauth/revoke",
            "rs",
            &secret,
            &[("token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revocation_without_a_token_is_invalid_request() {
    let (app, _) = app_with_introspector().await;

    let resp = revoke(&app, &[("token_type_hint", "access_token")]).await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}
