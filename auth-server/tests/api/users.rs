use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn sign_up_returns_the_user_with_location_and_no_password() {
    let app = spawn_app().await;

    let resp = app
        .post_users(
            &json!({"email": "Ada@Example.com", "password": PASSWORD, "full_name": "Ada Lovelace"}),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/users/{}", body["id"].as_str().unwrap()));
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["full_name"], "Ada Lovelace");
    assert!(chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).is_ok());
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "email", "full_name", "id"]);
    assert!(!body.to_string().contains("argon2"));
}

#[tokio::test]
async fn a_taken_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    app.signed_up_user("bob@example.com").await;

    let resp = app
        .post_users(&json!({"email": "BOB@example.COM", "password": PASSWORD, "full_name": "Bob"}))
        .await;

    assert_problem(resp, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn invalid_fields_are_422_problems() {
    let app = spawn_app().await;
    let cases = [
        json!({"email": "not-an-email", "password": PASSWORD, "full_name": "X"}),
        json!({"email": "a@example.com", "password": "short", "full_name": "X"}),
        json!({"email": "a@example.com", "password": "x".repeat(129), "full_name": "X"}),
        json!({"email": "a@example.com", "password": PASSWORD, "full_name": ""}),
        json!({"email": "a@example.com", "password": PASSWORD, "full_name": "   "}),
        json!({"email": "a@example.com", "password": PASSWORD, "full_name": "n".repeat(201)}),
        json!({"email": "a@example.com", "password": PASSWORD}),
        json!({"email": 42, "password": PASSWORD, "full_name": "X"}),
        json!({"email": "a@example.com", "password": 12345678, "full_name": "X"}),
        json!({"email": "a@example.com", "password": PASSWORD, "full_name": true}),
        json!([1, 2, 3]),
    ];
    for body in cases {
        let resp = app.post_users(&body).await;
        let problem = assert_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(problem["detail"].is_string(), "{body}: {problem}");
    }
}

#[tokio::test]
async fn password_and_name_limits_count_characters() {
    let app = spawn_app().await;

    let resp = app
        .post_users(&json!({"email": "u@example.com", "password": "é".repeat(8), "full_name": "名".repeat(200)}))
        .await;

    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_are_4xx_problems() {
    let app = spawn_app().await;
    let url = format!("{}/users", app.address);

    let malformed = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, StatusCode::BAD_REQUEST).await;

    let form = app
        .http
        .post(&url)
        .form(&[("email", "a@example.com")])
        .send()
        .await
        .unwrap();
    assert_problem(form, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn the_name_limit_applies_after_trimming() {
    let app = spawn_app().await;
    let name = format!("  {}  ", "n".repeat(200));

    let resp = app
        .post_users(&json!({"email": "t@example.com", "password": PASSWORD, "full_name": name}))
        .await;

    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;

    let body =
        json!({"email": "a@example.com", "password": PASSWORD, "full_name": "x".repeat(70_000)});
    let resp = app.post_users(&body).await;

    assert_problem(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn me_returns_the_callers_profile() {
    let app = spawn_app().await;
    let user = app.signed_up_user("me@example.com").await;
    let tokens = app.password_tokens("me@example.com").await;

    let resp = app.get_me(tokens["access_token"].as_str().unwrap()).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let me: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(me, user);
}

#[tokio::test]
async fn me_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;

    let resp = app.get("/users/me").await;

    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="auth-server""#
    );
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn me_with_a_bad_token_is_401_invalid_token() {
    let app = spawn_app().await;

    for token in ["garbage", "a.b.c", &"x".repeat(9000)] {
        let resp = app.get_me(token).await;
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert_problem(resp, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn a_user_may_read_only_their_own_profile_by_id() {
    let app = spawn_app().await;
    let ann = app.signed_up_user("ann@example.com").await;
    let bob = app.signed_up_user("bob@example.com").await;
    let token = app.password_tokens("ann@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let own = app
        .http
        .get(format!(
            "{}/users/{}",
            app.address,
            ann["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let other = app
        .http
        .get(format!(
            "{}/users/{}",
            app.address,
            bob["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(own.status(), StatusCode::OK);
    assert_problem(other, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_create_exactly_one_user() {
    let app = spawn_app().await;
    let body = json!({"email": "race@example.com", "password": PASSWORD, "full_name": "Racer"});

    let attempts = (0..20).map(|_| app.post_users(&body));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();

    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
}
