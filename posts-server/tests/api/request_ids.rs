//! Request ids: echoed or generated, and on every log line of the request.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ServerProcess, TestDatabase, spawn_app, write_jwks_file};

#[tokio::test]
async fn a_sane_request_id_is_echoed() {
    let app = spawn_app().await;

    let response = app
        .request(reqwest::Method::GET, "/healthz", None)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn a_missing_request_id_is_generated() {
    let app = spawn_app().await;

    let first = app.get_healthz().await;
    let second = app.get_healthz().await;

    let first = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let second = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_request_id_that_could_forge_log_lines_is_replaced() {
    let app = spawn_app().await;

    for forged in ["a b\" level=ERROR", &"x".repeat(200)] {
        let response = app
            .request(reqwest::Method::GET, "/healthz", None)
            .header("x-request-id", forged)
            .send()
            .await
            .unwrap();

        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(echoed).is_ok(), "{echoed}");
    }
}

#[tokio::test]
async fn error_answers_carry_the_request_id_too() {
    let app = spawn_app().await;

    let response = app
        .request(reqwest::Method::GET, "/posts", Some("not-a-token"))
        .header("x-request-id", "err-1")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["x-request-id"], "err-1");
}

/// The `request_id` of the innermost span named "request" of a JSON log record.
fn request_id(record: &Value) -> Option<&str> {
    record["spans"]
        .as_array()?
        .iter()
        .rev()
        .find(|span| span["name"] == "request")?
        .get("request_id")?
        .as_str()
}

#[tokio::test]
async fn every_log_line_of_a_request_names_it_and_one_line_reports_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path()).await;
    let jwks = write_jwks_file(dir.path());
    let server = ServerProcess::start(&database.url, &jwks, &[("POSTS_LOG", "debug")]);
    server.wait_until_ready().await;

    let response = server
        .client
        .get(format!("{}/posts?limit=5", server.address))
        .bearer_auth("not.a.token")
        .header("x-request-id", "log-test-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let served = server
        .wait_for_log(|record| {
            record["fields"]["message"] == "request served"
                && request_id(record) == Some("log-test-42")
        })
        .await;
    assert_eq!(served["level"], "INFO");
    assert_eq!(served["fields"]["status"], 401);
    assert!(served["fields"]["elapsed_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(served["span"]["route"], "/posts");
    assert_eq!(served["span"]["method"], "GET");
    let records = server.log_records();
    let rejection = records
        .iter()
        .find(|record| record["fields"]["message"] == "access token rejected")
        .expect("the rejection is logged at debug level");
    assert_eq!(request_id(rejection), Some("log-test-42"));
    let served_lines = records
        .iter()
        .filter(|record| {
            record["fields"]["message"] == "request served"
                && request_id(record) == Some("log-test-42")
        })
        .count();
    assert_eq!(served_lines, 1, "one line per request");
}
