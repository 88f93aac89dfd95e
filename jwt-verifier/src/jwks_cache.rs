//! The cached key set: which public keys may verify an access token, chosen by `kid`.
//!
//! The cache is the only link to the auth server, so it is built to survive it: a failed
//! fetch keeps the last good set, the first fetch is retried with backoff while the server
//! already serves, and an unknown `kid` refetches at most once per cooldown however many
//! tokens carry random kids.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use tokio::task::JoinHandle;
use url::Url;

use crate::jwks::{JwksError, KeyMap, fetch_remote, read_file};
use crate::observer::{FetchTrigger, Observer};

/// Longest wait between refreshes, whatever `max-age` says.
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Longest wait between retries after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where the verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS endpoint (RFC 7517), such as `{issuer}/.well-known/jwks.json`.
    Url(Url),
    /// A local file: a JWKS document, or one RSA public key in PEM (`PUBLIC KEY` or
    /// `RSA PUBLIC KEY`) whose kid is taken to be its RFC 7638 SHA-256 thumbprint. No
    /// network is needed at all.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => write!(f, "{url}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A shared, cheaply cloned handle on the key set. Clones share one set, one refresher
/// and one unknown-kid cooldown.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    keys: RwLock<Option<Arc<KeySet>>>,
    // Held during an unknown-kid refetch (single flight); holds when the last one started.
    refetch_gate: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
    refresh: Duration,
    retry: Duration,
    observer: Arc<dyn Observer>,
}

enum Source {
    Remote { client: reqwest::Client, url: Url },
    File(PathBuf),
}

struct KeySet {
    keys: KeyMap,
    loaded_at: Instant,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            Source::Remote { url, .. } => KeySource::Url(url.clone()),
            Source::File(path) => KeySource::File(path.clone()),
        };
        f.debug_struct("JwksCache")
            .field("source", &source)
            .field("key_count", &self.key_count())
            .field("age", &self.age())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`JwksCache`], from [`JwksCache::builder`].
#[must_use]
pub struct JwksCacheBuilder {
    source: KeySource,
    refresh: Duration,
    cooldown: Duration,
    fetch_timeout: Duration,
    retry: Duration,
    user_agent: String,
    observer: Arc<dyn Observer>,
}

impl JwksCacheBuilder {
    /// How often to refresh when the key set's response carries no `Cache-Control:
    /// max-age` (default 10 minutes). File sources are re-read this often.
    pub fn refresh(mut self, interval: Duration) -> Self {
        self.refresh = interval;
        self
    }

    /// Minimum time between refetches triggered by an unknown `kid` (default 30 s); also
    /// the floor for `max-age`, so a misconfigured server cannot make the cache poll it in
    /// a loop.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Time limit for one fetch (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// First retry delay after a failed fetch (default 1 s); it doubles up to one minute,
    /// or the refresh interval if that is shorter.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = delay;
        self
    }

    /// The `User-Agent` of fetches (default `jwt-verifier/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Who hears about fetches and, through every [`TokenVerifier`](crate::TokenVerifier)
    /// built on this cache, about refused tokens (default: nobody).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// A cache with nothing loaded yet; call [`JwksCache::load`] or
    /// [`JwksCache::spawn_refresher`].
    pub fn build(self) -> Result<JwksCache, JwksError> {
        let source = match self.source {
            KeySource::File(path) => Source::File(path),
            KeySource::Url(url) => {
                let client = reqwest::Client::builder()
                    .timeout(self.fetch_timeout)
                    .connect_timeout(self.fetch_timeout)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    // Fetches are minutes apart; a pooled connection would only go stale.
                    .pool_max_idle_per_host(0)
                    .user_agent(self.user_agent)
                    .build()
                    .map_err(|error| JwksError::Client(error.into()))?;
                Source::Remote { client, url }
            }
        };
        Ok(JwksCache {
            inner: Arc::new(Inner {
                source,
                keys: RwLock::new(None),
                refetch_gate: tokio::sync::Mutex::new(None),
                cooldown: self.cooldown,
                refresh: self.refresh,
                retry: self.retry.max(Duration::from_millis(10)),
                observer: self.observer,
            }),
        })
    }
}

/// The answer to "which key has this kid?".
pub(crate) enum KeyLookup {
    /// The key to verify with.
    Found(Arc<DecodingKey>),
    /// A key set is loaded but has no such kid, even after a refetch (or within cooldown).
    UnknownKid,
    /// No key set has ever been loaded.
    NoKeySet,
}

impl JwksCache {
    /// Settings for a cache of the keys at `source`, with the defaults of
    /// [`JwksCacheBuilder`].
    pub fn builder(source: KeySource) -> JwksCacheBuilder {
        JwksCacheBuilder {
            source,
            refresh: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            retry: Duration::from_secs(1),
            user_agent: concat!("jwt-verifier/", env!("CARGO_PKG_VERSION")).to_owned(),
            observer: Arc::new(()),
        }
    }

    /// Whether the keys come from a local file rather than a URL. A file is best loaded
    /// before serving, so that a broken one stops the service at once.
    pub fn is_file_backed(&self) -> bool {
        matches!(self.inner.source, Source::File(_))
    }

    /// Fetches (or reads) the key set now and installs it; on failure the previous set
    /// stays. Returns the `max-age` the server asked for, if any.
    pub async fn load(&self) -> Result<Option<Duration>, JwksError> {
        self.load_for(FetchTrigger::Startup).await
    }

    async fn load_for(&self, trigger: FetchTrigger) -> Result<Option<Duration>, JwksError> {
        let result = match &self.inner.source {
            Source::Remote { client, url } => fetch_remote(client, url).await,
            Source::File(path) => read_file(path).await.map(|keys| (keys, None)),
        };
        self.inner
            .observer
            .key_set_fetched(trigger, result.as_ref().map(|(keys, _)| keys.len()));
        let (keys, max_age) = result?;
        self.install(keys);
        Ok(max_age)
    }

    pub(crate) fn observer(&self) -> &dyn Observer {
        &*self.inner.observer
    }

    /// Keeps the key set fresh until the task is aborted: first load after `first_delay`,
    /// then again when `max-age` (or the refresh interval) runs out, and after a failure
    /// with exponential backoff. Needs a Tokio runtime; dropping the handle does not stop
    /// the task, aborting it does.
    pub fn spawn_refresher(&self, first_delay: Duration) -> JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(first_delay).await;
            let mut backoff = cache.inner.retry;
            let max_backoff = cache.inner.refresh.min(MAX_BACKOFF).max(cache.inner.retry);
            loop {
                let wait = match cache.load_for(FetchTrigger::Background).await {
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
                        backoff = backoff.saturating_mul(2).min(max_backoff);
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
    pub(crate) async fn key_for(&self, kid: &str) -> KeyLookup {
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
        if let Err(error) = self.load_for(FetchTrigger::UnknownKid).await {
            tracing::warn!(error = %error_chain(&error), "cannot refetch the key set for an unknown kid");
        }
        drop(last_refetch);
        self.lookup(kid)
            .map_or_else(|| self.miss(), KeyLookup::Found)
    }

    /// The key the set in use holds under `kid`, without any fetch.
    pub(crate) fn cached_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.lookup(kid)
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

/// `error: cause: cause...`, for logs.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |error| error.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
