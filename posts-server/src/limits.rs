//! The request body limit.
//!
//! poem's `SizeLimit` trusts `Content-Length` alone (and refuses requests without one), so a
//! chunked upload would slip through to the JSON parser unbounded. This middleware reads at
//! most `max + 1` bytes whatever the framing and answers 413 beyond `max`.

use poem::http::{StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use tokio::io::AsyncReadExt;

use crate::error::Problem;

/// Refuses request bodies larger than `max` bytes with 413.
pub struct BodyLimit {
    max: usize,
}

impl BodyLimit {
    /// A limit of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint {
            inner: ep,
            max: self.max,
        }
    }
}

/// The endpoint produced by [`BodyLimit`].
pub struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
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
        let mut buffer = Vec::new();
        let mut reader = req.take_body().into_async_read().take(self.max as u64 + 1);
        if let Err(error) = reader.read_to_end(&mut buffer).await {
            tracing::debug!(%error, "cannot read the request body");
            return Ok(Problem::new(
                StatusCode::BAD_REQUEST,
                "The request body could not be read",
            )
            .into_response());
        }
        if buffer.len() > self.max {
            return Ok(too_large(self.max));
        }
        req.set_body(Body::from(buffer));
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

fn too_large(max: usize) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body must be at most {max} bytes"),
    )
    .into_response()
}
