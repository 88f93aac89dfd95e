//! Prometheus metrics: requests by route and status, token rejections by reason, key set
//! fetches and freshness.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use jwt_verifier::{FetchTrigger, JwksCache, JwksError, Observer, Rejection};
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of one HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The HTTP method.
    pub method: String,
    /// The matched route pattern (never the raw path, which would explode cardinality).
    pub route: String,
    /// The response status.
    pub status: u16,
}

/// Labels of a request duration.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The HTTP method.
    pub method: String,
    /// The matched route pattern.
    pub route: String,
}

/// Labels of a token rejection.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// Why the token was refused (see `Rejection::label`).
    pub reason: &'static str,
}

/// Labels of a key set fetch.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// `startup`, `background` or `unknown_kid`.
    pub trigger: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
}

type DurationFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric of the server, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP request latency.
    pub http_duration: DurationFamily,
    /// Access tokens refused.
    pub token_rejections: Family<RejectionLabels, Counter>,
    /// Key set fetches.
    pub jwks_fetches: Family<FetchLabels, Counter>,
    /// Keys in the set in use.
    pub jwks_keys: Gauge,
    /// Seconds since the set in use was loaded; -1 while none is.
    pub jwks_age: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_duration: DurationFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.5, 12)));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by method and route",
            http_duration.clone(),
        );
        let token_rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "token_rejections",
            "Access tokens refused, by reason",
            token_rejections.clone(),
        );
        let jwks_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "Key set fetches, by trigger and outcome",
            jwks_fetches.clone(),
        );
        let jwks_keys = Gauge::default();
        registry.register("jwks_keys", "Keys in the key set in use", jwks_keys.clone());
        let jwks_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "jwks_age_seconds",
            "Seconds since the key set in use was loaded (-1: none loaded yet)",
            jwks_age.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            token_rejections,
            jwks_fetches,
            jwks_keys,
            jwks_age,
        }
    }

    /// Exposes how many reads of `readers` fell back to sqlx
    /// (`sqlite_reader_fallbacks_total`, see `sqlite-readers`).
    pub fn observe_sqlite_readers(&mut self, readers: &sqlite_readers::Readers) {
        self.registry.register_collector(Box::new(readers.clone()));
    }

    /// The OpenMetrics text exposition, with the key set gauges brought up to date.
    pub fn render(&self, keys: &JwksCache) -> Result<String, std::fmt::Error> {
        self.jwks_keys.set(keys.key_count() as i64);
        self.jwks_age
            .set(keys.age().map_or(-1.0, |age| age.as_secs_f64()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// jwt-verifier reports its fetches and rejections here.
impl Observer for Metrics {
    fn key_set_fetched(&self, trigger: FetchTrigger, outcome: Result<usize, &JwksError>) {
        let labels = FetchLabels {
            trigger: trigger.label(),
            outcome: if outcome.is_ok() {
                "success"
            } else {
                "failure"
            },
        };
        self.jwks_fetches.get_or_create(&labels).inc();
    }

    fn token_rejected(&self, rejection: &Rejection) {
        let labels = RejectionLabels {
            reason: rejection.label(),
        };
        self.token_rejections.get_or_create(&labels).inc();
    }
}

/// Counts and times every request.
pub struct HttpMetrics {
    metrics: std::sync::Arc<Metrics>,
}

impl HttpMetrics {
    /// Records into `metrics`.
    pub fn new(metrics: std::sync::Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<E: Endpoint> Middleware<E> for HttpMetrics {
    type Output = HttpMetricsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        HttpMetricsEndpoint {
            inner: ep,
            metrics: self.metrics.clone(),
        }
    }
}

/// The endpoint produced by [`HttpMetrics`].
pub struct HttpMetricsEndpoint<E> {
    inner: E,
    metrics: std::sync::Arc<Metrics>,
}

impl<E: Endpoint> Endpoint for HttpMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let method = method_label(req.method()).to_owned();
        let started = Instant::now();
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        let (status, pattern) = match &result {
            Ok(response) => (response.status(), response.data::<PathPattern>()),
            Err(error) => (error.status(), error.data::<PathPattern>()),
        };
        // Unmatched paths share one label so that scanners cannot grow the series count.
        let route = match pattern {
            Some(pattern) if !pattern.0.is_empty() => pattern.0.to_string(),
            _ => "unmatched".to_owned(),
        };
        self.metrics
            .http_requests
            .get_or_create(&HttpLabels {
                method: method.clone(),
                route: route.clone(),
                status: status.as_u16(),
            })
            .inc();
        self.metrics
            .http_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

// Arbitrary method names would each create a series.
fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
