//! The database crashes under a running server and comes back: every request that needs
//! it is answered 503 with `Retry-After` in its endpoint's format (never 500, never a
//! redirect), what was acknowledged before is still there, and the server, its refresh
//! rotation task and its key reload task work again by themselves, without a restart.
//!
//! Needs PostgreSQL's server binaries, and runs in CI's PostgreSQL pass: it starts a
//! private cluster (never the shared server of `TEST_POSTGRES_URL`, which other tests use
//! meanwhile) and stops it with `pg_ctl stop -m immediate`.

use std::time::{Duration, Instant};

use db_outage::cluster::Cluster;
use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    browser::{Browser, Pkce, exchange, location, params, query},
    helpers::{PASSWORD, POSTS_WEB_REDIRECT_URI, TestApp, database_store, spawn_app_on},
};

/// How long the server may take to serve again once the database is back.
const RECOVERY: Duration = Duration::from_secs(15);

/// The `Retry-After` of an outage answer, checked to be there and short.
fn retry_after(resp: &Response) -> u64 {
    let seconds: u64 = resp
        .headers()
        .get(header::RETRY_AFTER)
        .expect("Retry-After on a 503")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&seconds), "Retry-After: {seconds}");
    seconds
}

/// RFC 6749 JSON: `temporarily_unavailable`, not stored.
async fn assert_oauth_unavailable(resp: Response) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    retry_after(&resp);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

/// RFC 9457 problem+json.
async fn assert_problem_unavailable(resp: Response) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    retry_after(&resp);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], 503, "{body}");
}

/// An HTML page, not a redirect.
async fn assert_page_unavailable(resp: Response) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    retry_after(&resp);
    assert!(resp.headers().get(header::LOCATION).is_none());
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Temporarily unavailable"), "{page}");
}

async fn userinfo(app: &TestApp, token: &str) -> Response {
    app.http
        .get(format!("{}/oauth/userinfo", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn tokens(resp: Response) -> Value {
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_is_503_everywhere_and_the_server_recovers_by_itself() {
    // Arrange: the server on a cluster of its own, keys in the database (so that the key
    // reload task reads it), and what was acknowledged before the crash: a user, a login
    // with one refresh rotation, and a browser sign-in waiting on the login page.
    let Some(cluster) = Cluster::for_test("the auth-server outage test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(dir, cluster.url(), database_store).await;
    let email = "outage@example.com";
    let user = app.signed_up_user(email).await;
    let login = tokens(
        app.post_token(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", PASSWORD),
            ("scope", "posts:read openid"),
        ])
        .await,
    )
    .await;
    let first_refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let rotated = tokens(app.refresh(&first_refresh).await).await;
    let refresh_token = rotated["refresh_token"].as_str().unwrap().to_owned();
    let access_token = rotated["access_token"].as_str().unwrap().to_owned();
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let authorization = params("posts-web", POSTS_WEB_REDIRECT_URI, &pkce, "openid");
    let (status, login_page) = browser
        .follow(browser.authorize(&authorization).await)
        .await;
    assert_eq!(status, StatusCode::OK, "{login_page}");

    // Act: the database crashes.
    cluster.stop_immediately().expect("pg_ctl stop");
    let crashed = Instant::now();
    let new_user = json!({"email": "during@example.com", "password": PASSWORD, "full_name": "D"});
    let (password, refresh, me, info, authorize, sign_in, sign_up, ready, jwks) = tokio::join!(
        app.login(email, PASSWORD),
        app.refresh(&refresh_token),
        app.get_me(&access_token),
        userinfo(&app, &access_token),
        browser.authorize(&authorization),
        browser.submit_login(&login_page, email, PASSWORD),
        app.post_users(&new_user),
        app.get("/readyz"),
        app.get("/.well-known/jwks.json"),
    );
    let until_503 = crashed.elapsed();

    // Assert: 503 in each endpoint's format; the key set, held in memory, still served.
    assert_oauth_unavailable(password).await;
    assert_oauth_unavailable(refresh).await;
    assert_problem_unavailable(me).await;
    assert_problem_unavailable(sign_up).await;
    assert_oauth_unavailable(info).await;
    assert_page_unavailable(authorize).await;
    assert_page_unavailable(sign_in).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(jwks.status(), StatusCode::OK);

    // Act: the database comes back.
    cluster.start().expect("pg_ctl start");
    let restarted = Instant::now();
    let until_recovered = loop {
        if app.get("/readyz").await.status() == StatusCode::OK
            && app.get_me(&access_token).await.status() == StatusCode::OK
        {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < RECOVERY,
            "no recovery within {RECOVERY:?}; server log:\n{}",
            cluster.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "outage: every answer 503 after {until_503:?}; serving again {until_recovered:?} after the restart"
    );

    // Assert: everything acknowledged is there, and every path works again.
    let me: Value = app.get_me(&access_token).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    // The refresh refused during the outage did not use the token; the rotation task
    // commits again.
    let again = tokens(app.refresh(&refresh_token).await).await;
    assert!(again["refresh_token"].is_string());
    assert_eq!(userinfo(&app, &access_token).await.status(), StatusCode::OK);
    tokens(app.login(email, PASSWORD).await).await;
    assert_eq!(
        app.post_users(&new_user).await.status(),
        StatusCode::CREATED,
        "the sign-up refused during the outage was not stored"
    );
    // The sign-in that was waiting on its login page goes on, with its CSRF token.
    let back = location(&browser.submit_login(&login_page, email, PASSWORD).await);
    assert!(back.starts_with(POSTS_WEB_REDIRECT_URI), "{back}");
    let code = query(&back)["code"].clone();
    let resp = exchange(
        &app,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    tokens(resp).await;
    // The key reload task survived: a rotation by the CLI reaches the key set.
    let (code, rotation) = app.admin(&["keys", "rotate"]);
    assert_eq!(code, 0, "{rotation}");
    let next_kid = rotation["next_kid"].as_str().unwrap().to_owned();
    let published = Instant::now();
    while !app.get_jwks().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == next_kid.as_str())
    {
        assert!(
            published.elapsed() < Duration::from_secs(10),
            "the new key never reached the key set"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rotation acknowledged before the crash still stands: its token is used.
    let reuse = app.refresh(&first_refresh).await;
    assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);
}
