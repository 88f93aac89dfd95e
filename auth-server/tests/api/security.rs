use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_disconnected() {
    let app = spawn_app_with(|s| s.request_timeout = Duration::from_secs(1)).await;
    let addr = app.address.trim_start_matches("http://").to_owned();

    let closed_after = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        // One header byte every 300 ms would keep an idle timer happy forever.
        for chunk in [
            "GET /healthz HTTP/1.1\r\n",
            "Host: x\r\n",
            "X-A: 1\r\n",
            "X-B: 2\r\n",
            "X-C: 3\r\n",
            "X-D: 4\r\n",
            "X-E: 5\r\n",
        ] {
            if stream.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        (started.elapsed(), buf)
    })
    .await
    .unwrap();

    let (elapsed, answer) = closed_after;
    assert!(
        elapsed < Duration::from_secs(5),
        "connection held for {elapsed:?}"
    );
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
}

#[tokio::test]
async fn a_prompt_client_on_a_kept_alive_connection_is_served() {
    let app = spawn_app_with(|s| s.request_timeout = Duration::from_secs(1)).await;

    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// The real binary, with its logs (at the most verbose level) captured.
struct Server {
    child: Child,
    address: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

fn start_binary(dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env("AUTH_BIND", "127.0.0.1:0")
        .env(
            "AUTH_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("auth.db").display()),
        )
        .env("AUTH_KEYS_DIR", dir.join("keys"))
        .env("AUTH_ARGON2_MEMORY_KIB", "1024")
        .env("AUTH_ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(pos) = line.find("auth-server listening addr=") {
                let addr = line[pos + "auth-server listening addr=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server started");
    Server {
        child,
        address: format!("http://{addr}"),
        log,
    }
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

#[tokio::test]
async fn logs_of_a_whole_session_contain_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_binary(dir.path());
    let http = reqwest::Client::new();
    let base = server.address.clone();
    let password = "hunter2-correct-horse";
    let db = auth_server::db::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("auth.db").display()
    ))
    .await
    .unwrap();
    let secret = auth_server::clients::register(
        &db,
        auth_server::clients::NewClient {
            client_id: "svc".into(),
            confidential: true,
            grant_types: vec!["client_credentials".into()],
            scopes: "posts:read".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .client_secret
    .unwrap();

    let resp = http
        .post(format!("{base}/users"))
        .json(&serde_json::json!({"email": "log@example.com", "password": password, "full_name": "Log"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let tokens: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "log@example.com"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh2 = refreshed["refresh_token"].as_str().unwrap().to_owned();
    http.post(format!("{base}/oauth/token"))
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "log@example.com"),
            ("password", "wrong-password-xyz"),
        ])
        .send()
        .await
        .unwrap();
    let resp = http
        .post(format!("{base}/oauth/revoke"))
        .form(&[("token", refresh2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    sigterm(&server.child);
    let status = server.child.wait().unwrap();
    assert!(status.success());

    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains("issued tokens"),
        "the session was logged at all"
    );
    let pem = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pem"))
        .unwrap();
    let pem = std::fs::read_to_string(pem).unwrap();
    let key_line = pem.lines().nth(1).unwrap();
    for secret_value in [
        password,
        "wrong-password-xyz",
        &refresh,
        &refresh2,
        &secret,
        key_line,
    ] {
        assert!(!log.contains(secret_value), "a secret reached the logs");
    }
    for token in [
        tokens["access_token"].as_str().unwrap(),
        refreshed["access_token"].as_str().unwrap(),
    ] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "an access token reached the logs");
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_binary(dir.path());
    let http = reqwest::Client::new();
    let base = server.address.clone();

    // Sign-ups are in flight (each pays for an Argon2 hash) when SIGTERM arrives.
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let http = http.clone();
            let base = base.clone();
            tokio::spawn(async move {
                http.post(format!("{base}/users"))
                    .json(&serde_json::json!({"email": format!("d{i}@example.com"), "password": "drain-password", "full_name": "D"}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    sigterm(&server.child);

    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    for r in requests {
        if let Ok(code) = r.await.unwrap() {
            assert_eq!(code, StatusCode::CREATED, "accepted requests complete");
        }
    }
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let app = crate::helpers::spawn_app().await;

    let resp = app
        .http
        .get(format!("{}/healthz", app.address))
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();

    crate::helpers::assert_problem(resp, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
}
