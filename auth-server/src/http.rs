//! Middleware every route shares: error rendering in the contract's formats, the body size
//! limit, and request metrics and logging.

use std::{sync::Arc, time::Instant};

use poem::{
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, StatusCode, header},
};

use crate::{
    error::{NO_STORE, OAuthErrorBody, Problem, ProblemJson},
    metrics::{Metrics, route_label},
};

/// Renders every error that reaches the top (unknown route, wrong method, unparsable
/// request, missing bearer token) in the format of its surface: RFC 6749 JSON under
/// `/oauth/`, RFC 9457 problem+json elsewhere. Nothing leaves as poem's plain text.
pub struct ErrorFormat;

impl<E: Endpoint> Middleware<E> for ErrorFormat {
    type Output = ErrorFormatEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ErrorFormatEndpoint(ep)
    }
}

/// See [`ErrorFormat`].
pub struct ErrorFormatEndpoint<E>(E);

impl<E: Endpoint> Endpoint for ErrorFormatEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        use futures_util::FutureExt;
        let oauth = req.uri().path().starts_with("/oauth/");
        // A panic (a bug) answers 500 in the endpoint's error format instead of dropping
        // the connection.
        match std::panic::AssertUnwindSafe(self.0.call(req))
            .catch_unwind()
            .await
        {
            Ok(Ok(resp)) => Ok(resp.into_response()),
            Ok(Err(err)) if err.is_from_response() => Ok(err.into_response()),
            Ok(Err(err)) => Ok(render(err, oauth)),
            Err(_) => Ok(render(
                poem::Error::from_string(
                    "a request handler panicked",
                    StatusCode::INTERNAL_SERVER_ERROR,
                ),
                oauth,
            )),
        }
    }
}

fn render(err: poem::Error, oauth: bool) -> Response {
    let status = err.status();
    let bearer_missing = err.is::<poem_openapi::error::AuthorizationError>();
    let detail = if status.is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        None
    } else if bearer_missing {
        Some("an access token is required".to_owned())
    } else {
        Some(err.to_string())
    };
    if oauth {
        let code = match status {
            StatusCode::UNAUTHORIZED => "invalid_client",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request",
        };
        let body = OAuthErrorBody {
            error: code.into(),
            error_description: detail,
        };
        let json =
            serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&body)).unwrap_or_default();
        return Response::builder()
            .status(status)
            .content_type("application/json")
            .header(header::CACHE_CONTROL, NO_STORE)
            .body(json);
    }
    let mut resp = ProblemJson(Problem::new(status, detail)).into_response();
    if bearer_missing {
        // RFC 6750 §3.1: no error attribute when the request carried no token.
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="auth-server""#),
        );
    }
    resp
}

/// Refuses request headers over the limit with 431, request bodies over the limit with
/// 413 whether or not `Content-Length` was sent (the body is read up to the limit and no
/// further), and bodies that take longer than the timeout to arrive with 408: in
/// problem+json, or as `page` renders them for the routes it answers for.
pub struct RequestLimits {
    /// Largest body in bytes.
    pub max: usize,
    /// Largest total size of the header names and values, in bytes.
    pub max_headers: usize,
    /// Longest time to receive the body.
    pub timeout: std::time::Duration,
    /// The refusal of a request for a page, or `None` where problem+json is the answer.
    pub page: Refusal,
}

/// Renders a refusal of `RequestLimits` (status and detail) for one request.
pub type Refusal = fn(&Request, StatusCode, &str) -> Option<Response>;

impl<E: Endpoint> Middleware<E> for RequestLimits {
    type Output = RequestLimitsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestLimitsEndpoint {
            inner: ep,
            max: self.max,
            max_headers: self.max_headers,
            timeout: self.timeout,
            page: self.page,
        }
    }
}

/// See [`RequestLimits`].
pub struct RequestLimitsEndpoint<E> {
    inner: E,
    max: usize,
    max_headers: usize,
    timeout: std::time::Duration,
    page: Refusal,
}

impl<E: Endpoint> Endpoint for RequestLimitsEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let refuse = |req: &Request, status, detail: String| {
            (self.page)(req, status, &detail)
                .unwrap_or_else(|| ProblemJson(Problem::new(status, detail)).into_response())
        };
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if header_bytes > self.max_headers {
            let detail = format!("the request headers exceed {} bytes", self.max_headers);
            return Ok(refuse(
                &req,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                detail,
            ));
        }
        let too_large = |req: &Request| {
            let detail = format!("the request body exceeds {} bytes", self.max);
            refuse(req, StatusCode::PAYLOAD_TOO_LARGE, detail)
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max as u64) {
            return Ok(too_large(&req));
        }
        let body = req.take_body();
        match tokio::time::timeout(self.timeout, read_limited(body, self.max)).await {
            Ok(Ok(Some(bytes))) => req.set_body(bytes),
            Ok(Ok(None)) => return Ok(too_large(&req)),
            Err(_) => {
                let detail = "the request body did not arrive in time".to_owned();
                return Ok(refuse(&req, StatusCode::REQUEST_TIMEOUT, detail));
            }
            Ok(Err(_)) => {
                let detail = "the request body could not be read".to_owned();
                return Ok(refuse(&req, StatusCode::BAD_REQUEST, detail));
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

async fn read_limited(body: Body, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut reader = body.into_async_read().take(max as u64 + 1);
    let mut buf = Vec::new();
    reader.read_to_end(&mut buf).await?;
    Ok((buf.len() <= max).then_some(buf))
}

/// Counts and times every request, and logs it without query strings or headers (which
/// may carry credentials).
pub struct Observe(pub Arc<Metrics>);

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ObserveEndpoint {
            inner: ep,
            metrics: self.0.clone(),
        }
    }
}

/// See [`Observe`].
pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        use tracing::Instrument;

        let started = Instant::now();
        let method = req.method().to_string();
        let route = route_label(req.uri().path());
        let request_id = request_id(&req);
        let span = tracing::info_span!("request", %request_id, %method, route);
        let mut resp = async {
            match self.inner.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            }
        }
        .instrument(span.clone())
        .await;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert(REQUEST_ID, value);
        }
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics.http_request(&method, route, status, elapsed);
        span.in_scope(|| {
            tracing::info!(
                status,
                elapsed_ms = elapsed.as_millis() as u64,
                "request served"
            );
        });
        Ok(resp)
    }
}

const REQUEST_ID: &str = "x-request-id";

/// The caller's `X-Request-Id` if it is a sane token (so that log lines cannot be forged
/// through it), else a new UUID.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use poem::{Endpoint, EndpointExt, Request, endpoint::make, http::StatusCode};

    use super::ErrorFormat;

    async fn panicking(path: &str) -> (StatusCode, String, serde_json::Value) {
        let ep = make(|_| async {
            if true {
                panic!("a bug");
            }
            "unreachable"
        })
        .with(ErrorFormat);
        let resp = ep
            .call(Request::builder().uri(path.parse().unwrap()).finish())
            .await
            .unwrap();
        let status = resp.status();
        let content_type = resp.content_type().unwrap_or_default().to_owned();
        let body = resp.into_body().into_json().await.unwrap();
        (status, content_type, body)
    }

    #[tokio::test]
    async fn a_panic_is_a_500_in_the_endpoints_error_format() {
        let (status, content_type, body) = panicking("/oauth/token").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, "application/json");
        assert_eq!(body["error"], "server_error");

        let (status, content_type, body) = panicking("/users/me").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], 500);
    }
}
