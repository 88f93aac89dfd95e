//! Slow clients and secrets in logs.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    ServerProcess, TestDatabase, at_jwt_header, default_claims, keys, merge, now, sign,
    spawn_app_with, token_for, write_jwks_file,
};

/// Reads until the server closes the connection (or 20 s pass); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_disconnected() {
    let app =
        spawn_app_with(|settings| settings.server.request_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let started = Instant::now();

    // A header line every 300 ms would keep an idle-read timer happy forever: 3 s in all.
    let mut lines = vec![
        "GET /healthz HTTP/1.1\r\n".to_owned(),
        "Host: x\r\n".to_owned(),
    ];
    lines.extend((0..8).map(|n| format!("X-Slow-{n}: {n}\r\n")));
    for line in lines {
        if stream.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let answer = read_until_closed(&mut stream).await;

    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(6),
        "connection held for {elapsed:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "the slow request was served"
    );
}

#[tokio::test]
async fn a_prompt_client_on_a_kept_alive_connection_is_served() {
    let app =
        spawn_app_with(|settings| settings.server.request_timeout = Duration::from_secs(1)).await;

    for _ in 0..3 {
        assert_eq!(app.get_healthz().await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

#[tokio::test]
async fn a_body_that_arrives_too_slowly_gets_408() {
    let app =
        spawn_app_with(|settings| settings.server.request_timeout = Duration::from_secs(1)).await;
    let token = app.token_for("alice");
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let started = Instant::now();

    let head = format!(
        "POST /posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The rest of the body never comes.
    let answer = read_until_closed(&mut stream).await;

    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "answered {answer:?} after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
}

#[tokio::test]
async fn trace_logs_of_a_whole_session_contain_no_access_token() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path()).await;
    let jwks = write_jwks_file(dir.path());
    // RUST_LOG wins over POSTS_LOG: every target, the most verbose level.
    let server = ServerProcess::start(&database.url, &jwks, &[("RUST_LOG", "trace")]);
    server.wait_until_ready().await;
    let base = &server.address;
    let http = &server.client;
    let alice = token_for("alice");
    let bob = token_for("bob");
    let expired = sign(
        &at_jwt_header(&keys().primary),
        &merge(
            default_claims("alice"),
            serde_json::json!({ "exp": now() - 3600, "iat": now() - 7200, "nbf": now() - 7200 }),
        ),
        &keys().primary,
    );
    let read_only = sign(
        &at_jwt_header(&keys().primary),
        &merge(
            default_claims("alice"),
            serde_json::json!({ "scope": "posts:read" }),
        ),
        &keys().primary,
    );
    let forged = sign(
        &at_jwt_header(&keys().primary),
        &default_claims("mallory"),
        &keys().foreign,
    );

    // A whole session: create, list, read, change, refuse, delete, plus bad tokens.
    let created: serde_json::Value = http
        .post(format!("{base}/posts"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({ "title": "hello", "body": "world" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    for (method, path, token) in [
        (reqwest::Method::GET, "/posts".to_owned(), &alice),
        (reqwest::Method::GET, "/posts/me".to_owned(), &alice),
        (reqwest::Method::GET, format!("/posts/{id}"), &bob),
        (reqwest::Method::GET, "/posts".to_owned(), &expired),
        (reqwest::Method::GET, "/posts".to_owned(), &forged),
        (reqwest::Method::DELETE, format!("/posts/{id}"), &read_only),
        (reqwest::Method::DELETE, format!("/posts/{id}"), &bob),
    ] {
        let response = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_server_error());
    }
    let changed = http
        .patch(format!("{base}/posts/{id}"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({ "title": "changed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let deleted = http
        .delete(format!("{base}/posts/{id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    // The last request's log lines are written before its answer; give the reader thread
    // a moment to collect them.
    server
        .wait_for_log(|record| {
            record["fields"]["message"] == "request served" && record["fields"]["status"] == 204
        })
        .await;

    let log = server.log().join("\n");
    assert!(
        log.contains("access token rejected"),
        "the capture holds the debug lines too"
    );
    for token in [&alice, &bob, &expired, &read_only, &forged] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "an access token reached the logs");
    }
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_is_served() {
    let app =
        spawn_app_with(|settings| settings.server.request_timeout = Duration::from_secs(2)).await;
    let token = app.token_for("alice");
    let body = r#"{"title":"expect","body":"continue"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();

    let head = format!(
        "POST /posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut interim))
        .await
        .expect("an interim answer")
        .unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{interim:?}");
    stream.write_all(body.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;

    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer:?}");
}
