//! The request body limit and body read timeout.
//!
//! poem's `SizeLimit` trusts `Content-Length` alone (and refuses requests without one), so a
//! chunked upload would slip through to the JSON parser unbounded. This middleware reads at
//! most `max + 1` bytes whatever the framing and answers 413 beyond `max`. Headers are timed
//! by the listener (`crate::listener`); the body is timed here, so a client trickling its
//! body cannot hold a connection (and a handler) forever: it gets 408.

use std::time::Duration;

use poem::http::{StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use tokio::io::AsyncReadExt;

use crate::error::Problem;

/// Refuses request bodies larger than `max` bytes with 413, and bodies that take longer
/// than `timeout` to arrive with 408.
pub struct BodyLimit {
    max: usize,
    timeout: Duration,
}

impl BodyLimit {
    /// A limit of `max` bytes received within `timeout`.
    pub fn new(max: usize, timeout: Duration) -> Self {
        Self { max, timeout }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint {
            inner: ep,
            max: self.max,
            timeout: self.timeout,
        }
    }
}

/// The endpoint produced by [`BodyLimit`].
pub struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
    timeout: Duration,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max as u64) {
            return Ok(too_large(self.max));
        }
        let body = req.take_body();
        let buffer = match tokio::time::timeout(self.timeout, read_limited(body, self.max)).await {
            Ok(Ok(Some(buffer))) => buffer,
            Ok(Ok(None)) => return Ok(too_large(self.max)),
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot read the request body");
                return Ok(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read",
                )
                .into_response());
            }
            Err(_) => {
                tracing::debug!(timeout = ?self.timeout, "the request body arrived too slowly");
                let mut response = Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time",
                )
                .into_response();
                // The rest of the body may still be on its way; the connection cannot be
                // reused (RFC 9110 §15.5.9).
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                return Ok(response);
            }
        };
        req.set_body(Body::from(buffer));
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// The body if it has at most `max` bytes, `None` if it is longer.
async fn read_limited(body: Body, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buffer = Vec::new();
    let mut reader = body.into_async_read().take(max as u64 + 1);
    reader.read_to_end(&mut buffer).await?;
    Ok((buffer.len() <= max).then_some(buffer))
}

fn too_large(max: usize) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body must be at most {max} bytes"),
    )
    .into_response()
}
