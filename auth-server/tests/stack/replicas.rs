//! Scale-out on one machine: two auth-server processes on one database and one keys
//! directory, and a posts-server trusting their shared key set.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::Value;

use crate::{helpers::PASSWORD, spawn_posts};

/// An auth-server process.
pub struct Replica {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replica(database_url: &str, keys_dir: &std::path::Path) -> Replica {
    Starting::new(database_url, keys_dir, &[]).listening()
}

/// An auth-server process that has not reported its address yet, so that several can
/// start at the same moment.
pub struct Starting {
    child: Child,
    address: std::sync::mpsc::Receiver<String>,
}

impl Starting {
    /// Starts `auth-server` on this database and keys directory, with `env` on top.
    pub fn new(database_url: &str, keys_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .env("AUTH_BIND", "127.0.0.1:0")
            .env("AUTH_DATABASE_URL", database_url)
            .env("AUTH_KEYS_DIR", keys_dir)
            .env("AUTH_KEYS_RELOAD_INTERVAL", "1")
            .env("AUTH_ARGON2_MEMORY_KIB", "1024")
            .env("AUTH_ARGON2_ITERATIONS", "1")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("auth-server starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let marker = "auth-server listening addr=";
                if let Some(pos) = line.find(marker)
                    && let Some(tx) = tx.take()
                {
                    let addr = line[pos + marker.len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        Self { child, address: rx }
    }

    /// Waits until it listens.
    pub fn listening(self) -> Replica {
        let addr = self
            .address
            .recv_timeout(Duration::from_secs(60))
            .expect("replica listening");
        Replica {
            child: self.child,
            address: format!("http://{addr}"),
        }
    }
}

async fn form(http: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_replicas_share_logins_keys_and_reuse_detection() {
    // The first instance creates the schema and the key; the replicas then share both.
    let primary = crate::helpers::spawn_app().await;
    let keys_dir = primary.keys_dir();
    let a = replica(&primary.database_url, &keys_dir);
    let b = replica(&primary.database_url, &keys_dir);
    let posts = spawn_posts(&a.address).await;
    let http = reqwest::Client::new();
    primary.signed_up_user("scale@example.com").await;
    let login = [
        ("grant_type", "password"),
        ("username", "scale@example.com"),
        ("password", PASSWORD),
    ];

    // A token from either replica is accepted.
    for replica in [&a, &b] {
        let body: Value = form(&http, &replica.address, &login)
            .await
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(
            posts.get("/posts/me", Some(token)).await.status(),
            StatusCode::OK
        );
    }

    // A refresh token rotated at one replica cannot be reused at the other.
    let first: Value = form(&http, &a.address, &login).await.json().await.unwrap();
    let old_refresh = first["refresh_token"].as_str().unwrap();
    let rotated = form(
        &http,
        &a.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh),
        ],
    )
    .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let reused = form(
        &http,
        &b.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh),
        ],
    )
    .await;
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    let successor = rotated["refresh_token"].as_str().unwrap();
    let revoked = form(
        &http,
        &b.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", successor),
        ],
    )
    .await;
    assert_eq!(
        revoked.status(),
        StatusCode::BAD_REQUEST,
        "reuse revoked the login everywhere"
    );

    // A key rotated through the CLI is used by both replicas and accepted by posts-server.
    let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["keys", "rotate"])
        .env("AUTH_KEYS_DIR", &keys_dir)
        .env("AUTH_DATABASE_URL", &primary.database_url)
        .env("AUTH_KEY_PUBLISH_LEAD", "2")
        .output()
        .unwrap();
    assert!(output.status.success());
    let rotated = serde_json::from_slice::<Value>(&output.stdout).unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let active_from: chrono::DateTime<chrono::Utc> =
        rotated["active_from"].as_str().unwrap().parse().unwrap();
    let wait = (active_from - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1500)).await;
    for replica in [&a, &b] {
        let body: Value = form(&http, &replica.address, &login)
            .await
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(token).unwrap().kid.unwrap(),
            new_kid
        );
        assert_eq!(
            posts.get("/posts/me", Some(token)).await.status(),
            StatusCode::OK
        );
    }
}
