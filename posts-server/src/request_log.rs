//! Request ids and the one log line per request.
//!
//! Every request runs inside an info span carrying its `request_id`, so every line logged
//! while serving it (token rejections, database failures) names the request. The id comes
//! from the caller's `X-Request-Id` when that is a sane token, so a proxy's id joins the logs
//! of both hops; otherwise it is a new UUID. Either way it is echoed in the response.
//!
//! Nothing here records headers or query strings: the `Authorization` header carries the
//! access token, which must never reach a log.

use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response};
use tracing::Instrument;

/// The request id header, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest caller-supplied request id kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Wraps every request in a span with its id, echoes the id, and logs "request served".
pub struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestLogEndpoint { inner: ep }
    }
}

/// The endpoint produced by [`RequestLog`].
pub struct RequestLogEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let request_id = request_id(&req);
        let span = tracing::info_span!(
            "request",
            %request_id,
            method = %req.method(),
            path = %req.uri().path(),
            remote_addr = %req.remote_addr(),
            route = tracing::field::Empty,
        );
        let mut response = match self.inner.call(req).instrument(span.clone()).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        if let Some(pattern) = response.data::<PathPattern>() {
            span.record("route", pattern.0.as_ref());
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        let elapsed = started.elapsed();
        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request served"
            );
        });
        Ok(response)
    }
}

/// The caller's `X-Request-Id` if it is a sane token (so that log lines cannot be forged
/// through it), else a new UUID.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_sane(value))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_short_plain_tokens() {
        assert!(is_sane("abc-123"));
        assert!(is_sane("5f0c2d1e-0000-4000-8000-000000000000"));
        assert!(is_sane("trace.id:1_2"));
        assert!(!is_sane(""));
        assert!(!is_sane("a b"));
        assert!(!is_sane("a\"b"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane(&"x".repeat(MAX_REQUEST_ID_LEN + 1)));
    }
}
