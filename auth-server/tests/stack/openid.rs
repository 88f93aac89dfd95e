//! The two token kinds at the resource server: an access token from the browser sign-in
//! works, an ID token never does.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    browser::{Browser, Pkce, exchange, sign_in_as_posts_web},
    helpers::{PASSWORD, POSTS_WEB_REDIRECT_URI, spawn_app},
    spawn_posts,
};

#[tokio::test]
async fn a_browser_sign_in_gives_an_access_token_that_posts_server_accepts() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    auth.signed_up_user("browser@example.com").await;
    let browser = Browser::new(&auth);
    let pkce = Pkce::new();
    let code = sign_in_as_posts_web(
        &browser,
        &pkce,
        "browser@example.com",
        "openid posts:read posts:write",
    )
    .await;
    let tokens: Value = exchange(
        &auth,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await
    .json()
    .await
    .unwrap();
    let access = tokens["access_token"].as_str().unwrap();

    let created = posts
        .create(access, "From the browser", "Signed in on the login page")
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let mine = posts.get("/posts/me", Some(access)).await;
    assert_eq!(mine.status(), StatusCode::OK);

    // The ID token of the same sign-in is not an access token.
    let id_token = tokens["id_token"].as_str().unwrap();
    let refused = posts.get("/posts/me", Some(id_token)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn an_id_token_whose_audience_looks_like_the_api_is_still_refused() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    auth.signed_up_user("confused@example.com").await;
    // A client whose id equals the API's audience: its ID tokens' `aud` is "posts-api",
    // so only the `typ` tells them apart, and it must.
    auth.create_client("posts-api", false, &["password"], "openid posts:read")
        .await;
    let tokens: Value = auth
        .post_token(&[
            ("grant_type", "password"),
            ("client_id", "posts-api"),
            ("username", "confused@example.com"),
            ("password", PASSWORD),
            ("scope", "openid posts:read"),
        ])
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let refused = posts.get("/posts/me", Some(id_token)).await;

    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        posts.get("/posts/me", Some(access)).await.status(),
        StatusCode::OK
    );
}
