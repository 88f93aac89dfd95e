//! Bad input gets a 4xx problem, never a 500 and never a panic.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    for body in [
        "{",
        "not json",
        "{\"title\": \"a\", \"body\": \"b\",}",
        "\u{0}",
    ] {
        let response = app
            .request(reqwest::Method::POST, "/posts", Some(&token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn wrong_types_missing_fields_and_unknown_fields_are_422() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    // Well-formed JSON of the wrong shape is invalid input, like a too-long title.
    for raw in ["", "[]", "null"] {
        let response = app
            .request(reqwest::Method::POST, "/posts", Some(&token))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    for body in [
        json!({ "title": 1, "body": "b" }),
        json!({ "title": "t", "body": ["b"] }),
        json!({ "title": "t" }),
        json!({ "body": "b" }),
        json!({ "title": "t", "body": "b", "author_id": "someone-else" }),
        json!({ "title": null, "body": "b" }),
    ] {
        let response = app.post_posts(&token, &body).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let post = app.create_post(&token, "t", "b").await;
    let id = post["id"].as_str().unwrap();
    for body in [
        json!({ "title": 5 }),
        json!({ "titel": "typo" }),
        json!("string"),
    ] {
        let response = app.patch_post(&token, id, &body).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    let response = app
        .request(reqwest::Method::POST, "/posts", Some(&token))
        .header("content-type", "text/plain")
        .body("{\"title\":\"t\",\"body\":\"b\"}")
        .send()
        .await
        .unwrap();

    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let body = json!({ "title": "t", "body": "a".repeat(257 * 1024) });

    let response = app.post_posts(&token, &body).await;

    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn an_oversized_chunked_body_is_413() {
    // No Content-Length: the limit must hold for streamed bodies too. reqwest cannot
    // stream without an extra feature, so speak HTTP/1.1 directly.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = format!(
        "POST /posts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8 * 1024, " ".repeat(8 * 1024));
    for _ in 0..100 {
        // The server may answer and close before everything is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;

    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;

    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("application/problem+json"),
        "{answer}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    let missing = app
        .request(reqwest::Method::GET, "/nothing/here", Some(&token))
        .send()
        .await
        .unwrap();
    assert_problem(missing, StatusCode::NOT_FOUND).await;
    let wrong_method = app
        .request(reqwest::Method::PUT, "/posts", Some(&token))
        .send()
        .await
        .unwrap();
    assert_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn absurd_query_strings_are_4xx() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    for query in [
        "limit=10&limit=20",
        "cursor=&limit=5",
        "author=",
        &format!("author={}", "a".repeat(1_000)),
        "limit=%FF",
        "%%%",
    ] {
        let response = app.get_posts(&token, query).await;
        let status = response.status();
        assert!(
            status.is_success() || status.is_client_error(),
            "{query}: {status}"
        );
        if status.is_client_error() {
            assert_problem(response, status).await;
        }
    }
}

#[tokio::test]
async fn an_author_filter_with_a_nul_matches_nothing() {
    // PostgreSQL refuses NUL in text parameters; this was a 500 there.
    let app = spawn_app().await;
    let token = app.token_for("alice");

    let response = app
        .request(reqwest::Method::GET, "/posts?author=a%00b", Some(&token))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let page: serde_json::Value = response.json().await.unwrap();
    assert_eq!(page["items"], serde_json::json!([]));
}

#[tokio::test]
async fn a_forged_cursor_outside_any_posts_time_is_400() {
    // PostgreSQL refused the timestamp (500); SQLite answered a different page.
    use base64::Engine as _;
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let id = "0195c5f0-7b1e-7c43-9d1f-3f1d7e2a9b10";

    for micros in ["-220000000000000000", "253402300800000000"] {
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
        let response = app
            .request(
                reqwest::Method::GET,
                &format!("/posts?cursor={cursor}"),
                Some(&token),
            )
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn a_token_whose_subject_cannot_be_an_author_is_invalid() {
    let app = spawn_app().await;

    for sub in [String::new(), "a\u{0}b".to_owned(), "x".repeat(256)] {
        let token = app.mint_token(serde_json::json!({ "sub": sub }));
        let response = app
            .post_posts(&token, &json!({ "title": "t", "body": "b" }))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{sub:?}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }
}

/// RFC 9110 §15.5.6: a 405 lists the methods its resource takes.
#[tokio::test]
async fn a_405_lists_the_methods_of_its_resource() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    for (method, path, allow) in [
        (reqwest::Method::PUT, "/posts", "GET, HEAD, POST"),
        (reqwest::Method::POST, "/posts/me", "GET, HEAD"),
        (
            reqwest::Method::POST,
            "/posts/1",
            "GET, HEAD, PATCH, DELETE",
        ),
        (reqwest::Method::DELETE, "/healthz", "GET, HEAD"),
    ] {
        let response = app
            .request(method.clone(), path, Some(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}
