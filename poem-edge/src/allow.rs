//! The `Allow` header of a 405 answer. RFC 9110 §15.5.6: the origin server MUST send one,
//! listing the methods the resource takes; poem's routers answer 405 without it.
//!
//! The routes of both servers are their OpenAPI document plus a few more (the documents
//! themselves, Swagger UI, the sign-in pages), so the table comes from the document, and
//! the rest are added by name. A 405 whose path matches no route keeps no `Allow`.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, Method, StatusCode, header},
};

/// Adds `Allow` to every 405 that lacks one. Build it with [`AllowHeader::from_openapi`].
#[derive(Debug, Clone, Default)]
pub struct AllowHeader {
    routes: Arc<Vec<Route>>,
}

#[derive(Debug, Clone)]
struct Route {
    /// `None` for a `{parameter}` segment, which matches any one segment.
    segments: Vec<Option<String>>,
    allow: HeaderValue,
}

/// The order methods are listed in.
const ORDER: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

impl AllowHeader {
    /// The methods of each path of `document` (an OpenAPI 3 document in JSON); `HEAD`
    /// wherever `GET` is, since poem answers `HEAD` with the `GET` endpoint.
    pub fn from_openapi(document: &str) -> Self {
        let mut table = Self::default();
        let parsed: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        if let Some(paths) = parsed.get("paths").and_then(|p| p.as_object()) {
            for (path, operations) in paths {
                let methods: Vec<Method> = operations
                    .as_object()
                    .into_iter()
                    .flat_map(|ops| ops.keys())
                    .filter_map(|name| {
                        Method::from_bytes(name.to_ascii_uppercase().as_bytes()).ok()
                    })
                    .collect();
                table = table.route(path, &methods);
            }
        }
        table
    }

    /// Adds a route outside the document: `path` (segments in `{braces}` match any one
    /// segment) takes `methods` (and `HEAD` with `GET`).
    pub fn route(mut self, path: &str, methods: &[Method]) -> Self {
        let listed: Vec<&str> = ORDER
            .iter()
            .filter(|m| {
                methods.contains(m) || (**m == Method::HEAD && methods.contains(&Method::GET))
            })
            .map(Method::as_str)
            .collect();
        let Ok(allow) = HeaderValue::from_str(&listed.join(", ")) else {
            return self;
        };
        let segments = segments(path)
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
            .collect();
        Arc::make_mut(&mut self.routes).push(Route { segments, allow });
        self
    }

    /// The `Allow` value of the route `path` matches; of several, the one with the most
    /// literal segments (`/posts/me` before `/posts/{id}`).
    pub fn allow_for(&self, path: &str) -> Option<&HeaderValue> {
        let wanted: Vec<&str> = segments(path).collect();
        self.routes
            .iter()
            .filter(|route| {
                route.segments.len() == wanted.len()
                    && route
                        .segments
                        .iter()
                        .zip(&wanted)
                        .all(|(s, w)| s.as_deref().is_none_or(|s| s == *w))
            })
            .max_by_key(|route| route.segments.iter().filter(|s| s.is_some()).count())
            .map(|route| &route.allow)
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl<E: Endpoint> Middleware<E> for AllowHeader {
    type Output = AllowHeaderEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AllowHeaderEndpoint {
            inner: ep,
            table: self.clone(),
        }
    }
}

/// See [`AllowHeader`].
pub struct AllowHeaderEndpoint<E> {
    inner: E,
    table: AllowHeader,
}

impl<E: Endpoint> Endpoint for AllowHeaderEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let path = req.uri().path().to_owned();
        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && !resp.headers().contains_key(header::ALLOW)
            && let Some(allow) = self.table.allow_for(&path)
        {
            resp.headers_mut().insert(header::ALLOW, allow.clone());
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r#"{"openapi": "3.0.0", "paths": {
        "/posts": {"get": {}, "post": {}},
        "/posts/me": {"get": {}},
        "/posts/{id}": {"get": {}, "patch": {}, "delete": {}, "parameters": []}
    }}"#;

    fn allow(table: &AllowHeader, path: &str) -> Option<String> {
        table
            .allow_for(path)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_document_gives_each_path_its_methods_and_head_with_get() {
        let table = AllowHeader::from_openapi(DOCUMENT);
        assert_eq!(allow(&table, "/posts").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(
            allow(&table, "/posts/42").as_deref(),
            Some("GET, HEAD, PATCH, DELETE")
        );
        assert_eq!(allow(&table, "/posts/me").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow(&table, "/posts/42/x"), None);
        assert_eq!(allow(&table, "/nowhere"), None);
    }

    #[test]
    fn routes_outside_the_document_are_added_by_name() {
        let table = AllowHeader::from_openapi(DOCUMENT).route("/openapi.json", &[Method::GET]);
        assert_eq!(allow(&table, "/openapi.json").as_deref(), Some("GET, HEAD"));
        assert_eq!(
            allow(&table, "/openapi.json/").as_deref(),
            Some("GET, HEAD")
        );
    }

    #[test]
    fn a_document_that_is_not_json_gives_an_empty_table() {
        assert_eq!(
            allow(&AllowHeader::from_openapi("not json"), "/posts"),
            None
        );
    }
}
