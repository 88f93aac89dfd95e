//! Prometheus metrics, in the text format through `prometheus-client`.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    tokens_issued: Family<GrantLabels, Counter>,
    token_errors: Family<ErrorLabels, Counter>,
    failed_logins: Counter,
    throttled: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("auth");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let tokens_issued = Family::<GrantLabels, Counter>::default();
        let token_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "tokens_issued",
            "Access tokens issued by grant type",
            tokens_issued.clone(),
        );
        registry.register(
            "token_errors",
            "Token endpoint errors by RFC 6749 error code",
            token_errors.clone(),
        );
        let failed_logins = Counter::default();
        let throttled = Counter::default();
        registry.register(
            "failed_logins",
            "Password grants refused for bad credentials",
            failed_logins.clone(),
        );
        registry.register(
            "throttled_requests",
            "Password grants refused with 429",
            throttled.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            tokens_issued,
            token_errors,
            failed_logins,
            throttled,
        }
    }

    /// Exposes how many reads of `readers` fell back to sqlx
    /// (`sqlite_reader_fallbacks_total`, see `sqlite-readers`).
    pub fn observe_sqlite_readers(&mut self, readers: &sqlite_readers::Readers) {
        self.registry.register_collector(Box::new(readers.clone()));
    }

    /// Records one HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&HttpLabels {
                method: method.into(),
                route: route.into(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records an issued access token.
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens_issued
            .get_or_create(&GrantLabels {
                grant_type: grant_type.into(),
            })
            .inc();
    }

    /// Records a password grant refused for bad credentials.
    pub fn failed_login(&self) {
        self.failed_logins.inc();
    }

    /// Records a throttled password grant.
    pub fn throttled(&self) {
        self.throttled.inc();
    }

    /// Records a token-endpoint error.
    pub fn token_error(&self, error: &str) {
        self.token_errors
            .get_or_create(&ErrorLabels {
                error: error.into(),
            })
            .inc();
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("could not encode metrics");
        }
        out
    }
}

/// A low-cardinality route label: the path template for known routes, `other` otherwise,
/// so that scanners cannot blow up the label space.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/users" | "/users/" => "/users",
        "/users/me" => "/users/me",
        p if p.starts_with("/users/") => "/users/{id}",
        "/oauth/token" => "/oauth/token",
        "/oauth/revoke" => "/oauth/revoke",
        "/oauth/introspect" => "/oauth/introspect",
        "/.well-known/jwks.json" => "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server" => "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration" => "/.well-known/openid-configuration",
        "/oauth/authorize" => "/oauth/authorize",
        "/oauth/userinfo" => "/oauth/userinfo",
        "/oauth/logout" => "/oauth/logout",
        "/login" => "/login",
        "/signup" => "/signup",
        "/consent" => "/consent",
        "/assets/auth.css" => "/assets",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        p if p.starts_with("/docs") => "/docs",
        _ => "other",
    }
}
