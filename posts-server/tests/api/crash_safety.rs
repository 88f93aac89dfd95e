//! The real binary under faults: SIGKILL mid-burst loses no acknowledged post, and SIGTERM
//! lets in-flight requests finish before exiting 0.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ServerProcess, TestDatabase, token_for, write_jwks_file};

/// Every post id the server lists, following `next_cursor` to the end.
async fn listed_ids(server: &ServerProcess, token: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut url = format!("{}/posts?limit=100", server.address);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = server
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        for post in page["items"].as_array().unwrap() {
            ids.insert(post["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("pagination does not terminate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_post_answered_201_survives_a_sigkill_mid_burst() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path()).await;
    let jwks = write_jwks_file(dir.path());
    let mut server = ServerProcess::start(&database.url, &jwks, &[]);
    server.wait_until_ready().await;
    let token = token_for("crash-test");

    // Arrange: writers create posts as fast as they are answered, until the server dies.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..16 {
        let client = server.client.clone();
        let url = format!("{}/posts", server.address);
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        let unexpected = unexpected.clone();
        writers.spawn(async move {
            for n in 0.. {
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "title": format!("{writer}/{n}"), "body": "burst" }))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                let status = response.status();
                // Only a complete answer counts as acknowledged: the client must have read
                // the id.
                let Ok(post) = response.json::<Value>().await else {
                    return;
                };
                if status == StatusCode::CREATED {
                    let id = post["id"].as_str().expect("an id").to_owned();
                    acknowledged.lock().unwrap().push(id);
                } else {
                    unexpected.lock().unwrap().push(format!("{status}: {post}"));
                    return;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 100 {
        assert!(Instant::now() < deadline, "the burst is too slow");
        assert!(!writers.is_empty());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Act: kill it mid-burst, then restart it on the same database.
    server.kill();
    while writers.join_next().await.is_some() {}
    let acknowledged: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    assert!(
        unexpected.lock().unwrap().is_empty(),
        "{:?}",
        unexpected.lock().unwrap()
    );
    let restarted = ServerProcess::start(&database.url, &jwks, &[]);
    restarted.wait_until_ready().await;

    // Assert
    let stored = listed_ids(&restarted, &token).await;
    eprintln!(
        "{} posts acknowledged before SIGKILL, {} stored",
        acknowledged.len(),
        stored.len()
    );
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged posts were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path()).await;
    let jwks = write_jwks_file(dir.path());
    let mut server = ServerProcess::start(&database.url, &jwks, &[("POSTS_SHUTDOWN_GRACE", "30s")]);
    server.wait_until_ready().await;
    let token = token_for("drain-test");
    let body = json!({ "title": "in flight", "body": "finished after SIGTERM" }).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);

    // Arrange: a request whose body is only half sent.
    let mut stream = TcpStream::connect(server.socket_address()).await.unwrap();
    let head = format!(
        "POST /posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first_half.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act: SIGTERM while it is in flight, then finish it.
    server.signal("TERM");
    server
        .wait_for_log(|record| record["fields"]["message"] == "initiate graceful shutdown")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!server.has_exited(), "it waits for the in-flight request");
    stream.write_all(second_half.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection")
        .unwrap();

    // Assert: answered, stored, and a clean exit.
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let post: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let status = server.wait_for_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let restarted = ServerProcess::start(&database.url, &jwks, &[]);
    restarted.wait_until_ready().await;
    let stored = listed_ids(&restarted, &token).await;
    assert!(stored.contains(post["id"].as_str().unwrap()));
}
