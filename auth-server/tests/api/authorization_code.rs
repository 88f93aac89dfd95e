//! The authorization-code flow with PKCE, end to end over HTTP: the authorization request,
//! the sign-in page, the code, and its exchange at the token endpoint.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    browser::{Browser, Pkce, exchange, hidden, location, params, query, sign_in_as_posts_web},
    helpers::{PASSWORD, POSTS_WEB_REDIRECT_URI, TestApp, assert_oauth_error, spawn_app},
};

const APP_REDIRECT: &str = "https://app.example.com/callback";

/// A confidential, not trusted client with one redirect URI; returns its secret.
async fn confidential_client(app: &TestApp) -> String {
    app.register_client(auth_server::clients::NewClient {
        client_id: "webapp".into(),
        confidential: true,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: "posts:read posts:write openid profile email".into(),
        redirect_uris: vec![APP_REDIRECT.into()],
        name: Some("Web App".into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_public_client_signs_a_user_in_and_gets_tokens_for_its_code() {
    let app = spawn_app().await;
    let user = app.signed_up_user("ada@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();

    let resp = browser
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let login = location(&resp);
    assert!(login.starts_with("/login?request="), "{login}");
    let (status, page) = browser.follow(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"name="username""#) && page.contains(r#"name="password""#));
    assert!(
        page.contains(r#"href="/signup?request="#),
        "links to sign-up"
    );

    let resp = browser
        .submit_login(&page, "ada@example.com", PASSWORD)
        .await;
    assert!(matches!(
        resp.status(),
        StatusCode::FOUND | StatusCode::SEE_OTHER
    ));
    let back = location(&resp);
    assert!(back.starts_with(POSTS_WEB_REDIRECT_URI), "{back}");
    let answer = query(&back);
    assert_eq!(answer["state"], "st-123");
    assert_eq!(answer["iss"], "http://127.0.0.1:8000");
    let code = &answer["code"];
    assert!(code.len() >= 22, "at least 128 bits");

    let resp = exchange(
        &app,
        "posts-web",
        code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "posts:read");
    assert!(tokens["refresh_token"].is_string());
    assert!(tokens.get("id_token").is_none(), "no openid, no ID token");
    let me: Value = app
        .get_me(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], user["id"]);

    // The code grant's login rotates like any other.
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_confidential_client_asks_consent_and_authenticates_its_exchange() {
    let app = spawn_app().await;
    let secret = confidential_client(&app).await;
    app.signed_up_user("bob@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();

    let resp = browser
        .authorize(&params("webapp", APP_REDIRECT, &pkce, "openid posts:read"))
        .await;
    let (_, page) = browser.follow(resp).await;
    assert!(page.contains("Web App"), "the login page names the client");
    let resp = browser
        .submit_login(&page, "bob@example.com", PASSWORD)
        .await;
    let consent = location(&resp);
    assert!(consent.starts_with("/consent?request="), "{consent}");
    let (status, page) = browser.follow(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Web App"));
    assert!(page.contains("Read posts"), "scopes are described in words");
    assert!(page.contains("Confirm who you are"));
    assert!(page.contains(r#"name="decision" value="allow""#));
    assert!(page.contains(r#"name="decision" value="deny""#));
    let resp = browser.submit_consent(&page, "allow").await;
    let back = location(&resp);
    assert!(back.starts_with(APP_REDIRECT), "{back}");
    let code = query(&back)["code"].clone();

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP_REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    // Without its secret the confidential client is not authenticated.
    let mut without_secret = form.to_vec();
    without_secret.push(("client_id", "webapp"));
    let resp = app.post_token(&without_secret).await;
    assert_oauth_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;

    let resp = app.post_token_basic("webapp", &secret, &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid posts:read");
    assert!(tokens["id_token"].is_string());
    assert!(tokens["refresh_token"].is_string());
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    app.signed_up_user("eve@example.com").await;
    let secret = app
        .create_client("rs", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let code = sign_in_as_posts_web(&browser, &pkce, "eve@example.com", "posts:read").await;
    let first: Value = exchange(
        &app,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await
    .json()
    .await
    .unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.get_me(access).await.status(), StatusCode::OK);

    let replay = exchange(
        &app,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;

    assert_oauth_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let refresh = app.refresh(first["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(app.introspect("rs", &secret, access).await["active"], false);
    assert_eq!(app.get_me(access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn of_two_concurrent_exchanges_of_one_code_exactly_one_wins() {
    let app = spawn_app().await;
    app.signed_up_user("race@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let code = sign_in_as_posts_web(&browser, &pkce, "race@example.com", "posts:read").await;

    let (a, b) = tokio::join!(
        exchange(
            &app,
            "posts-web",
            &code,
            POSTS_WEB_REDIRECT_URI,
            &pkce.verifier
        ),
        exchange(
            &app,
            "posts-web",
            &code,
            POSTS_WEB_REDIRECT_URI,
            &pkce.verifier
        ),
    );

    let statuses = [a.status(), b.status()];
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    // The loser was a replay: the winner's login is revoked too.
    let winner = if a.status() == StatusCode::OK { a } else { b };
    let tokens: Value = winner.json().await.unwrap();
    let refresh = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_is_refused_with_another_verifier_redirect_uri_or_client() {
    let app = spawn_app().await;
    app.signed_up_user("kim@example.com").await;
    confidential_client(&app).await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let code = sign_in_as_posts_web(&browser, &pkce, "kim@example.com", "posts:read").await;
    let other_port = "http://127.0.0.1:9999/docs/oauth-receiver.html";

    for (client, redirect_uri, verifier) in [
        ("posts-web", POSTS_WEB_REDIRECT_URI, Pkce::new().verifier),
        ("posts-web", POSTS_WEB_REDIRECT_URI, String::new()),
        ("posts-web", POSTS_WEB_REDIRECT_URI, pkce.challenge.clone()),
        ("posts-web", POSTS_WEB_REDIRECT_URI, "short".into()),
        ("posts-web", other_port, pkce.verifier.clone()),
        (
            "posts-web",
            "http://localhost:8001/docs/oauth-receiver.html",
            pkce.verifier.clone(),
        ),
    ] {
        let resp = exchange(&app, client, &code, redirect_uri, &verifier).await;
        assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    app.register_client(auth_server::clients::NewClient {
        client_id: "other".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: "posts:read".into(),
        redirect_uris: vec![POSTS_WEB_REDIRECT_URI.into()],
        ..Default::default()
    })
    .await;
    let resp = exchange(&app, "other", &code, POSTS_WEB_REDIRECT_URI, &pkce.verifier).await;
    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // None of those used the code up.
    let resp = exchange(
        &app,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_and_expired_codes_are_invalid_grant() {
    let app =
        crate::helpers::spawn_app_with(|s| s.code_ttl = std::time::Duration::from_secs(1)).await;
    app.signed_up_user("old@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let code = sign_in_as_posts_web(&browser, &pkce, "old@example.com", "posts:read").await;

    let unknown = exchange(
        &app,
        "posts-web",
        "nope",
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_oauth_error(unknown, StatusCode::BAD_REQUEST, "invalid_grant").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = exchange(
        &app,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_oauth_error(expired, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn an_exchange_without_its_parameters_is_invalid_request() {
    let app = spawn_app().await;
    for form in [
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", "posts-web"),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", "posts-web"),
            ("code", "abc"),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", "abc"),
            ("redirect_uri", POSTS_WEB_REDIRECT_URI),
        ],
    ] {
        let resp = app.post_token(&form).await;
        assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn the_sign_in_page_is_protected_and_its_session_cookie_is_safe() {
    let app = spawn_app().await;
    app.signed_up_user("sec@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let resp = browser
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;
    let page = browser.get(&location(&resp)).await;

    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(headers.get("cross-origin-opener-policy").is_none());
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script"), "no script at all");
    assert!(hidden(&html, "csrf").is_some());

    let resp = browser
        .submit_login(&html, "sec@example.com", PASSWORD)
        .await;
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("auth_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http issuer: no Secure");
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("auth_session=");
    assert!(value.len() >= 22, "at least 128 bits");
}
