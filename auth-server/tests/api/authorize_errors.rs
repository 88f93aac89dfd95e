//! The validation order of `/oauth/authorize`: an unknown client or redirect URI is a 400
//! page and never a redirect; every later error is a redirect with `error`, `state`, `iss`.

use reqwest::StatusCode;

use crate::{
    browser::{Browser, Pkce, location, params, query},
    helpers::{TestApp, spawn_app},
};

const REGISTERED: &str = "https://app.example.com/cb";

async fn app_with_client() -> TestApp {
    let app = spawn_app().await;
    app.register_client(auth_server::clients::NewClient {
        client_id: "webapp".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: "posts:read openid".into(),
        redirect_uris: vec![REGISTERED.into(), "http://127.0.0.1/native".into()],
        ..Default::default()
    })
    .await;
    app
}

/// A 400 HTML page and no redirect.
async fn assert_error_page(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.text().await.unwrap()
}

/// A redirect to the registered URI with `error`, the state and `iss`.
fn assert_error_redirect(resp: &reqwest::Response, redirect_uri: &str, error: &str) {
    let to = location(resp);
    assert!(to.starts_with(redirect_uri), "{to}");
    let q = query(&to);
    assert_eq!(q["error"], error, "{to}");
    assert!(q.contains_key("error_description"));
    assert_eq!(q["iss"], "http://127.0.0.1:8000");
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"), "{to}");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn an_unknown_or_missing_client_is_a_page_not_a_redirect() {
    let app = app_with_client().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let mut unknown = params("nobody", REGISTERED, &pkce, "posts:read");
    assert_error_page(browser.authorize(&unknown).await).await;
    unknown.retain(|(k, _)| *k != "client_id");
    assert_error_page(browser.authorize(&unknown).await).await;
    let mut twice = params("webapp", REGISTERED, &pkce, "posts:read");
    twice.push(("client_id", "webapp"));
    assert_error_page(browser.authorize(&twice).await).await;
}

#[tokio::test]
async fn a_missing_or_unregistered_redirect_uri_is_a_page_not_a_redirect() {
    let app = app_with_client().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    for trick in [
        "https://app.example.com/cb/evil",
        "https://app.example.com/c",
        "https://app.example.com/cbx",
        "https://APP.example.com/cb",
        "https://app.example.com/CB",
        "https://app.example.com/cb/",
        "https://app.example.com/cb#frag",
        "https://app.example.com:8443/cb",
        "https://app.example.com/cb?extra=1",
        "https://evil.example/cb",
        "http://app.example.com/cb",
        "javascript:alert(1)",
        "",
    ] {
        let page = assert_error_page(
            browser
                .authorize(&params("webapp", trick, &pkce, "posts:read"))
                .await,
        )
        .await;
        assert!(page.contains("redirect_uri"), "{trick}: {page}");
    }
    let mut none = params("webapp", REGISTERED, &pkce, "posts:read");
    none.retain(|(k, _)| *k != "redirect_uri");
    assert_error_page(browser.authorize(&none).await).await;
    let mut twice = params("webapp", REGISTERED, &pkce, "posts:read");
    twice.push(("redirect_uri", REGISTERED));
    assert_error_page(browser.authorize(&twice).await).await;
}

#[tokio::test]
async fn a_loopback_ip_redirect_uri_matches_on_any_port() {
    let app = app_with_client().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    for ok in ["http://127.0.0.1:51123/native", "http://127.0.0.1/native"] {
        let resp = browser
            .authorize(&params("webapp", ok, &pkce, "posts:read"))
            .await;
        assert!(location(&resp).starts_with("/login?request="), "{ok}");
    }
    for bad in [
        "http://127.0.0.1:51123/native/",
        "http://localhost:51123/native",
    ] {
        assert_error_page(
            browser
                .authorize(&params("webapp", bad, &pkce, "posts:read"))
                .await,
        )
        .await;
    }
    // posts-web's Swagger receiver on another port: posts-server started elsewhere.
    let moved = "http://127.0.0.1:39001/docs/oauth-receiver.html";
    let resp = browser
        .authorize(&params("posts-web", moved, &pkce, "posts:read"))
        .await;
    assert!(location(&resp).starts_with("/login?request="));
}

#[tokio::test]
async fn every_later_error_redirects_with_error_state_and_iss() {
    let app = app_with_client().await;
    app.register_client(auth_server::clients::NewClient {
        client_id: "no-code".into(),
        grant_types: vec!["password".into()],
        scopes: "posts:read".into(),
        redirect_uris: vec!["https://other.example/cb".into()],
        ..Default::default()
    })
    .await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let base = params("webapp", REGISTERED, &pkce, "posts:read");
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut p: Vec<(&str, &str)> = base
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        p.extend(changes.iter().filter(|(_, v)| !v.is_empty()).cloned());
        p
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            with(&[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            with(&[("response_type", "code id_token")]),
            "unsupported_response_type",
        ),
        (with(&[("response_type", "")]), "invalid_request"),
        (with(&[("code_challenge", "")]), "invalid_request"),
        (with(&[("code_challenge", "too-short")]), "invalid_request"),
        (
            with(&[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (with(&[("code_challenge_method", "")]), "invalid_request"),
        (with(&[("scope", "posts:read admin")]), "invalid_scope"),
        (with(&[("scope", "posts:write")]), "invalid_scope"),
        (with(&[("prompt", "sometimes")]), "invalid_request"),
        (with(&[("prompt", "none login")]), "invalid_request"),
        (with(&[("max_age", "-1")]), "invalid_request"),
        (with(&[("max_age", "soon")]), "invalid_request"),
        (with(&[("response_mode", "fragment")]), "invalid_request"),
        (
            with(&[("request", "eyJhbGciOiJub25lIn0.e30.")]),
            "request_not_supported",
        ),
        (
            with(&[("request_uri", "https://x.example/r")]),
            "request_uri_not_supported",
        ),
        (with(&[("prompt", "none")]), "login_required"),
    ];
    for (request, error) in cases {
        let resp = browser.authorize(&request).await;
        assert_error_redirect(&resp, REGISTERED, error);
    }
    let mut repeated = base.clone();
    repeated.push(("scope", "openid"));
    assert_error_redirect(
        &browser.authorize(&repeated).await,
        REGISTERED,
        "invalid_request",
    );

    let no_code = params("no-code", "https://other.example/cb", &pkce, "posts:read");
    let resp = browser.authorize(&no_code).await;
    assert_error_redirect(&resp, "https://other.example/cb", "unauthorized_client");
}

#[tokio::test]
async fn an_oversized_state_is_refused_without_echoing_it() {
    let app = app_with_client().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let huge = "s".repeat(5000);
    let mut p = params("webapp", REGISTERED, &pkce, "posts:read");
    p.retain(|(k, _)| *k != "state");
    p.push(("state", &huge));
    let resp = browser.authorize(&p).await;
    let q = query(&location(&resp));
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("state"));
    let nonce = "n".repeat(5000);
    let mut p = params("webapp", REGISTERED, &pkce, "openid");
    p.push(("nonce", &nonce));
    assert_error_redirect(&browser.authorize(&p).await, REGISTERED, "invalid_request");
}

#[tokio::test]
async fn the_redirect_keeps_the_registered_query_and_unknown_parameters_are_ignored() {
    let app = spawn_app().await;
    let with_query = "https://app.example.com/cb?tenant=a%20b";
    app.register_client(auth_server::clients::NewClient {
        client_id: "q".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: "posts:read".into(),
        redirect_uris: vec![with_query.into()],
        ..Default::default()
    })
    .await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let mut p = params("q", with_query, &pkce, "posts:read");
    p.push(("response_type", "token"));
    let resp = browser.authorize(&p).await;
    let to = location(&resp);
    let q = query(&to);
    assert_eq!(q["tenant"], "a b", "{to}");
    assert_eq!(q["error"], "invalid_request", "a repeated parameter");

    let mut p = params("q", with_query, &pkce, "posts:read");
    p.extend([("ui_locales", "de"), ("display", "page"), ("resource", "x")]);
    let resp = browser.authorize(&p).await;
    assert!(location(&resp).starts_with("/login?request="));
}

#[tokio::test]
async fn the_authorization_endpoint_takes_post_too() {
    let app = app_with_client().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let p = params("webapp", REGISTERED, &pkce, "posts:read");
    let resp = browser.post("/oauth/authorize", &p).await;
    assert!(location(&resp).starts_with("/login?request="));
    let bad = params("webapp", "https://evil.example/cb", &pkce, "posts:read");
    assert_error_page(browser.post("/oauth/authorize", &bad).await).await;
}
