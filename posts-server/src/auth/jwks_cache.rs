//! The cached key set: which public keys may verify an access token, chosen by `kid`.
//!
//! The cache is the only link to the auth server, so it is built to survive it: a failed
//! fetch keeps the last good set, the first fetch is retried with backoff while the server
//! already serves, and an unknown `kid` refetches at most once per cooldown however many
//! tokens carry random kids.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use poem::http::header;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::task::JoinHandle;
use url::Url;

use super::jwks::{JwksError, KeyMap, MAX_JWKS_BYTES, cache_max_age, parse_jwks, parse_pem};
use crate::config::{JwksSettings, KeySourceSetting};
use crate::error::error_chain;
use crate::metrics::{FetchLabels, Metrics};

/// Longest wait between refreshes, whatever `max-age` says.
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Longest wait between retries after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A shared, cheaply cloned handle on the key set.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: KeySource,
    keys: RwLock<Option<Arc<KeySet>>>,
    // Held during an unknown-kid refetch (single flight); holds when the last one started.
    refetch_gate: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
    refresh: Duration,
    retry: Duration,
    fetches: Family<FetchLabels, Counter>,
}

enum KeySource {
    Remote { client: reqwest::Client, url: Url },
    File(PathBuf),
}

struct KeySet {
    keys: KeyMap,
    loaded_at: Instant,
}

/// The answer to "which key has this kid?".
pub enum KeyLookup {
    /// The key to verify with.
    Found(Arc<DecodingKey>),
    /// A key set is loaded but has no such kid, even after a refetch (or within cooldown).
    UnknownKid,
    /// No key set has ever been loaded.
    NoKeySet,
}

impl JwksCache {
    /// A cache with nothing loaded yet; call [`JwksCache::load`] or
    /// [`JwksCache::spawn_refresher`].
    pub fn new(
        source: KeySourceSetting,
        settings: &JwksSettings,
        metrics: &Metrics,
    ) -> Result<Self, reqwest::Error> {
        let source = match source {
            KeySourceSetting::File(path) => KeySource::File(path),
            KeySourceSetting::Url(url) => {
                let client = reqwest::Client::builder()
                    .timeout(settings.fetch_timeout)
                    .connect_timeout(settings.fetch_timeout)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    // Fetches are minutes apart; a pooled connection would only go stale.
                    .pool_max_idle_per_host(0)
                    .user_agent(concat!("posts-server/", env!("CARGO_PKG_VERSION")))
                    .build()?;
                KeySource::Remote { client, url }
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                keys: RwLock::new(None),
                refetch_gate: tokio::sync::Mutex::new(None),
                cooldown: settings.cooldown,
                refresh: settings.refresh,
                retry: settings.retry.max(Duration::from_millis(10)),
                fetches: metrics.jwks_fetches.clone(),
            }),
        })
    }

    /// Whether the keys come from a local file (loaded before serving) rather than a URL.
    pub fn is_file_backed(&self) -> bool {
        matches!(self.inner.source, KeySource::File(_))
    }

    /// Fetches (or reads) the key set now and installs it; on failure the previous set
    /// stays. Returns the `max-age` the server asked for, if any.
    pub async fn load(&self, trigger: &'static str) -> Result<Option<Duration>, JwksError> {
        let result = match &self.inner.source {
            KeySource::Remote { client, url } => fetch_remote(client, url).await,
            KeySource::File(path) => read_file(path).await.map(|keys| (keys, None)),
        };
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.inner
            .fetches
            .get_or_create(&FetchLabels { trigger, outcome })
            .inc();
        let (keys, max_age) = result?;
        self.install(keys);
        Ok(max_age)
    }

    /// Keeps the key set fresh until the task is aborted: first load after `first_delay`,
    /// then again when `max-age` (or the refresh interval) runs out, and after a failure
    /// with exponential backoff.
    pub fn spawn_refresher(&self, first_delay: Duration) -> JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(first_delay).await;
            let mut backoff = cache.inner.retry;
            let max_backoff = cache.inner.refresh.min(MAX_BACKOFF).max(cache.inner.retry);
            loop {
                let wait = match cache.load("background").await {
                    Ok(max_age) => {
                        backoff = cache.inner.retry;
                        cache.next_refresh(max_age)
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = %error_chain(&error),
                            retry_in = ?backoff,
                            loaded = cache.is_loaded(),
                            "cannot refresh the key set; keeping the last good one"
                        );
                        let wait = backoff;
                        backoff = (backoff * 2).min(max_backoff);
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// Whether any key set has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.current().is_some()
    }

    /// Time since the key set in use was loaded.
    pub fn age(&self) -> Option<Duration> {
        self.current().map(|set| set.loaded_at.elapsed())
    }

    /// How many keys the set in use holds.
    pub fn key_count(&self) -> usize {
        self.current().map_or(0, |set| set.keys.len())
    }

    /// The key with this kid. An unknown kid refetches the set, at most once per cooldown
    /// and one fetch at a time; everyone waiting on that fetch uses its result.
    pub async fn key_for(&self, kid: &str) -> KeyLookup {
        if let Some(key) = self.lookup(kid) {
            return KeyLookup::Found(key);
        }
        let mut last_refetch = self.inner.refetch_gate.lock().await;
        // Whoever held the gate may just have fetched the key we want.
        if let Some(key) = self.lookup(kid) {
            return KeyLookup::Found(key);
        }
        if last_refetch.is_some_and(|at| at.elapsed() < self.inner.cooldown) {
            return self.miss();
        }
        *last_refetch = Some(Instant::now());
        if let Err(error) = self.load("unknown_kid").await {
            tracing::warn!(error = %error_chain(&error), "cannot refetch the key set for an unknown kid");
        }
        drop(last_refetch);
        self.lookup(kid)
            .map_or_else(|| self.miss(), KeyLookup::Found)
    }

    fn lookup(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.current()?.keys.get(kid).cloned()
    }

    fn miss(&self) -> KeyLookup {
        if self.is_loaded() {
            KeyLookup::UnknownKid
        } else {
            KeyLookup::NoKeySet
        }
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        // A panic while holding the lock cannot leave a half-written Option<Arc<_>> behind.
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn install(&self, keys: KeyMap) {
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        let changed = self.current().is_none_or(|old| {
            let mut old_kids: Vec<&str> = old.keys.keys().map(String::as_str).collect();
            old_kids.sort_unstable();
            old_kids != kids
        });
        if changed {
            tracing::info!(kids = ?kids, "key set loaded");
        } else {
            tracing::debug!(kids = ?kids, "key set refreshed, unchanged");
        }
        let set = Arc::new(KeySet {
            keys,
            loaded_at: Instant::now(),
        });
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(set);
    }

    fn next_refresh(&self, max_age: Option<Duration>) -> Duration {
        // The cooldown is also the floor, so `max-age=0` cannot turn into a fetch loop.
        let floor = self.inner.cooldown.min(self.inner.refresh).min(MAX_REFRESH);
        max_age
            .unwrap_or(self.inner.refresh)
            .clamp(floor, MAX_REFRESH)
    }
}

async fn fetch_remote(
    client: &reqwest::Client,
    url: &Url,
) -> Result<(KeyMap, Option<Duration>), JwksError> {
    let mut response = client
        .get(url.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(JwksError::Status(response.status()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(JwksError::TooLarge);
    }
    let max_age = cache_max_age(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((parse_jwks(&body)?, max_age))
}

async fn read_file(path: &Path) -> Result<KeyMap, JwksError> {
    let file_error = |source| JwksError::File {
        path: path.to_owned(),
        source,
    };
    let metadata = tokio::fs::metadata(path).await.map_err(file_error)?;
    if metadata.len() > MAX_JWKS_BYTES as u64 {
        return Err(JwksError::TooLarge);
    }
    let bytes = tokio::fs::read(path).await.map_err(file_error)?;
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        parse_pem(&bytes)
    } else {
        parse_jwks(&bytes)
    }
}
