//! The real `posts-server` binary as a child process, with its JSON logs captured: for the
//! tests that need a process to kill, signal or read the logs of.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::keys::keys;

/// How long the binary may take to migrate and bind (PostgreSQL, a busy CI machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes a JWKS holding the primary test key into `dir`; returns its path.
pub fn write_jwks_file(dir: &Path) -> PathBuf {
    let path = dir.join("jwks.json");
    std::fs::write(&path, json!({ "keys": [keys().primary.jwk] }).to_string())
        .expect("write the JWKS file");
    path
}

/// A running `posts-server` process.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`, parsed from the "posts-server listening" log line.
    pub address: String,
    /// A client that keeps no cookies and follows no redirects.
    pub client: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary on port 0 with `database_url`, keys from `jwks_file`, JSON logs,
    /// and `env` on top; waits until it logs the address it bound.
    pub fn start(database_url: &str, jwks_file: &Path, env: &[(&str, &str)]) -> Self {
        let workdir = jwks_file.parent().expect("the JWKS file's directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_posts-server"));
        command
            // No stray .env from the package directory.
            .current_dir(workdir)
            .env_remove("RUST_LOG")
            .env("POSTS_BIND", "127.0.0.1:0")
            .env("POSTS_DATABASE_URL", database_url)
            .env("POSTS_JWKS_FILE", jwks_file)
            .env("POSTS_LOG_FORMAT", "json")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start posts-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line)
                    && let Some(tx) = address_tx.take()
                {
                    let _ = tx.send(address);
                }
                sink.lock().expect("log lines").push(line);
            }
        });
        let address = match address_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "posts-server did not start; its log:\n{}",
                    log.lock().expect("log lines").join("\n")
                );
            }
        };
        Self {
            child,
            address: format!("http://{address}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            log,
        }
    }

    /// Polls `/readyz` until it answers 200 (panics after 30 s).
    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .client
                .get(format!("{}/readyz", self.address))
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "posts-server never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `host:port`, for raw TCP clients.
    pub fn socket_address(&self) -> &str {
        self.address.trim_start_matches("http://")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`KILL`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// Whether the process has exited yet.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("poll the process").is_some()
    }

    /// Waits for the process to exit (panics after `timeout`).
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "posts-server did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lines").clone()
    }

    /// Every log line so far, parsed (lines that are not JSON are skipped).
    pub fn log_records(&self) -> Vec<Value> {
        self.log()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits (up to 10 s) for a log record matching `predicate` and returns it.
    pub async fn wait_for_log(&self, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(record) = self.log_records().into_iter().find(|r| predicate(r)) {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "no such log line in:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address of a JSON "posts-server listening" line.
fn listening_address(line: &str) -> Option<String> {
    let record: Value = serde_json::from_str(line).ok()?;
    let fields = &record["fields"];
    if fields["message"] != "posts-server listening" {
        return None;
    }
    fields["address"].as_str().map(str::to_owned)
}
