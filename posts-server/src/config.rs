//! Settings, read from flags, then `POSTS_*` environment variables, then defaults.
//!
//! Everything is parsed here, at start-up, so a typo in a URL or a duration stops the
//! process before it binds instead of surfacing on the first request.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jwt_verifier::KeySource;
use url::Url;

/// The command line: an optional subcommand plus the settings every subcommand shares.
#[derive(Debug, Parser)]
#[command(
    name = "posts-server",
    version,
    about = "Posts API verifying OAuth2 access tokens offline",
    long_about = "Posts API verifying OAuth2 access tokens offline.\n\n\
        Serves /posts (create, list, read, change, delete), /docs, /openapi.json, /healthz, \
        /readyz and /metrics. Every access token is checked against the auth server's key \
        set (fetched from POSTS_JWKS_URL or read from POSTS_JWKS_FILE). Without a \
        subcommand the server runs.\n\n\
        Every setting is read from its flag, then its POSTS_* environment variable (a .env \
        file in the working directory is read too), then the default.",
    after_help = "Exit status: 0 on success, 1 on failure, 2 on a usage error."
)]
pub struct Cli {
    /// What to do; without a subcommand the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
}

/// Subcommands of the `posts-server` binary.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    ///
    /// Connects to and migrates the database, loads the key set and serves until SIGINT or
    /// SIGTERM, then lets in-flight requests finish within the shutdown grace period.
    Serve,
    /// Apply the pending database migrations and exit.
    ///
    /// Uses the database settings (`--database-url`, POSTS_DATABASE_URL). Prints
    /// `{"migrated":true}` on stdout; on failure prints `{"error":"..."}` and exits with
    /// status 1.
    Migrate,
}

/// Every setting of the server, grouped by concern.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Listening and HTTP behaviour.
    #[command(flatten)]
    pub server: ServerSettings,
    /// Where posts are stored.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// What a valid access token looks like.
    #[command(flatten)]
    pub token: TokenSettings,
    /// Where the verification keys come from and how they are cached.
    #[command(flatten)]
    pub jwks: JwksSettings,
    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// Listening and HTTP behaviour.
#[derive(Debug, Clone, Args)]
pub struct ServerSettings {
    /// Listen address, `host:port`; port 0 picks a free port (the chosen address is logged).
    #[arg(long = "bind", env = "POSTS_BIND", default_value = "127.0.0.1:8001", value_parser = parse_bind, global = true)]
    pub bind: SocketAddr,
    /// Largest accepted request body in bytes; larger bodies get 413. 256 KiB holds a
    /// 100,000-character body of one- and two-byte characters; raise it for scripts whose
    /// characters take three or four bytes in UTF-8.
    #[arg(long, env = "POSTS_MAX_BODY_BYTES", default_value_t = 256 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish after SIGINT or SIGTERM.
    #[arg(long, env = "POSTS_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,
    /// Longest time a client may take to send a request's headers (and to start the next
    /// request on a kept-alive connection), and separately its body; slower headers close
    /// the connection, a slower body gets 408. Keeps slowloris clients from holding
    /// connections open forever.
    #[arg(long, env = "POSTS_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub request_timeout: Duration,
}

/// Where posts are stored.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://user:password@host/db`.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "POSTS_DATABASE_URL",
        default_value = "sqlite://data/posts.db?mode=rwc",
        global = true
    )]
    pub url: DatabaseUrl,
    /// Connections for reads. SQLite writes always go through one more connection of
    /// their own; on PostgreSQL reads and writes share this pool. On an SQLite file the
    /// page query keeps up to as many synchronous readers again.
    #[arg(
        long = "database-max-connections",
        env = "POSTS_DATABASE_MAX_CONNECTIONS",
        default_value_t = 8,
        global = true
    )]
    pub max_connections: u32,
}

/// What a valid access token looks like (RFC 9068).
#[derive(Debug, Clone, Args)]
pub struct TokenSettings {
    /// The expected `iss`, compared byte for byte.
    #[arg(long, env = "POSTS_ISSUER", default_value = "http://127.0.0.1:8000", value_parser = parse_issuer, global = true)]
    pub issuer: String,
    /// The expected `aud`.
    #[arg(
        long,
        env = "POSTS_AUDIENCE",
        default_value = "posts-api",
        global = true
    )]
    pub audience: String,
    /// Clock-skew leeway for `exp` and `nbf` (`30`, `30s`, `1m`; at most a day).
    #[arg(long, env = "POSTS_LEEWAY", default_value = "30", value_parser = parse_duration, global = true)]
    pub leeway: Duration,
    /// The auth server's token endpoint, used by Swagger UI's password flow
    /// (default `{issuer}/oauth/token`).
    #[arg(long, env = "POSTS_TOKEN_URL", global = true)]
    pub token_url: Option<Url>,
    /// The auth server's authorization endpoint, used by Swagger UI's authorization-code
    /// flow (default `{issuer}/oauth/authorize`).
    #[arg(long, env = "POSTS_AUTHORIZE_URL", global = true)]
    pub authorize_url: Option<Url>,
}

/// Where the verification keys come from and how they are cached.
#[derive(Debug, Clone, Args)]
pub struct JwksSettings {
    /// Where to fetch the key set (default `{issuer}/.well-known/jwks.json`).
    #[arg(
        id = "jwks_url",
        long = "jwks-url",
        env = "POSTS_JWKS_URL",
        global = true
    )]
    pub url: Option<Url>,
    /// A local JWKS file, or an RSA public key in PEM, used instead of fetching: no network
    /// needed at all. Takes precedence over the URL.
    #[arg(long = "jwks-file", env = "POSTS_JWKS_FILE", global = true)]
    pub file: Option<PathBuf>,
    /// How often to refresh the key set when the response carries no `Cache-Control: max-age`.
    #[arg(long = "jwks-refresh", env = "POSTS_JWKS_REFRESH", default_value = "10m", value_parser = parse_duration, global = true)]
    pub refresh: Duration,
    /// Minimum time between refetches triggered by an unknown `kid`; also the floor for
    /// `max-age`, so a misconfigured auth server cannot make us poll it in a loop.
    #[arg(long = "jwks-cooldown", env = "POSTS_JWKS_COOLDOWN", default_value = "30s", value_parser = parse_duration, global = true)]
    pub cooldown: Duration,
    /// Time limit for one fetch of the key set.
    #[arg(long = "jwks-timeout", env = "POSTS_JWKS_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub fetch_timeout: Duration,
    /// First retry delay after a failed fetch; doubles up to one minute (or the refresh
    /// interval, if shorter).
    #[arg(long = "jwks-retry", env = "POSTS_JWKS_RETRY", default_value = "1s", value_parser = parse_duration, global = true)]
    pub retry: Duration,
}

/// Logging.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// `tracing` filter directives; `RUST_LOG` wins when set.
    #[arg(long = "log", env = "POSTS_LOG", default_value = "info", global = true)]
    pub filter: String,
    /// Human-readable lines or one JSON object per line.
    #[arg(long = "log-format", env = "POSTS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl TokenSettings {
    /// The token endpoint Swagger UI should call.
    pub fn token_url(&self) -> Result<Url, url::ParseError> {
        self.auth_server_url(&self.token_url, "/oauth/token")
    }

    /// The authorization endpoint Swagger UI should send the browser to.
    pub fn authorize_url(&self) -> Result<Url, url::ParseError> {
        self.auth_server_url(&self.authorize_url, "/oauth/authorize")
    }

    fn auth_server_url(&self, set: &Option<Url>, path: &str) -> Result<Url, url::ParseError> {
        match set {
            Some(url) => Ok(url.clone()),
            None => Url::parse(&format!("{}{path}", self.issuer.trim_end_matches('/'))),
        }
    }
}

impl Settings {
    /// The key source: the file when one is configured, else the URL, else the issuer's
    /// well-known JWKS.
    pub fn key_source(&self) -> Result<KeySource, url::ParseError> {
        if let Some(file) = &self.jwks.file {
            return Ok(KeySource::File(file.clone()));
        }
        match &self.jwks.url {
            Some(url) => Ok(KeySource::Url(url.clone())),
            None => Url::parse(&format!(
                "{}/.well-known/jwks.json",
                self.token.issuer.trim_end_matches('/')
            ))
            .map(KeySource::Url),
        }
    }
}

/// A database URL whose password never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL, password included, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is a SQLite URL.
    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let supported = ["sqlite:", "postgres://", "postgresql://"];
        if supported.iter().any(|prefix| s.starts_with(prefix)) {
            Ok(Self(s.to_owned()))
        } else {
            Err("expected a sqlite: or postgres:// URL".to_owned())
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_password(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_password(&self.0))
    }
}

fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // set_password only fails for URLs that cannot have credentials, and this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Parses `host:port`, resolving a host name to its first address.
pub fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("not a host:port address: {e}"))?
        .next()
        .ok_or_else(|| format!("{s} resolves to no address"))
}

/// Accepts an absolute http(s) URL and keeps it exactly as written, because `iss` is
/// compared as a string: `Url` would add a trailing slash.
pub fn parse_issuer(s: &str) -> Result<String, String> {
    let url = Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the issuer must be an http(s) URL".to_owned());
    }
    Ok(s.to_owned())
}

/// Parses `500ms`, `30s`, `10m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 500ms or 10m"))?;
    let duration = match unit.trim() {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_bare_seconds_and_units() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn durations_reject_garbage() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("1.5s").is_err());
    }

    #[test]
    fn issuer_is_kept_verbatim() {
        assert_eq!(
            parse_issuer("http://127.0.0.1:8000"),
            Ok("http://127.0.0.1:8000".to_owned())
        );
        assert!(parse_issuer("ftp://example.com").is_err());
        assert!(parse_issuer("not a url").is_err());
    }

    #[test]
    fn database_url_debug_hides_the_password() {
        let url: DatabaseUrl = "postgres://app:hunter2@db/posts".parse().unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "postgres://app:hunter2@db/posts");
    }

    #[test]
    fn database_url_rejects_other_schemes() {
        assert!("mysql://db/posts".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn the_command_line_parses_with_defaults() {
        Cli::try_parse_from(["posts-server", "migrate"]).unwrap();
        let cli = Cli::try_parse_from(["posts-server", "--bind", "127.0.0.1:0"]).unwrap();
        assert_eq!(cli.settings.server.bind.port(), 0);
    }
}
