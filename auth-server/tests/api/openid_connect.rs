//! OpenID Connect: ID tokens, UserInfo, discovery, prompt=none, and RP-initiated logout.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    browser::{Browser, Pkce, exchange, hidden, location, params, query},
    helpers::{PASSWORD, TestApp, assert_oauth_error, spawn_app},
};

const RP: &str = "https://rp.example.com/cb";
const RP_LOGOUT: &str = "https://rp.example.com/bye";

/// A trusted OpenID Connect relying party.
async fn relying_party(app: &TestApp) {
    app.register_client(auth_server::clients::NewClient {
        client_id: "rp".into(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: "openid profile email posts:read".into(),
        redirect_uris: vec![RP.into()],
        post_logout_redirect_uris: vec![RP_LOGOUT.into()],
        trusted: true,
        ..Default::default()
    })
    .await;
}

/// Signs in at `rp` with a nonce and returns the token response.
async fn sign_in(app: &TestApp, browser: &Browser, email: &str, scope: &str) -> Value {
    let pkce = Pkce::new();
    let mut p = params("rp", RP, &pkce, scope);
    p.push(("nonce", "n-0S6_WzA2Mj"));
    let resp = browser.authorize(&p).await;
    let resp = if location(&resp).starts_with("/login") {
        let (_, page) = browser.follow(resp).await;
        browser.submit_login(&page, email, PASSWORD).await
    } else {
        resp
    };
    let code = query(&location(&resp))["code"].clone();
    let resp = exchange(app, "rp", &code, RP, &pkce.verifier).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// Verifies a JWT against the server's JWKS (any audience) and returns header and claims.
async fn verify(app: &TestApp, token: &str) -> (jsonwebtoken::Header, Value) {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks = app.get_jwks().await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header.kid.clone().unwrap())
        .expect("signed with a published key");
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.set_issuer(&["http://127.0.0.1:8000"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .unwrap()
        .claims;
    (header, claims)
}

fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

#[tokio::test]
async fn the_code_grant_returns_a_separate_id_token_with_every_claim() {
    let app = spawn_app().await;
    relying_party(&app).await;
    let user = app.signed_up_user("oidc@example.com").await;
    let browser = Browser::new(&app);

    let tokens = sign_in(&app, &browser, "oidc@example.com", "openid profile").await;

    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let (header, claims) = verify(&app, id_token).await;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(claims["iss"], "http://127.0.0.1:8000");
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["azp"], "rp");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims["at_hash"], at_hash(access));
    let (iat, exp, auth_time) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
        claims["auth_time"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "AUTH_ID_TOKEN_TTL");
    assert!((iat - auth_time).abs() < 30);
    assert!(claims["sid"].is_string());
    // The access token keeps its RFC 9068 form and audience.
    let (access_header, access_claims) = verify(&app, access).await;
    assert_eq!(access_header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(access_claims["aud"], "posts-api");
    assert_eq!(access_claims["sub"], user["id"]);
}

#[tokio::test]
async fn refreshing_an_openid_login_returns_an_id_token_without_nonce() {
    let app = spawn_app().await;
    relying_party(&app).await;
    let browser = Browser::new(&app);
    app.signed_up_user("refresh@example.com").await;
    let tokens = sign_in(&app, &browser, "refresh@example.com", "openid posts:read").await;
    let (_, first) = verify(&app, tokens["id_token"].as_str().unwrap()).await;

    let resp = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "rp"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;

    let refreshed: Value = resp.json().await.unwrap();
    let (_, again) = verify(&app, refreshed["id_token"].as_str().unwrap()).await;
    for claim in ["sub", "aud", "auth_time", "sid"] {
        assert_eq!(again[claim], first[claim], "{claim}");
    }
    assert!(again.get("nonce").is_none());
    assert_eq!(
        again["at_hash"],
        at_hash(refreshed["access_token"].as_str().unwrap())
    );
    // Narrowed to no openid: no ID token.
    let narrowed: Value = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "rp"),
            (
                "refresh_token",
                refreshed["refresh_token"].as_str().unwrap(),
            ),
            ("scope", "posts:read"),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert!(narrowed.get("id_token").is_none());
}

#[tokio::test]
async fn the_password_grant_returns_an_id_token_only_when_openid_is_asked_for() {
    let app = spawn_app().await;
    app.signed_up_user("pw@example.com").await;
    let plain = app.password_tokens("pw@example.com").await;
    assert!(plain.get("id_token").is_none());
    assert_eq!(
        plain["scope"], "posts:read posts:write",
        "OIDC scopes only when asked"
    );

    let resp = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", "pw@example.com"),
            ("password", PASSWORD),
            ("scope", "openid email"),
        ])
        .await;

    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["scope"], "email openid");
    let (_, claims) = verify(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "posts-web");
    assert!(claims.get("sid").is_none() && claims.get("nonce").is_none());
    assert!((claims["auth_time"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()).abs() <= 1);
}

#[tokio::test]
async fn client_credentials_cannot_have_openid_scopes() {
    let app = spawn_app().await;
    let secret = app
        .create_client("svc", true, &["client_credentials"], "posts:read openid")
        .await
        .unwrap();
    let resp = app
        .post_token_basic(
            "svc",
            &secret,
            &[("grant_type", "client_credentials"), ("scope", "openid")],
        )
        .await;
    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_scope").await;
    let resp = app
        .post_token_basic("svc", &secret, &[("grant_type", "client_credentials")])
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "posts:read");
}

#[tokio::test]
async fn an_id_token_is_never_accepted_as_an_access_token() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("mixup@example.com").await;
    let secret = app
        .create_client("introspector", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, "mixup@example.com", "openid profile").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    assert_eq!(
        app.get_me(id_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let info = app
        .http
        .get(format!("{}/oauth/userinfo", app.address))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.introspect("introspector", &secret, id_token).await["active"],
        false
    );
    // And an access token is no ID token: a logout hint must be an ID token.
    let resp = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={}",
            tokens["access_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn userinfo_answers_the_claims_of_the_granted_scopes() {
    let app = spawn_app().await;
    relying_party(&app).await;
    let user = app.signed_up_user("info@example.com").await;
    let browser = Browser::new(&app);
    let full = sign_in(&app, &browser, "info@example.com", "openid profile email").await;
    let access = full["access_token"].as_str().unwrap();

    let get = app
        .http
        .get(format!("{}/oauth/userinfo", app.address))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let info: Value = get.json().await.unwrap();
    assert_eq!(info["sub"], user["id"]);
    assert_eq!(info["name"], "Test User");
    assert_eq!(info["email"], "info@example.com");
    assert_eq!(info["email_verified"], false);
    assert!(info["updated_at"].is_i64());

    let post: Value = app
        .http
        .post(format!("{}/oauth/userinfo", app.address))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post, info);

    let narrow = sign_in(&app, &browser, "info@example.com", "openid").await;
    let info: Value = app
        .http
        .get(format!("{}/oauth/userinfo", app.address))
        .bearer_auth(narrow["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["sub"]
    );
}

#[tokio::test]
async fn userinfo_errors_are_rfc_6750_challenges() {
    let app = spawn_app().await;
    app.signed_up_user("err@example.com").await;
    let url = format!("{}/oauth/userinfo", app.address);
    let no_openid = app.password_tokens("err@example.com").await;

    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.headers()["www-authenticate"],
        r#"Bearer realm="auth-server""#
    );

    let bad = app
        .http
        .get(&url)
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    let scope = app
        .http
        .get(&url)
        .bearer_auth(no_openid["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(scope.status(), StatusCode::FORBIDDEN);
    assert!(
        scope.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    let twice = app
        .http
        .post(&url)
        .bearer_auth("a")
        .form(&[("access_token", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);

    // A revoked login is refused, as at /users/me.
    let tokens: Value = app
        .password_tokens_asking("err@example.com", &[("scope", "openid")])
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.http
        .post(format!("{}/oauth/revoke", app.address))
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let revoked = app.http.get(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn prompt_none_never_shows_a_page() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("silent@example.com").await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    let mut silent = params("rp", RP, &pkce, "openid");
    silent.push(("prompt", "none"));

    let resp = browser.authorize(&silent).await;
    assert_eq!(query(&location(&resp))["error"], "login_required");

    sign_in(&app, &browser, "silent@example.com", "openid").await;
    let resp = browser.authorize(&silent).await;
    let q = query(&location(&resp));
    assert!(q.contains_key("code"), "signed in: {q:?}");
    // max_age=0 with prompt=none cannot be met without a page.
    let mut fresh = silent.clone();
    fresh.push(("max_age", "0"));
    let resp = browser.authorize(&fresh).await;
    assert_eq!(query(&location(&resp))["error"], "login_required");
}

#[tokio::test]
async fn an_id_token_hint_at_the_authorization_endpoint_must_be_ours_and_for_this_client() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("hint@example.com").await;
    app.signed_up_user("other@example.com").await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, "hint@example.com", "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let pkce = Pkce::new();
    let silently = async |browser: &Browser, hint: &str| {
        let mut p = params("rp", RP, &pkce, "openid");
        p.extend([("prompt", "none"), ("id_token_hint", hint)]);
        query(&location(&browser.authorize(&p).await))
    };

    // The hinted user's session: silent success.
    assert!(silently(&browser, hint).await.contains_key("code"));
    // Garbage, or an access token: invalid_request, redirected.
    for bad in ["not-a-token", tokens["access_token"].as_str().unwrap()] {
        assert_eq!(silently(&browser, bad).await["error"], "invalid_request");
    }
    // Another user's session does not satisfy the hint.
    let other = Browser::new(&app);
    sign_in(&app, &other, "other@example.com", "openid").await;
    assert_eq!(silently(&other, hint).await["error"], "login_required");
}

#[tokio::test]
async fn discovery_lists_every_field_and_agrees_with_rfc_8414() {
    let app = spawn_app().await;
    let oidc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let oauth: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(oidc, oauth, "one source for both documents");
    let base = "http://127.0.0.1:8000";
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("end_session_endpoint", "/oauth/logout"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
    ] {
        assert_eq!(oidc[field], format!("{base}{path}"), "{field}");
    }
    assert_eq!(oidc["issuer"], base);
    let list = |v: &Value| serde_json::from_value::<Vec<String>>(v.clone()).unwrap();
    assert_eq!(list(&oidc["response_types_supported"]), ["code"]);
    assert_eq!(list(&oidc["response_modes_supported"]), ["query"]);
    assert_eq!(list(&oidc["subject_types_supported"]), ["public"]);
    assert_eq!(
        list(&oidc["id_token_signing_alg_values_supported"]),
        ["RS256"]
    );
    assert_eq!(list(&oidc["code_challenge_methods_supported"]), ["S256"]);
    assert_eq!(
        list(&oidc["prompt_values_supported"]),
        ["none", "login", "consent"]
    );
    for scope in ["openid", "profile", "email", "posts:read", "posts:write"] {
        assert!(list(&oidc["scopes_supported"]).contains(&scope.to_owned()));
    }
    for claim in [
        "sub",
        "name",
        "email",
        "email_verified",
        "auth_time",
        "nonce",
        "at_hash",
        "sid",
    ] {
        assert!(
            list(&oidc["claims_supported"]).contains(&claim.to_owned()),
            "{claim}"
        );
    }
    assert!(list(&oidc["grant_types_supported"]).contains(&"authorization_code".to_owned()));
    assert!(list(&oidc["token_endpoint_auth_methods_supported"]).contains(&"none".to_owned()));
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(oidc["request_uri_parameter_supported"], false);
}

#[tokio::test]
async fn logout_with_a_hint_ends_the_session_and_its_logins_and_goes_back() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("bye@example.com").await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, "bye@example.com", "openid posts:read").await;
    let other_browser = Browser::new(&app);
    let other = sign_in(&app, &other_browser, "bye@example.com", "openid posts:read").await;
    // A password-grant login is not part of any browser session.
    let api = app.password_tokens("bye@example.com").await;

    let query_string = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", RP_LOGOUT),
            ("state", "bye-state"),
        ])
        .finish();
    let resp = browser.get(&format!("/oauth/logout?{query_string}")).await;

    let to = location(&resp);
    assert_eq!(to, format!("{RP_LOGOUT}?state=bye-state"));
    assert!(
        browser.cookie("auth_session").is_none(),
        "the cookie is cleared"
    );
    let refresh = |t: &Value| {
        let t = t["refresh_token"].as_str().unwrap().to_owned();
        let app = &app;
        async move {
            app.post_token(&[
                ("grant_type", "refresh_token"),
                ("client_id", "rp"),
                ("refresh_token", &t),
            ])
            .await
            .status()
        }
    };
    assert_eq!(
        refresh(&tokens).await,
        StatusCode::BAD_REQUEST,
        "its logins are revoked"
    );
    assert_eq!(
        refresh(&other).await,
        StatusCode::OK,
        "other browsers keep theirs"
    );
    assert_eq!(
        app.refresh(api["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // The next authorization needs the password again.
    let pkce = Pkce::new();
    let resp = browser.authorize(&params("rp", RP, &pkce, "openid")).await;
    assert!(location(&resp).starts_with("/login"));
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_needs_the_csrf_token() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("ask@example.com").await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, "ask@example.com", "openid").await;

    let resp = browser
        .get(&format!(
            "/oauth/logout?client_id=rp&post_logout_redirect_uri={RP_LOGOUT}&state=s"
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"name="decision" value="logout""#));
    assert!(
        browser.cookie("auth_session").is_some(),
        "nothing ended yet"
    );

    let forged = browser
        .post(
            "/oauth/logout",
            &[("decision", "logout"), ("csrf", "x"), ("client_id", "rp")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(browser.cookie("auth_session").is_some());

    let csrf = hidden(&page, "csrf").unwrap();
    let resp = browser
        .post(
            "/oauth/logout",
            &[
                ("decision", "logout"),
                ("csrf", &csrf),
                ("client_id", "rp"),
                ("post_logout_redirect_uri", RP_LOGOUT),
                ("state", "s"),
            ],
        )
        .await;
    assert_eq!(location(&resp), format!("{RP_LOGOUT}?state=s"));
    let refresh = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "rp"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_oauth_error(refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn logout_redirects_only_to_registered_uris_and_refuses_bad_hints() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("strict@example.com").await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, "strict@example.com", "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();

    // Tampered, foreign, malformed, another client's: a 400 page that ends nothing.
    // Another subject in the payload, the signature kept.
    let parts: Vec<&str> = hint.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "someone-else".into();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    for bad in [
        format!("id_token_hint={tampered}"),
        "id_token_hint=not-a-jwt".to_owned(),
        format!("id_token_hint={hint}&client_id=posts-web"),
        format!("id_token_hint={hint}&id_token_hint={hint}"),
    ] {
        let resp = browser.get(&format!("/oauth/logout?{bad}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            browser.cookie("auth_session").is_some(),
            "{bad}: nothing ended"
        );
    }
    // An unregistered post_logout_redirect_uri: signed out, but not sent there.
    let resp = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={hint}&post_logout_redirect_uri=https://evil.example/"
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("Signed out"));
    assert!(browser.cookie("auth_session").is_none());
}

#[tokio::test]
async fn a_hint_for_another_user_asks_before_ending_this_browsers_session() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("one@example.com").await;
    app.signed_up_user("two@example.com").await;
    let first = Browser::new(&app);
    let tokens = sign_in(&app, &first, "one@example.com", "openid").await;
    let second = Browser::new(&app);
    sign_in(&app, &second, "two@example.com", "openid").await;

    let resp = second
        .get(&format!(
            "/oauth/logout?id_token_hint={}",
            tokens["id_token"].as_str().unwrap()
        ))
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains(r#"value="logout""#));
    assert!(second.cookie("auth_session").is_some());
}

#[tokio::test]
async fn logout_asks_when_the_hint_is_not_of_this_session() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("old@example.com").await;
    let browser = Browser::new(&app);
    // An ID token without a session (the password grant), and one of an ended session.
    let sessionless: Value = app
        .password_tokens_asking("old@example.com", &[("scope", "openid")])
        .await;
    let first = sign_in(&app, &browser, "old@example.com", "openid").await;
    let old_hint = first["id_token"].as_str().unwrap().to_owned();
    browser
        .get(&format!("/oauth/logout?id_token_hint={old_hint}"))
        .await;
    sign_in(&app, &browser, "old@example.com", "openid").await;

    for hint in [sessionless["id_token"].as_str().unwrap(), old_hint.as_str()] {
        let resp = browser
            .get(&format!("/oauth/logout?id_token_hint={hint}"))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.text().await.unwrap().contains(r#"value="logout""#),
            "asks"
        );
        assert!(browser.cookie("auth_session").is_some(), "nothing ended");
    }
    // The confirmation is a POST: a link that says "logout" only asks.
    let page = browser.get("/oauth/logout").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let resp = browser
        .get(&format!("/oauth/logout?decision=logout&csrf={csrf}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(browser.cookie("auth_session").is_some());
}

#[tokio::test]
async fn a_code_of_a_session_that_logged_out_is_refused() {
    let app = spawn_app().await;
    relying_party(&app).await;
    app.signed_up_user("late-code@example.com").await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, "late-code@example.com", "openid").await;
    let pkce = Pkce::new();
    let resp = browser.authorize(&params("rp", RP, &pkce, "openid")).await;
    let code = query(&location(&resp))["code"].clone();

    browser
        .get(&format!(
            "/oauth/logout?id_token_hint={}",
            tokens["id_token"].as_str().unwrap()
        ))
        .await;

    let resp = exchange(&app, "rp", &code, RP, &pkce.verifier).await;
    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn control_characters_in_nonce_state_or_login_hint_are_invalid_request() {
    let app = spawn_app().await;
    relying_party(&app).await;
    let browser = Browser::new(&app);
    let pkce = Pkce::new();
    for (name, value) in [
        ("nonce", "a\u{0}b"),
        ("login_hint", "x\u{1}"),
        ("nonce", "n\nn"),
    ] {
        let mut p = params("rp", RP, &pkce, "openid");
        p.push((name, value));
        let resp = browser.authorize(&p).await;
        assert_eq!(
            query(&location(&resp))["error"],
            "invalid_request",
            "{name}"
        );
    }
    let resp = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id=rp&redirect_uri={RP}&scope=openid\
             &code_challenge={}&code_challenge_method=S256&state=ab%FFcd",
            pkce.challenge
        ))
        .await;
    let q = query(&location(&resp));
    assert_eq!(q["error"], "invalid_request");
    assert!(
        !q.contains_key("state"),
        "a state that is not UTF-8 is not echoed altered"
    );
}
