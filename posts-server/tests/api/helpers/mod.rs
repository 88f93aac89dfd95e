//! `spawn_app()` and friends: one real server per test, a key set the test controls, and a
//! `TestApp` with one method per endpoint.

mod binary;
mod database;
mod jwks_server;
mod keys;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use posts_server::config::{
    DatabaseSettings, JwksSettings, LogFormat, ServerSettings, Settings, TelemetrySettings,
    TokenSettings,
};
use posts_server::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use binary::{ServerProcess, write_jwks_file};
pub use database::TestDatabase;
pub use jwks_server::JwksServer;
pub use keys::{
    AUDIENCE, ISSUER, TestKey, at_jwt_header, default_claims, keys, merge, now, sign, token_for,
};

/// A running application and everything a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port the app bound.
    pub port: u16,
    /// A client that keeps no cookies and follows no redirects.
    pub client: reqwest::Client,
    /// The JWKS endpoint the app fetches from (absent in file mode).
    pub jwks: Option<JwksServer>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    // Kept for their Drop; the database goes before the directory holding it.
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

/// Settings for a test app, before the database and key source are filled in.
pub fn test_settings(database_url: &str, jwks_url: Option<String>) -> Settings {
    Settings {
        server: ServerSettings {
            bind: "127.0.0.1:0".parse().expect("address"),
            max_body_bytes: 256 * 1024,
            shutdown_grace: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        },
        database: DatabaseSettings {
            url: database_url.parse().expect("database URL"),
            max_connections: 5,
        },
        token: TokenSettings {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway: Duration::from_secs(30),
            token_url: None,
            authorize_url: None,
        },
        jwks: JwksSettings {
            url: jwks_url.map(|url| url.parse().expect("JWKS URL")),
            file: None,
            refresh: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(2),
            retry: Duration::from_millis(100),
        },
        telemetry: TelemetrySettings {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        },
    }
}

fn init_test_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // TEST_LOG=1 cargo test ... shows the server's logs.
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = posts_server::telemetry::init(&TelemetrySettings {
                filter: "debug,hyper=info,sqlx=warn,reqwest=info".to_owned(),
                format: LogFormat::Text,
            });
        }
    });
}

/// The app with the primary key served over HTTP, ready to take requests.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], after `configure` has adjusted the settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let jwks = JwksServer::start(vec![keys().primary.jwk.clone()]).await;
    let app = launch(Some(jwks), configure).await;
    app.wait_until_ready().await;
    app
}

/// Starts the app without waiting for it to be ready. `jwks` (if any) becomes the key
/// source before `configure` runs.
pub async fn launch(jwks: Option<JwksServer>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase::create(dir.path()).await;
    launch_on(database, dir, jwks, configure).await
}

/// Starts the app on `database`, with `dir` as its temporary directory.
pub async fn launch_on(
    database: TestDatabase,
    dir: tempfile::TempDir,
    jwks: Option<JwksServer>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    init_test_logging();
    let jwks_url = jwks.as_ref().map(|server| server.url.clone());
    let mut settings = test_settings(&database.url, jwks_url);
    configure(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("the application builds");
    let port = application.port();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stop.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client"),
        jwks,
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
        _dir: dir,
    }
}

impl TestApp {
    /// Polls `/readyz` until it answers 200 (panics after 10 s).
    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.get_readyz().await.status() == StatusCode::OK {
                return;
            }
            assert!(Instant::now() < deadline, "the app never became ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the app as SIGTERM would and returns what `run_until` returned.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("the server task"),
            None => Ok(()),
        }
    }

    /// A token for `sub` with every scope, signed with the primary key.
    pub fn token_for(&self, sub: &str) -> String {
        self.mint_token(json!({ "sub": sub }))
    }

    /// A token signed with the primary key: the auth server's claims with `overrides`
    /// merged in (`null` removes a claim).
    pub fn mint_token(&self, overrides: Value) -> String {
        let claims = merge(default_claims("user-1"), overrides);
        sign(&at_jwt_header(&keys().primary), &claims, &keys().primary)
    }

    /// A request to `path` with `token` as bearer, if any.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{}", self.address, path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(builder: reqwest::RequestBuilder) -> reqwest::Response {
        builder.send().await.expect("the request is answered")
    }

    /// `POST /posts` with a JSON body.
    pub async fn post_posts(&self, token: &str, body: &Value) -> reqwest::Response {
        Self::send(
            self.request(reqwest::Method::POST, "/posts", Some(token))
                .json(body),
        )
        .await
    }

    /// `POST /posts` that must succeed; returns the created post.
    pub async fn create_post(&self, token: &str, title: &str, body: &str) -> Value {
        let response = self
            .post_posts(token, &json!({ "title": title, "body": body }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("a post")
    }

    /// `GET /posts` with a raw query string (without `?`).
    pub async fn get_posts(&self, token: &str, query: &str) -> reqwest::Response {
        Self::send(self.request(
            reqwest::Method::GET,
            &format!("/posts?{query}"),
            Some(token),
        ))
        .await
    }

    /// `GET /posts/me` with a raw query string (without `?`).
    pub async fn get_my_posts(&self, token: &str, query: &str) -> reqwest::Response {
        Self::send(self.request(
            reqwest::Method::GET,
            &format!("/posts/me?{query}"),
            Some(token),
        ))
        .await
    }

    /// `GET /posts/{id}`.
    pub async fn get_post(&self, token: &str, id: &str) -> reqwest::Response {
        Self::send(self.request(reqwest::Method::GET, &format!("/posts/{id}"), Some(token))).await
    }

    /// `PATCH /posts/{id}` with a JSON body.
    pub async fn patch_post(&self, token: &str, id: &str, body: &Value) -> reqwest::Response {
        Self::send(
            self.request(reqwest::Method::PATCH, &format!("/posts/{id}"), Some(token))
                .json(body),
        )
        .await
    }

    /// `DELETE /posts/{id}`.
    pub async fn delete_post(&self, token: &str, id: &str) -> reqwest::Response {
        Self::send(self.request(
            reqwest::Method::DELETE,
            &format!("/posts/{id}"),
            Some(token),
        ))
        .await
    }

    /// `GET /healthz`.
    pub async fn get_healthz(&self) -> reqwest::Response {
        Self::send(self.request(reqwest::Method::GET, "/healthz", None)).await
    }

    /// `GET /readyz`.
    pub async fn get_readyz(&self) -> reqwest::Response {
        Self::send(self.request(reqwest::Method::GET, "/readyz", None)).await
    }

    /// `GET /metrics` as text.
    pub async fn get_metrics(&self) -> String {
        Self::send(self.request(reqwest::Method::GET, "/metrics", None))
            .await
            .text()
            .await
            .expect("metrics text")
    }

    /// `GET /openapi.json`.
    pub async fn get_openapi(&self) -> reqwest::Response {
        Self::send(self.request(reqwest::Method::GET, "/openapi.json", None)).await
    }

    /// `GET /docs`.
    pub async fn get_docs(&self) -> reqwest::Response {
        Self::send(self.request(reqwest::Method::GET, "/docs", None)).await
    }
}

/// The `WWW-Authenticate` header of a response, or "" when absent.
pub fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().expect("ASCII header").to_owned())
        .unwrap_or_default()
}

/// The exact challenge for a bad token.
pub const INVALID_TOKEN: &str = "Bearer realm=\"posts-api\", error=\"invalid_token\", error_description=\"The access token is invalid\"";

/// Asserts a response is an RFC 9457 problem with this status; returns the problem.
pub async fn assert_problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type:?}"
    );
    let problem: Value = response.json().await.expect("a JSON problem");
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["type"].is_string(), "{problem}");
    assert!(problem["title"].is_string(), "{problem}");
    assert!(problem["detail"].is_string(), "{problem}");
    problem
}
