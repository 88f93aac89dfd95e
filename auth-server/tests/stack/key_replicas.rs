//! Replicas without a shared disk (`AUTH_KEYS_STORE=database`, each its own empty keys
//! directory) and a verifier that can never refetch the key set: the next key is known
//! to everyone before it signs, and every replica switches to it at the same moment.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{ENCRYPTION_KEY, PASSWORD, PostgresDatabase},
    replicas::{Replica, Starting},
    spawn_posts_with,
};

struct Deployment {
    database_url: String,
    _database: Option<PostgresDatabase>,
    dir: tempfile::TempDir,
}

// Long enough for the set-up between the replicas' start (which makes the next key) and
// the rotation, even on a loaded machine, so the rotation is really scheduled.
const LEAD: &str = "10";

impl Deployment {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, database) = match PostgresDatabase::create_named("auth").await {
            Some(db) => (db.url.clone(), Some(db)),
            None => (
                format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display()),
                None,
            ),
        };
        let deployment = Self {
            database_url,
            _database: database,
            dir,
        };
        // As a deployment would: migrate once, then start the replicas.
        let (code, out) = deployment.admin(&["migrate"]);
        assert_eq!(code, 0, "{out}");
        deployment
    }

    fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AUTH_KEYS_STORE", "database"),
            ("AUTH_KEYS_ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("AUTH_KEY_PUBLISH_LEAD", LEAD),
        ]
    }

    fn keys_dir(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Starts replicas at the same moment, each with an empty keys directory of its own.
    fn replicas(&self, names: &[&str]) -> Vec<Replica> {
        let starting: Vec<Starting> = names
            .iter()
            .map(|n| Starting::new(&self.database_url, &self.keys_dir(n), &self.env()))
            .collect();
        starting.into_iter().map(Starting::listening).collect()
    }

    fn admin(&self, args: &[&str]) -> (i32, Value) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .args(args)
            .env("AUTH_DATABASE_URL", &self.database_url)
            .env("AUTH_KEYS_DIR", self.keys_dir("operator"))
            .envs(self.env())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        (
            output.status.code().unwrap(),
            serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        )
    }
}

async fn jwks(http: &reqwest::Client, replica: &Replica) -> Value {
    http.get(format!("{}/.well-known/jwks.json", replica.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn signed_kid(http: &reqwest::Client, replica: &Replica) -> (String, String) {
    let body: Value = http
        .post(format!("{}/oauth/token", replica.address))
        .form(&[
            ("grant_type", "password"),
            ("username", "keys@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    (kid, token)
}

#[tokio::test]
async fn replicas_on_the_database_store_publish_one_jwks_and_switch_keys_together() {
    let deployment = Deployment::new().await;
    let replicas = deployment.replicas(&["a", "b"]);
    let http = reqwest::Client::new();

    // Started at once on an empty database: one active and one next key, one JWKS.
    let (code, listed) = deployment.admin(&["keys", "list"]);
    assert_eq!(code, 0, "{listed}");
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["next", "active"]);
    let cached = jwks(&http, &replicas[0]).await;
    assert_eq!(cached["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks(&http, &replicas[1]).await, cached);
    for name in ["a", "b"] {
        assert!(
            std::fs::read_dir(deployment.keys_dir(name)).map_or(true, |mut d| d.next().is_none()),
            "nothing on disk"
        );
    }
    let signup = http
        .post(format!("{}/users", replicas[0].address))
        .json(&json!({"email": "keys@example.com", "password": PASSWORD, "full_name": "K"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let (old, _) = signed_kid(&http, &replicas[1]).await;

    // A verifier that only ever has the key set fetched before the rotation.
    let snapshot = deployment.dir.path().join("jwks-before-rotation.json");
    std::fs::write(&snapshot, cached.to_string()).unwrap();
    let posts = spawn_posts_with(&["--jwks-file", snapshot.to_str().unwrap()]).await;

    let (code, rotated) = deployment.admin(&["keys", "rotate"]);
    assert_eq!(code, 0, "{rotated}");
    let new = rotated["kid"].as_str().unwrap().to_owned();
    let active_from: DateTime<Utc> = rotated["active_from"].as_str().unwrap().parse().unwrap();
    assert!(active_from > Utc::now(), "scheduled after the lead");

    let deadline = active_from + chrono::Duration::milliseconds(2500);
    let mut switched = [false, false];
    while Utc::now() < deadline {
        for (i, replica) in replicas.iter().enumerate() {
            let sent = Utc::now();
            let (kid, token) = signed_kid(&http, replica).await;
            if Utc::now() < active_from {
                assert_eq!(kid, old, "replica {i} signed with the next key early");
            }
            if sent > active_from + chrono::Duration::milliseconds(100) {
                assert_eq!(kid, new, "replica {i} did not switch at active_from");
                assert_eq!(
                    posts.get("/posts/me", Some(&token)).await.status(),
                    StatusCode::OK,
                    "the verifier knew the new key from before the rotation"
                );
                switched[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(switched, [true, true]);
    let published = jwks(&http, &replicas[0]).await;
    assert_eq!(jwks(&http, &replicas[1]).await, published);
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids[0], new);
    assert_eq!(kids[1], rotated["next_kid"].as_str().unwrap());
    assert_eq!(kids[2], old, "retired, still published for its tokens");
}
