//! A tiny JWKS endpoint the test controls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Response, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A tiny JWKS endpoint the test controls: which keys it serves, whether it fails, and how
/// many times it was asked.
pub struct JwksServer {
    /// `http://127.0.0.1:<port>/jwks.json`.
    pub url: String,
    state: Arc<Mutex<JwksState>>,
    fetches: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct JwksState {
    keys: Vec<Value>,
    status: u16,
    max_age: Option<u64>,
}

impl JwksServer {
    /// Serves `keys` with `Cache-Control: public, max-age=600`.
    pub async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(JwksState {
            keys,
            status: 200,
            max_age: Some(600),
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let endpoint = {
            let state = state.clone();
            let fetches = fetches.clone();
            poem::endpoint::make_sync(move |_req| {
                fetches.fetch_add(1, Ordering::SeqCst);
                let state = state.lock().expect("JWKS state");
                let mut response = Response::builder()
                    .status(StatusCode::from_u16(state.status).expect("status"))
                    .content_type("application/json");
                if let Some(max_age) = state.max_age {
                    response =
                        response.header("cache-control", format!("public, max-age={max_age}"));
                }
                response.body(json!({ "keys": state.keys }).to_string())
            })
        };
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the JWKS server");
        let address = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("socket address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = poem::Route::new().at("/jwks.json", endpoint);
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Self {
            url: format!("http://{address}/jwks.json"),
            state,
            fetches,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// How many times the key set was requested.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Serves these keys from now on.
    pub fn set_keys(&self, keys: Vec<Value>) {
        self.state.lock().expect("JWKS state").keys = keys;
    }

    /// Answers with this status from now on (500 simulates a broken auth server).
    pub fn set_status(&self, status: u16) {
        self.state.lock().expect("JWKS state").status = status;
    }

    /// Sends this `max-age` (or no `Cache-Control`) from now on.
    pub fn set_max_age(&self, max_age: Option<u64>) {
        self.state.lock().expect("JWKS state").max_age = max_age;
    }

    /// Stops listening: connections are refused from now on.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
