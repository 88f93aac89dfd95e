//! The pages of the browser sign-in: single sign-on, forced re-authentication, consent,
//! sign-up, CSRF, throttling and the browser session, over HTTP.

use reqwest::StatusCode;

use crate::{
    browser::{Browser, Pkce, exchange, hidden, location, params, query, sign_in_as_posts_web},
    helpers::{PASSWORD, POSTS_WEB_REDIRECT_URI, TestApp, spawn_app, spawn_app_with, start},
};

const APP: &str = "https://app.example.com/cb";

/// A client that is not trusted, so it asks for consent.
async fn untrusted_client(app: &TestApp) {
    app.register_client(auth_server::clients::NewClient {
        client_id: "third".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: "posts:read posts:write openid profile email".into(),
        redirect_uris: vec![APP.into()],
        name: Some("Third <Party> & Co".into()),
        ..Default::default()
    })
    .await;
}

/// Authorize as `third` with `scope`, returning the first response.
async fn authorize_third(browser: &Browser, pkce: &Pkce, scope: &str) -> reqwest::Response {
    browser.authorize(&params("third", APP, pkce, scope)).await
}

#[tokio::test]
async fn a_second_authorization_in_the_same_browser_needs_no_password() {
    let app = spawn_app().await;
    app.signed_up_user("sso@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    sign_in_as_posts_web(&browser, &pkce, "sso@example.com", "posts:read").await;

    let resp = browser
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;

    let back = location(&resp);
    assert!(
        back.starts_with(POSTS_WEB_REDIRECT_URI),
        "single sign-on: {back}"
    );
    let code = &query(&back)["code"];
    let resp = exchange(
        &app,
        "posts-web",
        code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Another browser has no session.
    let other = Browser::new(&app);
    let resp = other
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;
    assert!(location(&resp).starts_with("/login"));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_the_password_again_and_then_finish() {
    let app = spawn_app().await;
    app.signed_up_user("again@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    sign_in_as_posts_web(&browser, &pkce, "again@example.com", "posts:read").await;
    let first_cookie = browser.cookie("auth_session").unwrap();

    for extra in [("prompt", "login"), ("max_age", "0")] {
        let mut p = params("posts-web", POSTS_WEB_REDIRECT_URI, &pkce, "posts:read");
        p.push(extra);
        let resp = browser.authorize(&p).await;
        assert!(location(&resp).starts_with("/login?request="), "{extra:?}");
        let (_, page) = browser.follow(resp).await;
        let resp = browser
            .submit_login(&page, "again@example.com", PASSWORD)
            .await;
        let back = location(&resp);
        assert!(
            back.starts_with(POSTS_WEB_REDIRECT_URI),
            "{extra:?}: no loop: {back}"
        );
    }
    assert_ne!(
        browser.cookie("auth_session").unwrap(),
        first_cookie,
        "a new session id at every sign-in"
    );
    // A generous max_age is met by the existing session.
    let mut p = params("posts-web", POSTS_WEB_REDIRECT_URI, &pkce, "posts:read");
    p.push(("max_age", "3600"));
    assert!(location(&browser.authorize(&p).await).starts_with(POSTS_WEB_REDIRECT_URI));
}

#[tokio::test]
async fn consent_is_remembered_for_its_scopes_and_asked_again_for_more() {
    let app = spawn_app().await;
    untrusted_client(&app).await;
    app.signed_up_user("consent@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();

    let resp = authorize_third(&browser, &pkce, "openid posts:read").await;
    let resp = browser.sign_in(resp, "consent@example.com").await;
    let (status, page) = browser.follow(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Third &#60;Party&#62; &#38; Co"), "{page}");
    assert!(!page.contains("Third <Party>"));
    let resp = browser.submit_consent(&page, "allow").await;
    assert!(location(&resp).starts_with(APP));

    // The same or fewer scopes: not asked again.
    for scope in ["openid posts:read", "posts:read"] {
        let resp = authorize_third(&browser, &pkce, scope).await;
        assert!(location(&resp).starts_with(APP), "{scope}");
    }
    // A new scope, or prompt=consent: asked again.
    let resp = authorize_third(&browser, &pkce, "openid posts:read email").await;
    assert!(location(&resp).starts_with("/consent?request="));
    let mut p = params("third", APP, &pkce, "posts:read");
    p.push(("prompt", "consent"));
    let resp = browser.authorize(&p).await;
    assert!(location(&resp).starts_with("/consent?request="));
    // prompt=none cannot ask.
    let mut p = params("third", APP, &pkce, "posts:write");
    p.push(("prompt", "none"));
    let resp = browser.authorize(&p).await;
    assert_eq!(query(&location(&resp))["error"], "consent_required");
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_is_not_remembered() {
    let app = spawn_app().await;
    untrusted_client(&app).await;
    app.signed_up_user("deny@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let resp = authorize_third(&browser, &pkce, "posts:read").await;
    let resp = browser.sign_in(resp, "deny@example.com").await;
    let (_, page) = browser.follow(resp).await;

    let resp = browser.submit_consent(&page, "deny").await;

    let q = query(&location(&resp));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], "http://127.0.0.1:8000");
    let resp = authorize_third(&browser, &pkce, "posts:read").await;
    assert!(
        location(&resp).starts_with("/consent?request="),
        "asked again"
    );
}

#[tokio::test]
async fn forms_without_this_browsers_csrf_token_are_403_and_change_nothing() {
    let app = spawn_app().await;
    untrusted_client(&app).await;
    app.signed_up_user("csrf@example.com").await;
    let victim = Browser::new(&app);
    let pkce = Pkce::new();
    let resp = authorize_third(&victim, &pkce, "posts:read").await;
    let (_, login_page) = victim.follow(resp).await;
    let request = hidden(&login_page, "request").unwrap();

    // No token; a made-up one; another browser's token (for its own cookie).
    let attacker = Browser::new(&app);
    let resp = authorize_third(&attacker, &pkce, "posts:read").await;
    let (_, attacker_page) = attacker.follow(resp).await;
    let attacker_csrf = hidden(&attacker_page, "csrf").unwrap();
    for csrf in ["", "forged", attacker_csrf.as_str()] {
        let form = [
            ("request", request.as_str()),
            ("csrf", csrf),
            ("username", "csrf@example.com"),
            ("password", PASSWORD),
        ];
        let resp = victim.post("/login", &form).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{csrf}");
        assert!(victim.cookie("auth_session").is_none(), "not signed in");
    }
    // The right token works.
    let resp = victim
        .submit_login(&login_page, "csrf@example.com", PASSWORD)
        .await;
    let (_, consent_page) = victim.follow(resp).await;
    let resp = victim
        .post(
            "/consent",
            &[("request", request.as_str()), ("decision", "allow")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The pending request is still there: the real form goes through.
    let resp = victim.submit_consent(&consent_page, "allow").await;
    assert!(location(&resp).starts_with(APP));
}

#[tokio::test]
async fn a_form_posted_twice_issues_one_code() {
    let app = spawn_app().await;
    app.signed_up_user("twice@example.com").await;
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
    let (_, page) = browser.follow(resp).await;

    let first = browser
        .submit_login(&page, "twice@example.com", PASSWORD)
        .await;
    let second = browser
        .submit_login(&page, "twice@example.com", PASSWORD)
        .await;

    assert!(location(&first).starts_with(POSTS_WEB_REDIRECT_URI));
    assert_eq!(second.status(), StatusCode::BAD_REQUEST);
    assert!(second.headers().get("location").is_none());
}

#[tokio::test]
async fn a_page_of_another_browsers_request_is_refused() {
    let app = spawn_app().await;
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
    let login = location(&resp);

    let other = Browser::new(&app);
    let resp = other.get(&login).await;

    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let unknown = other
        .get("/login?request=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let garbage = other.get("/consent?request=%00%FF<script>").await;
    assert!(garbage.status().is_client_error());
}

#[tokio::test]
async fn a_failed_sign_in_says_one_thing_and_is_throttled_like_the_password_grant() {
    let app = spawn_app().await;
    app.signed_up_user("throttle@example.com").await;
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
    let (_, page) = browser.follow(resp).await;

    let wrong = browser
        .submit_login(&page, "throttle@example.com", "wrong password")
        .await;
    let unknown = browser
        .submit_login(&page, "nobody@example.com", "wrong password")
        .await;
    assert!(matches!(
        wrong.status(),
        StatusCode::OK | StatusCode::UNAUTHORIZED
    ));
    assert_eq!(wrong.status(), unknown.status());
    let message = |html: &str| {
        let start = html.find("role=\"alert\">").unwrap();
        html[start..start + 80].to_owned()
    };
    assert_eq!(
        message(&wrong.text().await.unwrap()),
        message(&unknown.text().await.unwrap())
    );
    // Five failures lock the account, at the page and at the password grant alike.
    for _ in 0..4 {
        browser
            .submit_login(&page, "throttle@example.com", "wrong password")
            .await;
    }
    let grant = app.login("throttle@example.com", "wrong password").await;
    assert_eq!(grant.status(), StatusCode::TOO_MANY_REQUESTS);
    let locked = browser
        .submit_login(&page, "throttle@example.com", PASSWORD)
        .await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().get("retry-after").is_some());
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );
}

#[tokio::test]
async fn sign_up_on_the_page_follows_the_rules_of_post_users_and_continues() {
    let app = spawn_app().await;
    app.signed_up_user("taken@example.com").await;
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
    let login = location(&resp);
    let signup = login.replacen("/login", "/signup", 1);
    let page = browser.get(&signup).await.text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let request = hidden(&page, "request").unwrap();
    let submit = |email: &'static str, password: &'static str, name: &'static str| {
        let (csrf, request) = (csrf.clone(), request.clone());
        let browser = &browser;
        async move {
            browser
                .post(
                    "/signup",
                    &[
                        ("csrf", csrf.as_str()),
                        ("request", request.as_str()),
                        ("email", email),
                        ("password", password),
                        ("full_name", name),
                    ],
                )
                .await
        }
    };

    let short = submit("new@example.com", "short", "New User").await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = short.text().await.unwrap();
    assert!(
        html.contains("password-error") && html.contains("at least 8"),
        "{html}"
    );
    assert!(html.contains(r#"aria-describedby="password-hint password-error""#));
    let bad_email = submit("not-an-email", PASSWORD, "New User").await;
    assert_eq!(bad_email.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let blank = submit("new@example.com", PASSWORD, "   ").await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let taken = submit("TAKEN@example.com", PASSWORD, "Dup").await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);

    let ok = submit("new@example.com", PASSWORD, "New User").await;
    let back = location(&ok);
    assert!(
        back.starts_with(POSTS_WEB_REDIRECT_URI),
        "continues: {back}"
    );
    assert!(browser.cookie("auth_session").is_some(), "signed in");
    let code = &query(&back)["code"];
    let tokens = exchange(
        &app,
        "posts-web",
        code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(tokens.status(), StatusCode::OK);
    // The same account works with the API's password grant.
    assert_eq!(
        app.login("new@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn whatever_a_request_supplies_is_escaped_on_the_pages() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let mut p = params("posts-web", POSTS_WEB_REDIRECT_URI, &pkce, "posts:read");
    p.push(("login_hint", r#""><script>alert(1)</script>"#));
    let resp = browser.authorize(&p).await;
    let (status, page) = browser.follow(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("alert(1)"), "the hint is shown, escaped");
}

#[tokio::test]
async fn a_session_of_a_deleted_user_is_no_session() {
    let app = spawn_app().await;
    let user = app.signed_up_user("gone@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    sign_in_as_posts_web(&browser, &pkce, "gone@example.com", "posts:read").await;
    let db = auth_server::db::connect(&app.database_url).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!(
            "DELETE FROM users WHERE id = '{}'",
            user["id"].as_str().unwrap()
        ),
    )
    .await
    .unwrap();

    let resp = browser
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;

    assert!(location(&resp).starts_with("/login?request="));
    let (status, _) = browser.follow(resp).await;
    assert_eq!(status, StatusCode::OK);
    let logout = browser.get("/oauth/logout").await;
    assert_eq!(logout.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_forged_session_cookie_is_no_session() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    for forged in [
        "x",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "%00'; DROP TABLE users",
    ] {
        browser.set_cookie("auth_session", forged);
        let resp = browser
            .authorize(&params(
                "posts-web",
                POSTS_WEB_REDIRECT_URI,
                &pkce,
                "posts:read",
            ))
            .await;
        assert!(location(&resp).starts_with("/login?request="), "{forged}");
    }
}

#[tokio::test]
async fn a_sign_in_started_on_one_replica_finishes_on_another() {
    let first = spawn_app().await;
    let second = start(first.settings.clone()).await;
    first.signed_up_user("replica@example.com").await;
    let browser = Browser::new(&first);
    let pkce = Pkce::new();
    let resp = browser
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;
    let (_, page) = browser.follow(resp).await;

    // The form is posted to the other replica, with the same cookies.
    let on_second = browser.moved_to(&second.address);
    let resp = on_second
        .submit_login(&page, "replica@example.com", PASSWORD)
        .await;
    let code = query(&location(&resp))["code"].clone();
    // The code is exchanged at the first, and single sign-on works on both.
    let tokens = exchange(
        &first,
        "posts-web",
        &code,
        POSTS_WEB_REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let sso = on_second
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;
    assert!(location(&sso).starts_with(POSTS_WEB_REDIRECT_URI));
}

#[tokio::test]
async fn an_https_issuer_gives_host_only_secure_cookies() {
    let app = spawn_app_with(|s| s.issuer = "https://auth.example.com".parse().unwrap()).await;
    app.signed_up_user("tls@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let set_cookies = |resp: &reqwest::Response| -> Vec<String> {
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let resp = browser
        .authorize(&params(
            "posts-web",
            POSTS_WEB_REDIRECT_URI,
            &pkce,
            "posts:read",
        ))
        .await;
    let browser_cookie = set_cookies(&resp).join("\n");
    assert!(
        browser_cookie.starts_with("__Host-auth_browser="),
        "{browser_cookie}"
    );
    let (_, page) = browser.follow(resp).await;
    let resp = browser
        .submit_login(&page, "tls@example.com", PASSWORD)
        .await;
    let session = set_cookies(&resp).join("\n");
    assert!(session.starts_with("__Host-auth_session="), "{session}");
    for cookie in [&browser_cookie, &session] {
        for attribute in ["; Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Domain="), "{cookie}");
    }
    // A cookie without the prefix (planted by a sibling host, say) is not ours.
    let planted = Browser::new(&app);
    planted.set_cookie("auth_browser", &"A".repeat(43));
    let page = planted.get("/login").await;
    assert!(
        set_cookies(&page)
            .iter()
            .any(|c| c.starts_with("__Host-auth_browser=")),
        "a fresh browser cookie replaces the planted one"
    );
}

#[tokio::test]
async fn the_pages_stand_alone_too() {
    let app = spawn_app().await;
    app.signed_up_user("alone@example.com").await;
    let browser = Browser::new(&app);
    let page = browser.get("/login").await.text().await.unwrap();
    assert!(hidden(&page, "request").is_none());
    let resp = browser
        .submit_login(&page, "alone@example.com", PASSWORD)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("alone@example.com"));
    assert!(browser.cookie("auth_session").is_some());
    let css = browser.get("/assets/auth.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let signup = browser.get("/signup").await;
    assert_eq!(signup.status(), StatusCode::OK);
    let consent = browser.get("/consent").await;
    assert_eq!(consent.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_expired_request_or_a_non_form_body_is_a_clear_4xx() {
    let app = spawn_app().await;
    app.signed_up_user("late@example.com").await;
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
    let (_, page) = browser.follow(resp).await;
    let db = auth_server::db::connect(&app.database_url).await.unwrap();
    let request = hidden(&page, "request").unwrap();
    let expire = sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE authorization_requests SET expires_at = $1 WHERE id = $2"
            }
            _ => "UPDATE authorization_requests SET expires_at = ? WHERE id = ?",
        },
        [
            (chrono::Utc::now() - chrono::Duration::minutes(1)).into(),
            request.clone().into(),
        ],
    );
    sea_orm::ConnectionTrait::execute_raw(&db, expire)
        .await
        .unwrap();

    let resp = browser
        .submit_login(&page, "late@example.com", PASSWORD)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "the CSRF token expired with it"
    );
    assert!(resp.headers().get("location").is_none());
    assert!(browser.cookie("auth_session").is_none(), "not signed in");

    let json = reqwest::Client::new()
        .post(format!("{}/login", app.address))
        .json(&serde_json::json!({"username": "late@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let json = reqwest::Client::new()
        .post(format!("{}/oauth/authorize", app.address))
        .body("client_id=posts-web")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_consent_page_cannot_stand_in_for_a_fresh_sign_in() {
    let app = spawn_app().await;
    untrusted_client(&app).await;
    app.signed_up_user("stepup@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    // A session and a remembered consent.
    let resp = authorize_third(&browser, &pkce, "posts:read").await;
    let resp = browser.sign_in(resp, "stepup@example.com").await;
    let (_, consent) = browser.follow(resp).await;
    browser.submit_consent(&consent, "allow").await;

    // prompt=login sends the browser to /login; going to /consent instead does not help.
    let mut p = params("third", APP, &pkce, "posts:read");
    p.push(("prompt", "login"));
    let login = location(&browser.authorize(&p).await);
    let request = query(&format!("http://x{login}"))["request"].clone();
    let resp = browser.get(&format!("/consent?request={request}")).await;
    assert!(
        location(&resp).starts_with("/login?request="),
        "GET /consent"
    );
    let csrf = hidden(&consent, "csrf").unwrap();
    let resp = browser
        .post(
            "/consent",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("decision", "allow"),
            ],
        )
        .await;
    assert!(
        resp.status() == StatusCode::FORBIDDEN || location(&resp).starts_with("/login?request="),
        "POST /consent issued a code without the fresh sign-in: {}",
        resp.status()
    );
}

#[tokio::test]
async fn a_consent_page_shown_to_one_user_cannot_consent_for_another() {
    let app = spawn_app().await;
    untrusted_client(&app).await;
    app.signed_up_user("first@example.com").await;
    app.signed_up_user("second@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let resp = authorize_third(&browser, &pkce, "posts:read").await;
    let resp = browser.sign_in(resp, "first@example.com").await;
    let (_, consent_for_first) = browser.follow(resp).await;
    // In another tab, someone else signs in in this browser.
    let page = browser.get("/login").await.text().await.unwrap();
    browser
        .submit_login(&page, "second@example.com", PASSWORD)
        .await;

    let resp = browser.submit_consent(&consent_for_first, "allow").await;

    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_login_form_posted_twice_at_once_leaves_the_browser_with_the_codes_session() {
    let app = spawn_app().await;
    app.signed_up_user("double@example.com").await;
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
    let (_, page) = browser.follow(resp).await;

    let (a, b) = tokio::join!(
        browser.submit_login(&page, "double@example.com", PASSWORD),
        browser.submit_login(&page, "double@example.com", PASSWORD),
    );

    let (winner, loser) = if a.status() == StatusCode::SEE_OTHER {
        (a, b)
    } else {
        (b, a)
    };
    assert!(location(&winner).starts_with(POSTS_WEB_REDIRECT_URI));
    assert_eq!(loser.status(), StatusCode::BAD_REQUEST);
    assert!(
        loser.headers().get("set-cookie").is_none(),
        "the losing post sets no session of its own"
    );
    // Nor does it store one: its session was rolled back with its code.
    use sea_orm::EntityTrait;
    let db = auth_server::db::connect(&app.database_url).await.unwrap();
    let sessions = auth_server::entities::browser_sessions::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].ended_at.is_none());
}

/// The browser side's pages.
const PAGES: [&str; 5] = [
    "/oauth/authorize",
    "/login",
    "/signup",
    "/consent",
    "/oauth/logout",
];

/// The text of `resp`, once checked to be a page with the pages' headers.
async fn page_of(resp: reqwest::Response, what: &str) -> String {
    let headers = resp.headers();
    assert_eq!(
        headers["content-type"], "text/html; charset=utf-8",
        "{what}"
    );
    assert_eq!(headers["cache-control"], "no-store", "{what}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn a_page_refused_by_the_request_limits_is_a_page() {
    let app = spawn_app().await;
    let oversized = format!("username=a%40example.com&password={}", "x".repeat(70_000));
    for path in PAGES {
        let resp = app
            .http
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(oversized.clone())
            .send()
            .await
            .unwrap();

        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let page = page_of(resp, path).await;
        assert!(
            page.contains("The request body exceeds 65536 bytes."),
            "{path}"
        );
    }

    // Headers over their limit, on a page: a page too.
    let resp = app
        .http
        .get(format!("{}/login", app.address))
        .header("x-padding", "p".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(
        page_of(resp, "/login")
            .await
            .contains("request headers exceed")
    );

    // The API keeps its problem+json.
    let resp = app
        .http
        .post(format!("{}/users", app.address))
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_method_no_page_takes_is_refused_with_a_page_that_says_which_it_takes() {
    let app = spawn_app().await;
    for path in PAGES {
        for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
            let url = format!("{}{path}", app.address);
            let resp = app.http.request(method.clone(), url).send().await.unwrap();

            let what = format!("{method} {path}");
            assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{what}");
            assert_eq!(resp.headers()["allow"], "GET, HEAD, POST", "{what}");
            let page = page_of(resp, &what).await;
            assert!(
                page.contains("This page takes GET and POST only."),
                "{what}"
            );
        }
    }
}
