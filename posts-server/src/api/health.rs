//! `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// How long readiness waits for the database before calling it unreachable.
const DB_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// What readiness found.
#[derive(Debug, Object)]
pub struct Readiness {
    /// Always `ready`.
    status: String,
    /// Keys in the key set in use.
    keys: u64,
    /// Seconds since the key set was loaded.
    key_set_age_seconds: u64,
}

/// Answer to a readiness probe.
#[derive(Debug, ApiResponse)]
pub enum ReadyResponse {
    /// A key set is loaded and the database answers.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: no key set loaded yet, or the database is unreachable.
    #[oai(status = 503, content_type = "application/problem+json")]
    NotReady(Json<Problem>),
}

/// Answer to a metrics scrape.
#[derive(Debug, ApiResponse)]
pub enum MetricsResponse {
    /// OpenMetrics text.
    #[oai(
        status = 200,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )]
    Metrics(PlainText<String>),
}

/// The operational routes.
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl HealthApi {
    /// Liveness
    ///
    /// 200 while the process serves requests.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// Readiness
    ///
    /// 200 only once a key set is loaded and the database answers.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        let Some(age) = state.keys.age() else {
            return not_ready("No key set loaded yet");
        };
        // Both pools: reads and writes go through different connections on SQLite.
        let ping = async {
            state.db.ping().await?;
            state.writer.ping().await
        };
        match tokio::time::timeout(DB_PING_TIMEOUT, ping).await {
            Ok(Ok(())) => ReadyResponse::Ready(Json(Readiness {
                status: "ready".to_owned(),
                keys: state.keys.key_count() as u64,
                key_set_age_seconds: age.as_secs(),
            })),
            Ok(Err(error)) => {
                tracing::warn!(%error, "readiness: database unreachable");
                not_ready("The database is unreachable")
            }
            Err(_) => {
                tracing::warn!("readiness: database ping timed out");
                not_ready("The database is unreachable")
            }
        }
    }

    /// Metrics
    ///
    /// Prometheus/OpenMetrics text.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&AppState>) -> Result<MetricsResponse, ApiError> {
        let text = state
            .metrics
            .render(&state.keys)
            .map_err(|error| ApiError::internal(&error))?;
        Ok(MetricsResponse::Metrics(PlainText(text)))
    }
}

fn not_ready(detail: &str) -> ReadyResponse {
    ReadyResponse::NotReady(Json(Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail)))
}
