//! `spawn_app()`: the real server on port 0 with a fresh database and keys directory.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use auth_server::{
    clients,
    config::{Argon2Settings, KeyStoreKind, LogFormat, Settings, ThrottleSettings},
    keys::{KeyFiles, rotation},
    startup::Application,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The redirect URI of `posts-web` in tests.
pub const POSTS_WEB_REDIRECT_URI: &str = "http://127.0.0.1:8001/docs/oauth-receiver.html";

/// Default password of users created by [`TestApp::signed_up_user`].
pub const PASSWORD: &str = "correct horse battery staple";

/// A running auth server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The settings it runs with (port 0 resolved in `address`).
    pub settings: Settings,
    /// Plain HTTP client.
    pub http: reqwest::Client,
    /// The database URL, for a second replica or the CLI.
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _database: Option<PostgresDatabase>,
}

/// An active and a next key generated once per test binary and copied into each test's
/// keys directory: RSA key generation is too slow to repeat in every test.
fn template_keys() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = KeyFiles::new(dir.path());
        // Called from inside a test's runtime, which cannot block: use a runtime of its own.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(rotation::ensure_keys(&files, 2048))
        })
        .join()
        .unwrap()
        .expect("key generation");
        dir
    })
    .path()
}

fn copy_keys(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(template_keys()).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).unwrap();
    }
}

/// The encryption key of the tests that keep keys in the database.
pub const ENCRYPTION_KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

/// Keeps the signing keys in the database, encrypted under [`ENCRYPTION_KEY`].
pub fn database_store(settings: &mut Settings) {
    settings.keys_store = KeyStoreKind::Database;
    settings.keys_encryption_key = Some(auth_server::config::Secret::new(ENCRYPTION_KEY));
}

/// Settings for a test: port 0, files under `dir`, light Argon2 parameters.
pub fn test_settings(dir: &Path, database_url: String) -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        database_url,
        database_max_connections: 4,
        issuer: "http://127.0.0.1:8000".parse().unwrap(),
        audience: "posts-api".into(),
        keys_dir: dir.join("keys"),
        key_bits: 2048,
        keys_reload_interval: Duration::from_secs(1),
        key_rotation_days: None,
        key_publish_lead: None,
        keys_store: KeyStoreKind::Files,
        keys_encryption_key: None,
        access_token_ttl: Duration::from_secs(900),
        code_ttl: Duration::from_secs(60),
        session_ttl: Duration::from_secs(36_000),
        id_token_ttl: Duration::from_secs(3600),
        posts_web_redirect_uris: auth_server::config::RedirectUris(vec![
            auth_server::domain::RedirectUri::parse(POSTS_WEB_REDIRECT_URI).unwrap(),
        ]),
        refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
        jwks_max_age: Duration::from_secs(300),
        // Tests need not pay production Argon2 costs; production never takes this path.
        argon2: Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
        throttle: ThrottleSettings {
            max_failures: 5,
            lockout_base: Duration::from_secs(2),
            lockout_max: Duration::from_secs(60),
            reset_after: Duration::from_secs(900),
            ip_budget: 300,
            ip_window: Duration::from_secs(300),
        },
        trust_forwarded_for: false,
        request_timeout: Duration::from_secs(10),
        cors_origins: vec!["http://127.0.0.1:8001".into()],
        max_body_bytes: 64 * 1024,
        max_header_bytes: 16 * 1024,
        log_format: LogFormat::Text,
    }
}

/// A fresh server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A fresh server whose settings `customise` may change.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, database) = match PostgresDatabase::create().await {
        Some(db) => (db.url.clone(), Some(db)),
        None => (
            format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display()),
            None,
        ),
    };
    let mut app = spawn_app_on(dir, database_url, customise).await;
    app._database = database;
    app
}

/// A fresh server on a database the test manages itself, with `dir` as its directory.
pub async fn spawn_app_on(
    dir: tempfile::TempDir,
    database_url: String,
    customise: impl FnOnce(&mut Settings),
) -> TestApp {
    copy_keys(&dir.path().join("keys"));
    let mut settings = test_settings(dir.path(), database_url.clone());
    customise(&mut settings);
    let mut app = start(settings.clone()).await;
    app.database_url = database_url;
    app._dir = dir;
    app
}

/// Starts a server with exactly these settings (for a second replica on one database).
pub async fn start(settings: Settings) -> TestApp {
    let application = Application::build(settings.clone())
        .await
        .expect("server builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(application.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        database_url: settings.database_url.clone(),
        settings,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown: Some(tx),
        server: Some(server),
        _dir: tempfile::tempdir().unwrap(),
        _database: None,
    }
}

impl TestApp {
    /// Stops the server and waits until it has drained.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// `POST /users` with any JSON.
    pub async fn post_users(&self, body: &Value) -> Response {
        self.http
            .post(format!("{}/users", self.address))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Signs up a user with [`PASSWORD`] and returns the response body.
    pub async fn signed_up_user(&self, email: &str) -> Value {
        let resp = self
            .post_users(&json!({"email": email, "password": PASSWORD, "full_name": "Test User"}))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    /// `POST /oauth/token` with form fields and no client authentication.
    pub async fn post_token(&self, form: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}/oauth/token", self.address))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `POST /oauth/token` with HTTP Basic client authentication.
    pub async fn post_token_basic(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.http
            .post(format!("{}/oauth/token", self.address))
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A password grant for `email` with `password`, no client authentication.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_token(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .await
    }

    /// A successful password grant's body.
    pub async fn password_tokens(&self, email: &str) -> Value {
        self.password_tokens_asking(email, &[]).await
    }

    /// A password grant for `email` with more form fields (say a `scope`), which must
    /// succeed.
    pub async fn password_tokens_asking(&self, email: &str, more: &[(&str, &str)]) -> Value {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", email),
            ("password", PASSWORD),
        ];
        form.extend_from_slice(more);
        let resp = self.post_token(&form).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// A refresh grant.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// `GET /users/me` with a bearer token.
    pub async fn get_me(&self, token: &str) -> Response {
        self.http
            .get(format!("{}/users/me", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET` any path.
    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// `GET /.well-known/jwks.json` as JSON.
    pub async fn get_jwks(&self) -> Value {
        self.get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap()
    }

    /// `POST` a form to `path` with HTTP Basic client authentication.
    pub async fn post_form_basic(
        &self,
        path: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.http
            .post(format!("{}{path}", self.address))
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Introspects `token` as the confidential client `id`/`secret`.
    pub async fn introspect(&self, id: &str, secret: &str, token: &str) -> Value {
        let resp = self
            .post_form_basic("/oauth/introspect", id, secret, &[("token", token)])
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Registers a client directly (the CLI calls the same function) and returns its secret.
    pub async fn create_client(
        &self,
        id: &str,
        confidential: bool,
        grants: &[&str],
        scopes: &str,
    ) -> Option<String> {
        let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        self.register_client(clients::NewClient {
            client_id: id.into(),
            confidential,
            grant_types: grants,
            scopes: scopes.into(),
            ..Default::default()
        })
        .await
    }

    /// Registers any client (the CLI calls the same function) and returns its secret.
    pub async fn register_client(&self, new: clients::NewClient) -> Option<String> {
        let db = auth_server::db::connect(&self.database_url).await.unwrap();
        clients::register(&db, new)
            .await
            .expect("client registered")
            .client_secret
    }

    /// The keys directory.
    pub fn keys_dir(&self) -> PathBuf {
        self.settings.keys_dir.clone()
    }

    /// Runs `auth-server <args>` on this server's database and key store.
    pub fn admin(&self, args: &[&str]) -> (i32, Value) {
        admin(&self.settings, args)
    }
}

/// Runs `auth-server <args>` with `settings`' database and key settings, as an operator
/// would, and returns the exit code and the JSON it printed.
pub fn admin(settings: &Settings, args: &[&str]) -> (i32, Value) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"));
    command
        .args(args)
        .env("AUTH_DATABASE_URL", &settings.database_url)
        .env("AUTH_KEYS_DIR", &settings.keys_dir)
        .env(
            "AUTH_KEYS_STORE",
            match settings.keys_store {
                KeyStoreKind::Files => "files",
                KeyStoreKind::Database => "database",
            },
        )
        .env(
            "AUTH_JWKS_MAX_AGE",
            settings.jwks_max_age.as_secs().to_string(),
        )
        .env(
            "AUTH_KEY_PUBLISH_LEAD",
            settings.key_publish_lead().as_secs().to_string(),
        )
        .env_remove("AUTH_KEYS_ENCRYPTION_KEY")
        .env("RUST_LOG", "warn");
    if let Some(key) = &settings.keys_encryption_key {
        command.env("AUTH_KEYS_ENCRYPTION_KEY", key.expose());
    }
    let output = command.output().expect("auth-server runs");
    // Shown with a failing test: what the command said besides its JSON (a usage error
    // from clap exits with 2 and says why only on stderr).
    eprintln!(
        "auth-server {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    };
    (output.status.code().unwrap(), json)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A database of its own on the PostgreSQL server named by `TEST_POSTGRES_URL`, dropped
/// when the test ends. Without that variable every test uses SQLite.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl PostgresDatabase {
    async fn create() -> Option<Self> {
        Self::create_named("auth").await
    }

    /// A fresh database named `<prefix>_test_…`, if PostgreSQL is enabled.
    pub async fn create_named(prefix: &str) -> Option<Self> {
        let base = std::env::var("TEST_POSTGRES_URL")
            .ok()?
            .trim_end_matches('/')
            .to_owned();
        let admin_url = format!("{base}/postgres");
        let name = format!("{prefix}_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .expect("PostgreSQL reachable");
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        Some(Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a thread with its own runtime can block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Asserts an RFC 6749 §5.2 error answer and returns its body.
pub async fn assert_oauth_error(resp: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "body: {body}");
    body
}

/// Asserts an RFC 9457 problem answer and returns its body.
pub async fn assert_problem(resp: Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}
