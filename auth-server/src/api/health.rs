//! `/healthz`, `/readyz`, `/metrics`.

use std::time::Duration;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    payload::{Json, PlainText},
};

use super::ApiTags;
use crate::state::AppState;

/// How long readiness waits for the database before calling it unreachable: a probe must
/// answer well before the pool's acquire timeout (10 s), and probes time out in seconds.
const DB_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// A status report.
#[derive(Object)]
pub struct Status {
    /// `ok` or `unavailable`.
    status: String,
    /// What is not ready, if anything.
    #[oai(skip_serializing_if_is_none)]
    detail: Option<String>,
}

/// Readiness.
#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers and a signing key is loaded.
    #[oai(status = 200)]
    Ready(Json<Status>),
    /// Not ready to serve.
    #[oai(status = 503)]
    NotReady(Json<Status>),
}

/// Prometheus exposition.
#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Metrics in the Prometheus text format.
    #[oai(
        status = 200,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )]
    Ok(PlainText<String>),
}

/// The operations area.
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl HealthApi {
    /// Liveness: the process serves HTTP.
    #[oai(path = "/healthz", method = "get")]
    async fn healthz(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
            detail: None,
        })
    }

    /// Readiness: the database answers and a signing key is loaded.
    #[oai(path = "/readyz", method = "get")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        // Both pools: on SQLite reads and writes go through different connections.
        let ping = async {
            state.db.ping().await?;
            state.writer.ping().await
        };
        let ping = match tokio::time::timeout(DB_PING_TIMEOUT, ping).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within the timeout".to_owned()),
        };
        match ping {
            Ok(()) => {
                let _active = state.keys.active();
                ReadyResponse::Ready(Json(Status {
                    status: "ok".into(),
                    detail: None,
                }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "readiness check: database unreachable");
                ReadyResponse::NotReady(Json(Status {
                    status: "unavailable".into(),
                    detail: Some("database unreachable".into()),
                }))
            }
        }
    }

    /// Prometheus metrics.
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self, state: Data<&AppState>) -> MetricsResponse {
        MetricsResponse::Ok(PlainText(state.metrics.render()))
    }
}
