//! What the crate's integration tests share: signing keys, a JWKS server that can be
//! changed and stopped, key files, and an observer that writes down what it hears.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jwt_verifier::testing::TestIssuer;
use jwt_verifier::{FetchTrigger, JwksError, Observer, Rejection, ScopeSet};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, Server, get, handler};
use url::Url;

pub const ISSUER: &str = "https://auth.example.com";
pub const AUDIENCE: &str = "orders-api";

/// Two signing keys of the same issuer, generated once per test binary.
pub fn signers() -> &'static [TestIssuer; 2] {
    static SIGNERS: OnceLock<[TestIssuer; 2]> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        [
            TestIssuer::new(ISSUER, AUDIENCE),
            TestIssuer::new(ISSUER, AUDIENCE),
        ]
    })
}

/// The key the verifiers trust from the start.
pub fn primary() -> &'static TestIssuer {
    &signers()[0]
}

/// A key published later (a rotation), or never (a forger's).
pub fn second() -> &'static TestIssuer {
    &signers()[1]
}

/// A JWKS document holding the public keys of `signers`.
pub fn jwks_of(signers: &[&TestIssuer]) -> String {
    let keys: Vec<serde_json::Value> = signers
        .iter()
        .map(|signer| {
            let doc: serde_json::Value = serde_json::from_str(&signer.jwks()).expect("JWKS");
            doc["keys"][0].clone()
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// `contents` in a file of a fresh temporary directory (kept alive by the guard).
pub fn key_file(contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys");
    std::fs::write(&path, contents).expect("write key file");
    (dir, path)
}

/// Everything an [`Observer`] heard, as short strings: `fetch:<trigger>:<ok|failed>`,
/// `rejected:<label>`, `scope:<required>`.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    pub fn events(&self) -> Vec<String> {
        self.0.lock().expect("recorder").clone()
    }

    fn push(&self, event: String) {
        self.0.lock().expect("recorder").push(event);
    }
}

impl Observer for Recorder {
    fn key_set_fetched(&self, trigger: FetchTrigger, outcome: Result<usize, &JwksError>) {
        let outcome = if outcome.is_ok() { "ok" } else { "failed" };
        self.push(format!("fetch:{trigger}:{outcome}"));
    }

    fn token_rejected(&self, rejection: &Rejection) {
        self.push(format!("rejected:{}", rejection.label()));
    }

    fn insufficient_scope(&self, required: &ScopeSet, _granted: &ScopeSet) {
        self.push(format!("scope:{required}"));
    }
}

#[derive(Default)]
struct ServerState {
    document: Mutex<String>,
    cache_control: Mutex<Option<String>>,
    down: AtomicBool,
    fetches: AtomicUsize,
}

/// A JWKS endpoint on a free port whose document, `Cache-Control` and health can be
/// changed while it runs.
pub struct JwksServer {
    pub url: Url,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

#[handler]
fn jwks(state: Data<&Arc<ServerState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return Response::builder()
            .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
            .finish();
    }
    let mut response = Response::builder().content_type("application/jwk-set+json");
    if let Some(value) = state.cache_control.lock().expect("state").clone() {
        response = response.header("cache-control", value);
    }
    response.body(state.document.lock().expect("state").clone())
}

impl JwksServer {
    pub async fn start(document: String) -> Self {
        let state = Arc::new(ServerState::default());
        *state.document.lock().expect("state") = document;
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let address = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let app = Route::new().at("/jwks.json", get(jwks)).data(state.clone());
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            url: format!("http://{address}/jwks.json").parse().expect("URL"),
            state,
            task,
        }
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn publish(&self, document: String) {
        *self.state.document.lock().expect("state") = document;
    }

    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().expect("state") = Some(value.to_owned());
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
