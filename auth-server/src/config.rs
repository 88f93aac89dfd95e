//! Settings: command-line flags, then `AUTH_*` environment variables (a `.env` file in the
//! working directory is loaded into the environment first, without overriding it), then
//! defaults that work on a fresh checkout.

use std::{path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use url::Url;

use crate::domain::RedirectUri;

/// A space-separated list of redirect URIs, validated like a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUris(pub Vec<RedirectUri>);

fn parse_redirect_uris(value: &str) -> Result<RedirectUris, String> {
    value
        .split_whitespace()
        .map(RedirectUri::parse)
        .collect::<Result<Vec<_>, _>>()
        .map(RedirectUris)
}

/// Everything the auth server needs to run, grouped by concern.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Listen address, `host:port`; port 0 picks any free port (the chosen one is logged).
    #[arg(
        long,
        env = "AUTH_BIND",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind: String,

    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    #[arg(
        long,
        env = "AUTH_DATABASE_URL",
        default_value = "sqlite://data/auth.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// Connections for reads. SQLite writes always go through one more connection of
    /// their own; on PostgreSQL reads and writes share this pool.
    #[arg(
        long,
        env = "AUTH_DATABASE_MAX_CONNECTIONS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        global = true
    )]
    pub database_max_connections: u32,

    /// The `iss` of every token and the base of the URLs in the metadata document.
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8000", value_parser = parse_issuer, global = true)]
    pub issuer: Url,

    /// The `aud` of every access token.
    #[arg(
        long,
        env = "AUTH_AUDIENCE",
        default_value = "posts-api",
        global = true
    )]
    pub audience: String,

    /// Directory holding the signing keys (private keys are written with mode 0600).
    #[arg(long, env = "AUTH_KEYS_DIR", default_value = "keys", global = true)]
    pub keys_dir: PathBuf,

    /// Size of generated RSA keys in bits.
    #[arg(long, env = "AUTH_KEY_BITS", default_value_t = 2048, value_parser = parse_key_bits, global = true)]
    pub key_bits: usize,

    /// How often the running server re-reads the key store, so that a key added, scheduled
    /// or revoked by `auth-server keys …` (or another replica) is used without a restart.
    /// Seconds.
    #[arg(long, env = "AUTH_KEYS_RELOAD_INTERVAL", default_value = "5", value_parser = parse_seconds, global = true)]
    pub keys_reload_interval: Duration,

    /// Rotate the signing key automatically when it has signed for this many days (checked
    /// at every keys reload; scheduled like `keys rotate`, once however many replicas run).
    /// Off when unset.
    #[arg(long, env = "AUTH_KEY_ROTATION_DAYS", value_parser = parse_days, global = true)]
    pub key_rotation_days: Option<Duration>,

    /// How long a key is published in the JWKS before it may sign, in seconds, so that
    /// verifiers have it cached before its first token arrives. Default: the JWKS max-age
    /// plus 60. Shorter than the max-age is allowed, with a warning in the log.
    #[arg(long, env = "AUTH_KEY_PUBLISH_LEAD", value_parser = parse_seconds, global = true)]
    pub key_publish_lead: Option<Duration>,

    /// Where the signing keys are kept: `files` (the keys directory) or `database` (the
    /// auth database, private keys encrypted; for replicas without a shared disk).
    #[arg(long, env = "AUTH_KEYS_STORE", value_enum, default_value_t = KeyStoreKind::Files, global = true)]
    pub keys_store: KeyStoreKind,

    /// The key that encrypts private keys in the database (AES-256-GCM): 32 bytes in
    /// standard base64, for example from `openssl rand -base64 32`. Required with
    /// `--keys-store database`; every replica needs the same one.
    #[arg(long, env = "AUTH_KEYS_ENCRYPTION_KEY", hide_env_values = true, value_parser = parse_secret, global = true)]
    pub keys_encryption_key: Option<Secret>,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "AUTH_ACCESS_TOKEN_TTL", default_value = "900", value_parser = parse_seconds, global = true)]
    pub access_token_ttl: Duration,

    /// Absolute lifetime of a login (a refresh-token family) in seconds.
    #[arg(long, env = "AUTH_REFRESH_TOKEN_TTL", default_value = "2592000", value_parser = parse_seconds, global = true)]
    pub refresh_token_ttl: Duration,

    /// Lifetime of an authorization code in seconds (RFC 6749 §4.1.2 recommends at most 10
    /// minutes; a browser redirect and a code exchange take a second or two).
    #[arg(long, env = "AUTH_CODE_TTL", default_value = "60", value_parser = parse_seconds, global = true)]
    pub code_ttl: Duration,

    /// Lifetime of a browser session (single sign-on) in seconds, counted from the last
    /// sign-in.
    #[arg(long, env = "AUTH_SESSION_TTL", default_value = "36000", value_parser = parse_seconds, global = true)]
    pub session_ttl: Duration,

    /// Lifetime of an OpenID Connect ID token in seconds.
    #[arg(long, env = "AUTH_ID_TOKEN_TTL", default_value = "3600", value_parser = parse_seconds, global = true)]
    pub id_token_ttl: Duration,

    /// Redirect URIs of the built-in client `posts-web` (posts-server's Swagger UI),
    /// space-separated. They replace whatever is stored for it.
    #[arg(
        long,
        env = "AUTH_POSTS_WEB_REDIRECT_URIS",
        default_value = "http://127.0.0.1:8001/docs/oauth-receiver.html http://localhost:8001/docs/oauth-receiver.html",
        value_parser = parse_redirect_uris,
        global = true
    )]
    pub posts_web_redirect_uris: RedirectUris,

    /// `Cache-Control: max-age` of the JWKS answer, in seconds. Keep it well below the
    /// access-token lifetime so resource servers see a rotated key soon.
    #[arg(long, env = "AUTH_JWKS_MAX_AGE", default_value = "300", value_parser = parse_seconds, global = true)]
    pub jwks_max_age: Duration,

    /// Argon2id parameters for user passwords. The defaults are the OWASP / ASVS 5.0
    /// minimum (m = 19456 KiB, t = 2, p = 1); only lower them in tests.
    #[command(flatten)]
    pub argon2: Argon2Settings,

    /// Brute-force throttling of the password grant.
    #[command(flatten)]
    pub throttle: ThrottleSettings,

    /// Take the client address for throttling from the first `X-Forwarded-For` entry.
    /// Only enable behind a proxy that sets that header itself.
    #[arg(
        long,
        env = "AUTH_TRUST_FORWARDED_FOR",
        default_value_t = false,
        global = true
    )]
    pub trust_forwarded_for: bool,

    /// Longest time a client may take to send a request (headers and body), and to send
    /// the next one on a kept-alive connection, in seconds; slower connections are closed.
    #[arg(long, env = "AUTH_REQUEST_TIMEOUT", default_value = "10", value_parser = parse_seconds, global = true)]
    pub request_timeout: Duration,

    /// Origins allowed to call the token endpoint from a browser (comma-separated),
    /// for example the Swagger UI of posts-server.
    #[arg(
        long,
        env = "AUTH_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8001,http://localhost:8001",
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Largest accepted request body in bytes; larger ones get 413.
    #[arg(long, env = "AUTH_MAX_BODY_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Largest accepted total size of request header names and values; larger gets 431.
    #[arg(long, env = "AUTH_MAX_HEADER_BYTES", default_value_t = 16 * 1024, global = true)]
    pub max_header_bytes: usize,

    /// Log format.
    #[arg(long, env = "AUTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, Args)]
pub struct Argon2Settings {
    /// Memory cost in KiB.
    #[arg(
        long = "argon2-memory-kib",
        env = "AUTH_ARGON2_MEMORY_KIB",
        default_value_t = 19_456,
        global = true
    )]
    pub memory_kib: u32,
    /// Number of passes.
    #[arg(
        long = "argon2-iterations",
        env = "AUTH_ARGON2_ITERATIONS",
        default_value_t = 2,
        global = true
    )]
    pub iterations: u32,
    /// Degree of parallelism.
    #[arg(
        long = "argon2-parallelism",
        env = "AUTH_ARGON2_PARALLELISM",
        default_value_t = 1,
        global = true
    )]
    pub parallelism: u32,
}

/// Brute-force throttling (see `throttle.rs` for the policy).
#[derive(Debug, Clone, Copy, Args)]
pub struct ThrottleSettings {
    /// Consecutive failed logins before an account is locked.
    #[arg(
        long = "login-max-failures",
        env = "AUTH_LOGIN_MAX_FAILURES",
        default_value_t = 5,
        global = true
    )]
    pub max_failures: u32,
    /// First lock duration in seconds; it doubles with every further failure.
    #[arg(long = "login-lockout-base", env = "AUTH_LOGIN_LOCKOUT_BASE", default_value = "2", value_parser = parse_seconds, global = true)]
    pub lockout_base: Duration,
    /// Longest lock duration in seconds.
    #[arg(long = "login-lockout-max", env = "AUTH_LOGIN_LOCKOUT_MAX", default_value = "60", value_parser = parse_seconds, global = true)]
    pub lockout_max: Duration,
    /// Seconds after which earlier failures of an account no longer count.
    #[arg(long = "login-reset-after", env = "AUTH_LOGIN_RESET_AFTER", default_value = "900", value_parser = parse_seconds, global = true)]
    pub reset_after: Duration,
    /// Failed logins allowed from one client address per window, across all accounts.
    #[arg(
        long = "login-ip-budget",
        env = "AUTH_LOGIN_IP_BUDGET",
        default_value_t = 300,
        global = true
    )]
    pub ip_budget: u32,
    /// The client-address window in seconds.
    #[arg(long = "login-ip-window", env = "AUTH_LOGIN_IP_WINDOW", default_value = "300", value_parser = parse_seconds, global = true)]
    pub ip_window: Duration,
}

impl ThrottleSettings {
    /// The policy these settings describe.
    pub fn policy(&self) -> crate::throttle::ThrottlePolicy {
        crate::throttle::ThrottlePolicy {
            max_failures: self.max_failures.max(1),
            lockout_base: self.lockout_base,
            lockout_max: self.lockout_max.max(self.lockout_base),
            reset_after: self.reset_after,
            ip_budget: self.ip_budget.max(1),
            ip_window: self.ip_window,
        }
    }
}

/// Where the signing keys are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyStoreKind {
    /// `<kid>.pem` and `<kid>.json` in the keys directory.
    Files,
    /// The `signing_keys` table of the auth database.
    Database,
}

/// A setting that must never be printed: its `Debug` hides it. It is parsed where it is
/// used, so that not even a parse error repeats it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn parse_secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Settings {
    /// The issuer as it appears in `iss` and in the metadata: no trailing slash.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// How long a key is published before it signs: `AUTH_KEY_PUBLISH_LEAD`, by default
    /// the JWKS max-age plus a minute, so that even a verifier that fetched the key set
    /// just before the key was written has refetched it by then.
    pub fn key_publish_lead(&self) -> Duration {
        self.key_publish_lead
            .unwrap_or(self.jwks_max_age + Duration::from_secs(60))
    }

    /// An absolute URL under the issuer, such as the token endpoint.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer_str(), path)
    }
}

const MAX_SECONDS: u64 = 10 * 365 * 86_400;

fn parse_seconds(value: &str) -> Result<Duration, String> {
    let secs: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number of seconds"))?;
    if secs == 0 {
        return Err("must be at least 1 second".into());
    }
    // Lifetimes are added to the current time; ten years keeps every sum representable.
    if secs > MAX_SECONDS {
        return Err(format!("must be at most {MAX_SECONDS} seconds (ten years)"));
    }
    Ok(Duration::from_secs(secs))
}

fn parse_days(value: &str) -> Result<Duration, String> {
    let days: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number of days"))?;
    if days == 0 {
        return Err("must be at least 1 day".into());
    }
    if days > MAX_SECONDS / 86_400 {
        return Err("must be at most ten years".into());
    }
    Ok(Duration::from_secs(days * 86_400))
}

fn parse_key_bits(value: &str) -> Result<usize, String> {
    match value.trim() {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        "4096" => Ok(4096),
        _ => Err("RSA key size must be 2048, 3072 or 4096".into()),
    }
}

fn parse_issuer(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the issuer must be an http or https URL".into());
    }
    // RFC 8414 §2: the issuer has no query or fragment.
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the issuer must not have a query or fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_must_be_positive_whole_numbers() {
        assert_eq!(parse_seconds("900").unwrap(), Duration::from_secs(900));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("1.5").is_err());
        assert!(parse_seconds("100000000000000").is_err());
        assert!(parse_days("1000000").is_err());
    }

    #[test]
    fn issuer_must_be_http_without_query() {
        assert!(parse_issuer("https://auth.example.com").is_ok());
        assert!(parse_issuer("ftp://auth.example.com").is_err());
        assert!(parse_issuer("https://auth.example.com/?a=b").is_err());
    }

    #[test]
    fn posts_web_redirect_uris_are_validated() {
        assert_eq!(
            parse_redirect_uris("http://127.0.0.1:9/cb  https://a.example/cb")
                .unwrap()
                .0
                .len(),
            2
        );
        assert!(parse_redirect_uris("http://example.com/cb").is_err());
        assert!(parse_redirect_uris("").unwrap().0.is_empty());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let shown = format!("{:?}", Some(Secret::new("hunter2")));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn only_standard_rsa_sizes_are_accepted() {
        assert_eq!(parse_key_bits("3072").unwrap(), 3072);
        assert!(parse_key_bits("1024").is_err());
    }
}
