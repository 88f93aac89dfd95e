//! The database crashes under a running server and comes back: every request that needs
//! it is answered 503 with `Retry-After` meanwhile (never 500), no post answered 201 is
//! lost, and the server serves again by itself, without a restart.
//!
//! Needs PostgreSQL's server binaries, and runs in CI's PostgreSQL pass: it starts a
//! private cluster (never the shared server of `TEST_POSTGRES_URL`, which other tests use
//! meanwhile) and stops it with `pg_ctl stop -m immediate`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use db_outage::cluster::Cluster;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{JwksServer, TestApp, TestDatabase, assert_problem, keys, launch_on};

/// How long the server may take to serve again once the database is back.
const RECOVERY: Duration = Duration::from_secs(15);

/// Asserts the outage answer: a 503 problem with a short `Retry-After`.
async fn assert_unavailable(response: reqwest::Response) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    let seconds: u64 = retry_after.expect("Retry-After on a 503").parse().unwrap();
    assert!((1..=10).contains(&seconds), "Retry-After: {seconds}");
}

/// Every post id the server lists, following `next_cursor` to the end.
async fn listed_ids(app: &TestApp, token: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut query = "limit=100".to_owned();
    loop {
        let response = app.get_posts(token, &query).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        for post in page["items"].as_array().unwrap() {
            ids.insert(post["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => query = format!("limit=100&cursor={next}"),
            None => return ids,
        }
    }
}

/// What the writers saw: the ids answered 201, and every other status.
#[derive(Default)]
struct Writes {
    acknowledged: Vec<String>,
    refused: Vec<(StatusCode, Option<String>, String)>,
}

/// Writers that create posts one after another until `stop`, through the outage.
fn spawn_writers(app: &TestApp, token: &str, stop: &Arc<AtomicBool>) -> Arc<Mutex<Writes>> {
    let writes = Arc::new(Mutex::new(Writes::default()));
    for writer in 0..3 {
        let (client, url) = (app.client.clone(), format!("{}/posts", app.address));
        let (token, stop, writes) = (token.to_owned(), stop.clone(), writes.clone());
        tokio::spawn(async move {
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let body = json!({ "title": format!("w{writer}-{n}"), "body": "during" });
                let Ok(response) = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                else {
                    continue;
                };
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let content_type = response
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                if status == StatusCode::CREATED {
                    let post: Value = response.json().await.unwrap();
                    let id = post["id"].as_str().unwrap().to_owned();
                    writes.lock().unwrap().acknowledged.push(id);
                } else {
                    let refused = (status, retry_after, content_type);
                    writes.lock().unwrap().refused.push(refused);
                }
            }
        });
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_is_503_and_the_server_recovers_by_itself() {
    // Arrange: the server on a cluster of its own, posts acknowledged before the crash,
    // and writers that keep creating posts through it.
    let Some(cluster) = Cluster::for_test("the posts-server outage test") else {
        return;
    };
    let jwks = JwksServer::start(vec![keys().primary.jwk.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let app = launch_on(TestDatabase::at(cluster.url()), dir, Some(jwks), |_| {}).await;
    app.wait_until_ready().await;
    let token = app.token_for("outage-author");
    let mut before = Vec::new();
    for n in 0..5 {
        let post = app
            .create_post(&token, &format!("before {n}"), "body")
            .await;
        before.push(post["id"].as_str().unwrap().to_owned());
    }
    let stop_writers = Arc::new(AtomicBool::new(false));
    let writes = spawn_writers(&app, &token, &stop_writers);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act: the database crashes.
    cluster.stop_immediately().expect("pg_ctl stop");
    let crashed = Instant::now();
    let lost = json!({ "title": "lost?", "body": "no" });
    let (create, list, one, ready) = tokio::join!(
        app.post_posts(&token, &lost),
        app.get_posts(&token, ""),
        app.get_post(&token, &before[0]),
        app.get_readyz(),
    );
    let until_503 = crashed.elapsed();

    // Assert: 503 in the API's format, and not ready.
    assert_unavailable(create).await;
    assert_unavailable(list).await;
    assert_unavailable(one).await;
    assert_problem(ready, StatusCode::SERVICE_UNAVAILABLE).await;

    // Act: the database comes back.
    cluster.start().expect("pg_ctl start");
    let restarted = Instant::now();
    let until_recovered = loop {
        let ready = app.get_readyz().await.status() == StatusCode::OK;
        if ready && app.get_posts(&token, "").await.status() == StatusCode::OK {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < RECOVERY,
            "no recovery within {RECOVERY:?}; server log:\n{}",
            cluster.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_writers.store(true, Ordering::SeqCst);
    eprintln!(
        "outage: 503 after {until_503:?}; serving again {until_recovered:?} after the restart"
    );

    // Assert: served again without a restart, every acknowledged post is there, and the
    // writers saw nothing but 201 and 503.
    assert_eq!(
        app.post_posts(&token, &json!({ "title": "after", "body": "b" }))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Let the writers' last requests finish before reading what they saw.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = listed_ids(&app, &token).await;
    let writes = writes.lock().unwrap();
    for id in before.iter().chain(&writes.acknowledged) {
        assert!(listed.contains(id), "acknowledged post {id} is gone");
    }
    assert!(!writes.refused.is_empty(), "no writer met the outage");
    for (status, retry_after, content_type) in &writes.refused {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after.is_some(), "a 503 without Retry-After");
        assert!(content_type.starts_with("application/problem+json"));
    }
}
