use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, assert_oauth_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_password_grant_issues_a_no_store_bearer_token_and_refresh_token() {
    let app = spawn_app().await;
    app.signed_up_user("ada@example.com").await;

    let resp = app.login("ada@example.com", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "posts:read posts:write");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
}

#[tokio::test]
async fn an_issued_token_verifies_against_the_jwks_with_every_rfc_9068_claim() {
    let app = spawn_app_with(|s| s.access_token_ttl = std::time::Duration::from_secs(600)).await;
    let user = app.signed_up_user("claims@example.com").await;
    let body = app.password_tokens("claims@example.com").await;
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let jwks = app.get_jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["http://127.0.0.1:8000"]);
    validation.set_audience(&["posts-api"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;

    assert_eq!(claims["iss"], "http://127.0.0.1:8000");
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["aud"], "posts-api");
    assert_eq!(claims["client_id"], "posts-web");
    assert_eq!(claims["scope"], "posts:read posts:write");
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 600);
    assert!(nbf <= iat);
    assert!((iat - chrono::Utc::now().timestamp()).abs() < 30);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_byte_identical_answers() {
    let app = spawn_app().await;
    app.signed_up_user("known@example.com").await;

    let wrong = app.login("known@example.com", "wrong password").await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;

    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let wrong = wrong.bytes().await.unwrap();
    let unknown = unknown.bytes().await.unwrap();
    assert_eq!(wrong, unknown);
    assert_eq!(
        serde_json::from_slice::<Value>(&wrong).unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_username_is_matched_case_insensitively() {
    let app = spawn_app().await;
    app.signed_up_user("case@example.com").await;

    let resp = app.login("CASE@Example.com", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn granted_scope_is_the_requested_scope_within_what_is_allowed() {
    let app = spawn_app().await;
    app.signed_up_user("s@example.com").await;
    app.create_client("reader", false, &["password"], "posts:read")
        .await;

    let narrowed = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", "s@example.com"),
            ("password", PASSWORD),
            ("scope", "posts:read"),
        ])
        .await;
    let intersected = app
        .post_token(&[
            ("grant_type", "password"),
            ("client_id", "reader"),
            ("username", "s@example.com"),
            ("password", PASSWORD),
            ("scope", "posts:read posts:write"),
        ])
        .await;

    assert_eq!(
        narrowed.json::<Value>().await.unwrap()["scope"],
        "posts:read"
    );
    let body: Value = intersected.json().await.unwrap();
    assert_eq!(body["scope"], "posts:read");
    assert!(
        body.get("refresh_token").is_none(),
        "reader may not refresh: {body}"
    );
}

#[tokio::test]
async fn an_unknown_scope_is_invalid_scope() {
    let app = spawn_app().await;
    app.signed_up_user("s@example.com").await;

    let resp = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", "s@example.com"),
            ("password", PASSWORD),
            ("scope", "posts:read admin"),
        ])
        .await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

#[tokio::test]
async fn missing_parameters_are_invalid_request() {
    let app = spawn_app().await;

    for form in [
        vec![("username", "a@example.com"), ("password", PASSWORD)],
        vec![("grant_type", "password"), ("password", PASSWORD)],
        vec![("grant_type", "password"), ("username", "a@example.com")],
    ] {
        let resp = app.post_token(&form).await;
        assert_oauth_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let app = spawn_app().await;

    let resp = app
        .post_token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", "x"),
        ])
        .await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
}

#[tokio::test]
async fn malformed_token_requests_are_invalid_request_never_5xx() {
    let app = spawn_app().await;
    let url = format!("{}/oauth/token", app.address);

    let json_body = app
        .http
        .post(&url)
        .json(&serde_json::json!({"grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(json_body, StatusCode::BAD_REQUEST, "invalid_request").await;

    let duplicated = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(duplicated, StatusCode::BAD_REQUEST, "invalid_request").await;

    let garbage = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await
        .unwrap();
    assert!(garbage.status().is_client_error());

    let get = app.get("/oauth/token").await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_client_that_may_not_use_the_password_grant_is_unauthorized_client() {
    let app = spawn_app().await;
    app.signed_up_user("u@example.com").await;
    app.create_client("no-password", false, &["refresh_token"], "posts:read")
        .await;

    let resp = app
        .post_token(&[
            ("grant_type", "password"),
            ("client_id", "no-password"),
            ("username", "u@example.com"),
            ("password", PASSWORD),
        ])
        .await;

    assert_oauth_error(resp, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

#[tokio::test]
async fn an_unknown_client_id_is_invalid_client() {
    let app = spawn_app().await;

    let resp = app
        .post_token(&[
            ("grant_type", "password"),
            ("client_id", "ghost"),
            ("username", "a@example.com"),
            ("password", PASSWORD),
        ])
        .await;

    assert!(resp.headers().get("www-authenticate").is_none());
    assert_oauth_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn the_token_endpoint_allows_the_configured_cors_origin() {
    let app = spawn_app().await;

    let resp = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/oauth/token", app.address),
        )
        .header("origin", "http://127.0.0.1:8001")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap();

    assert!(resp.status().is_success());
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://127.0.0.1:8001"
    );
}

#[tokio::test]
async fn the_servers_own_swagger_ui_may_post_to_the_token_endpoint() {
    let app = spawn_app().await;
    app.signed_up_user("swagger@example.com").await;

    let login_from = |origin: String| {
        app.http
            .post(format!("{}/oauth/token", app.address))
            .header("origin", origin)
            .form(&[
                ("grant_type", "password"),
                ("username", "swagger@example.com"),
                ("password", PASSWORD),
            ])
            .send()
    };

    // Browsers send Origin on same-origin POSTs; the issuer's origin is never "foreign".
    for origin in ["http://127.0.0.1:8000", app.address.as_str()] {
        let resp = login_from(origin.to_owned()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{origin}");
    }
    let foreign = login_from("http://evil.example".into()).await.unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
