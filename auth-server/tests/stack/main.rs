//! Both servers together, as a team runs them: tokens from auth-server, verified offline
//! by posts-server through the published key set.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "../api/browser.rs"]
mod browser;

mod key_replicas;
mod openid;
mod replicas;
mod walkthrough;

use clap::Parser;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running posts-server.
pub struct PostsServer {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    http: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    _database: Option<helpers::PostgresDatabase>,
    _dir: tempfile::TempDir,
}

/// Starts posts-server trusting the auth server at `auth_address` (whose issuer is the
/// test issuer), exactly as its command line would configure it.
pub async fn spawn_posts(auth_address: &str) -> PostsServer {
    let jwks_url = format!("{auth_address}/.well-known/jwks.json");
    spawn_posts_with(&["--jwks-url", &jwks_url]).await
}

/// Starts posts-server with these key-source flags (`--jwks-url …` or `--jwks-file …`).
pub async fn spawn_posts_with(key_source: &[&str]) -> PostsServer {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, database) = match helpers::PostgresDatabase::create_named("posts").await {
        Some(db) => (db.url.clone(), Some(db)),
        None => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("posts.db").display()
            ),
            None,
        ),
    };
    let mut args = vec![
        "posts-server",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &database_url,
        "--issuer",
        "http://127.0.0.1:8000",
    ];
    args.extend_from_slice(key_source);
    let cli = posts_server::config::Cli::try_parse_from(args).expect("posts-server settings");
    let app = posts_server::startup::Application::build(cli.settings)
        .await
        .expect("posts-server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let server = PostsServer {
        address,
        http: reqwest::Client::new(),
        _shutdown: tx,
        _database: database,
        _dir: dir,
    };
    for _ in 0..100 {
        if server.get("/readyz", None).await.status() == StatusCode::OK {
            return server;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("posts-server never became ready");
}

impl PostsServer {
    /// `GET` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    /// `POST /posts`.
    pub async fn create(&self, token: &str, title: &str, body: &str) -> Response {
        self.http
            .post(format!("{}/posts", self.address))
            .bearer_auth(token)
            .json(&json!({"title": title, "body": body}))
            .send()
            .await
            .unwrap()
    }

    /// `PATCH /posts/{id}`.
    pub async fn patch(&self, token: &str, id: &str, body: &Value) -> Response {
        self.http
            .patch(format!("{}/posts/{id}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE /posts/{id}`.
    pub async fn delete(&self, token: &str, id: &str) -> Response {
        self.http
            .delete(format!("{}/posts/{id}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// The access token of a password grant.
pub async fn access_token(app: &helpers::TestApp, email: &str) -> String {
    app.password_tokens(email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}
