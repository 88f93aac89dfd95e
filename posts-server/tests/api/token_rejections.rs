//! One test per way a token can be bad: each is answered 401 with an RFC 6750
//! `invalid_token` challenge (or 403 `insufficient_scope`), never with the post list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    INVALID_TOKEN, JwksServer, TestApp, assert_problem, at_jwt_header, default_claims, keys, merge,
    now, sign, spawn_app, www_authenticate,
};

/// Sends `token` to `GET /posts` and asserts the invalid_token answer.
async fn assert_rejected(app: &TestApp, token: &str) {
    let response = app.get_posts(token, "").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www_authenticate(&response), INVALID_TOKEN);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let app = spawn_app().await;
    let response = app.get_posts(&app.token_for("alice"), "").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let app = spawn_app().await;
    let header = json!({ "alg": "none", "typ": "at+jwt", "kid": keys().primary.kid });
    let token = format!("{}.{}.", b64(&header), b64(&default_claims("alice")));
    assert_rejected(&app, &token).await;
    // Also with a dummy signature segment.
    let token = format!("{}.{}.c2ln", b64(&header), b64(&default_claims("alice")));
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    // The classic key-confusion attack: the public key, known to everyone, as HMAC secret.
    let app = spawn_app().await;
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(keys().primary.kid.clone());
    for secret in [
        keys().primary.public_pem.as_bytes().to_vec(),
        keys().primary.jwk.to_string().into_bytes(),
    ] {
        let token = jsonwebtoken::encode(
            &header,
            &default_claims("alice"),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_rejected(&app, &token).await;
    }
}

#[tokio::test]
async fn other_rsa_algorithms_are_rejected() {
    let app = spawn_app().await;
    for alg in [Algorithm::RS512, Algorithm::PS256] {
        let mut header = at_jwt_header(&keys().primary);
        header.alg = alg;
        let token = sign(&header, &default_claims("alice"), &keys().primary);
        assert_rejected(&app, &token).await;
    }
}

#[tokio::test]
async fn a_foreign_key_with_the_real_kid_is_rejected() {
    let app = spawn_app().await;
    let token = sign(
        &at_jwt_header(&keys().primary),
        &default_claims("alice"),
        &keys().foreign,
    );
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn an_unknown_kid_is_rejected() {
    let app = spawn_app().await;
    let token = sign(
        &at_jwt_header(&keys().foreign),
        &default_claims("alice"),
        &keys().foreign,
    );
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn a_token_without_kid_is_rejected() {
    let app = spawn_app().await;
    let mut header = at_jwt_header(&keys().primary);
    header.kid = None;
    let token = sign(&header, &default_claims("alice"), &keys().primary);
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn an_expired_token_is_rejected_as_expired() {
    let app = spawn_app().await;
    // Beyond the 30 s leeway.
    let token =
        app.mint_token(json!({ "exp": now() - 60, "iat": now() - 960, "nbf": now() - 960 }));

    let response = app.get_posts(&token, "").await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        www_authenticate(&response),
        "Bearer realm=\"posts-api\", error=\"invalid_token\", error_description=\"The access token expired\""
    );
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_accepted() {
    let app = spawn_app().await;
    let token = app.mint_token(json!({ "exp": now() - 10 }));
    assert_eq!(app.get_posts(&token, "").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_without_exp_is_rejected() {
    let app = spawn_app().await;
    let token = app.mint_token(json!({ "exp": null }));
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn nbf_in_the_future_is_rejected() {
    let app = spawn_app().await;
    let token = app.mint_token(json!({ "nbf": now() + 300 }));
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn nbf_within_the_leeway_is_accepted() {
    let app = spawn_app().await;
    let token = app.mint_token(json!({ "nbf": now() + 10 }));
    assert_eq!(app.get_posts(&token, "").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_issuer_is_rejected() {
    let app = spawn_app().await;
    for iss in [
        "http://evil.example",
        "http://127.0.0.1:8000/",
        "HTTP://127.0.0.1:8000",
    ] {
        let token = app.mint_token(json!({ "iss": iss }));
        assert_rejected(&app, &token).await;
    }
    let token = app.mint_token(json!({ "iss": null }));
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn a_wrong_audience_is_rejected() {
    let app = spawn_app().await;
    for aud in [
        json!("other-api"),
        json!(["other-api"]),
        json!("posts-api "),
    ] {
        let token = app.mint_token(json!({ "aud": aud }));
        assert_rejected(&app, &token).await;
    }
    let token = app.mint_token(json!({ "aud": null }));
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn an_audience_list_containing_ours_is_accepted() {
    let app = spawn_app().await;
    let token = app.mint_token(json!({ "aud": ["other-api", "posts-api"] }));
    assert_eq!(app.get_posts(&token, "").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_typ_is_rejected() {
    let app = spawn_app().await;
    for typ in [Some("JWT"), Some("id_token+jwt"), None] {
        let mut header = at_jwt_header(&keys().primary);
        header.typ = typ.map(str::to_owned);
        let token = sign(&header, &default_claims("alice"), &keys().primary);
        assert_rejected(&app, &token).await;
    }
}

#[tokio::test]
async fn a_tampered_payload_is_rejected() {
    let app = spawn_app().await;
    let token = app.mint_token(json!({ "sub": "alice", "scope": "posts:read" }));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = merge(
        default_claims("admin"),
        json!({ "scope": "posts:read posts:write" }),
    );
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    assert_rejected(&app, &tampered).await;
}

#[tokio::test]
async fn a_tampered_signature_is_rejected() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 0x01;
    assert_rejected(&app, &format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes))).await;
}

#[tokio::test]
async fn a_missing_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    for scope in [
        json!("posts:write"),
        json!(""),
        json!(null),
        json!("posts:read-only openid"),
    ] {
        let token = app.mint_token(json!({ "scope": scope }));

        let response = app.get_posts(&token, "").await;

        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            www_authenticate(&response),
            "Bearer realm=\"posts-api\", error=\"insufficient_scope\", scope=\"posts:read\""
        );
        assert_problem(response, StatusCode::FORBIDDEN).await;
    }
}

#[tokio::test]
async fn missing_required_claims_are_rejected() {
    let app = spawn_app().await;
    for claim in ["sub", "client_id", "jti", "iat"] {
        let token = app.mint_token(json!({ claim: null }));
        assert_rejected(&app, &token).await;
    }
    let token = app.mint_token(json!({ "scope": ["posts:read"] }));
    assert_rejected(&app, &token).await;
}

#[tokio::test]
async fn garbage_tokens_are_rejected() {
    let app = spawn_app().await;
    let valid = app.token_for("alice");
    for token in [
        "garbage",
        "a.b.c",
        "a.b.c.d.e",
        "...",
        "eyJhbGciOiJSUzI1NiJ9",
        &format!("{valid}.extra"),
        &valid[..valid.len() - 10],
        "e30.e30.e30",
    ] {
        assert_rejected(&app, token).await;
    }
}

#[tokio::test]
async fn an_oversized_token_is_rejected_without_parsing() {
    let app = spawn_app().await;
    let padding = "x".repeat(9 * 1024);
    let token = app.mint_token(json!({ "padding": padding }));
    assert!(token.len() > 8 * 1024);

    assert_rejected(&app, &token).await;
    let metrics = app.get_metrics().await;
    assert!(
        metrics.contains("token_rejections_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn crit_headers_are_rejected() {
    let app = spawn_app().await;
    let header =
        json!({ "alg": "RS256", "typ": "at+jwt", "kid": keys().primary.kid, "crit": ["exp"] });
    let signing_input = format!("{}.{}", b64(&header), b64(&default_claims("alice")));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &keys().primary.encoding,
        Algorithm::RS256,
    )
    .unwrap();
    assert_rejected(&app, &format!("{signing_input}.{signature}")).await;
}

#[tokio::test]
async fn jku_and_jwk_headers_are_never_followed() {
    // A token signed by the attacker's key, pointing at the attacker's key set.
    let app = spawn_app().await;
    let attacker = JwksServer::start(vec![keys().foreign.jwk.clone()]).await;
    let header = json!({
        "alg": "RS256",
        "typ": "at+jwt",
        "kid": keys().foreign.kid,
        "jku": attacker.url,
        "x5u": attacker.url,
        "jwk": keys().foreign.jwk,
    });
    let signing_input = format!("{}.{}", b64(&header), b64(&default_claims("alice")));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &keys().foreign.encoding,
        Algorithm::RS256,
    )
    .unwrap();

    assert_rejected(&app, &format!("{signing_input}.{signature}")).await;
    assert_eq!(attacker.fetches(), 0);
}

#[tokio::test]
async fn hostile_authorization_headers_get_4xx() {
    let app = spawn_app().await;
    let long = format!("Bearer {}", "a".repeat(64 * 1024));
    let headers: Vec<reqwest::header::HeaderValue> = vec![
        reqwest::header::HeaderValue::from_static("Bearer"),
        reqwest::header::HeaderValue::from_static("Bearer "),
        reqwest::header::HeaderValue::from_static("Bearer a b c"),
        reqwest::header::HeaderValue::from_static("Bearer \"quoted\""),
        reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
        reqwest::header::HeaderValue::from_bytes(b"Bearer \x01\x02")
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Bearer %01%02")),
        reqwest::header::HeaderValue::from_str(&long).unwrap(),
        reqwest::header::HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"),
        reqwest::header::HeaderValue::from_static("Bearer=abc"),
        reqwest::header::HeaderValue::from_static("   "),
    ];

    for value in headers {
        let response = app
            .request(reqwest::Method::GET, "/posts", None)
            .header("authorization", value.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{value:?}: {status}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(www_authenticate(&response).starts_with("Bearer realm=\"posts-api\""));
        }
    }

    let two = app
        .request(reqwest::Method::GET, "/posts", None)
        .header("authorization", format!("Bearer {}", app.token_for("a")))
        .header("authorization", format!("Bearer {}", app.token_for("b")))
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    assert!(www_authenticate(&two).contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn other_schemes_get_the_plain_challenge() {
    let app = spawn_app().await;
    let response = app
        .request(reqwest::Method::GET, "/posts", None)
        .basic_auth("alice", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www_authenticate(&response), "Bearer realm=\"posts-api\"");
}
