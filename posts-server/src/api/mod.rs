//! The HTTP API: one `#[OpenApi]` per area, combined into one service.

mod health;
mod json_bytes;
mod posts;
mod rfc3339;

pub use health::HealthApi;
pub use json_bytes::JsonBytes;
pub use posts::{PostsApi, page_json, page_json_through_value};

use poem_openapi::{OpenApiService, Tags};

/// Tags of the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Create, read, change and delete posts.
    Posts,
    /// Liveness, readiness and metrics.
    Operations,
}

/// Every area of the API.
pub type Apis = (PostsApi, HealthApi);

/// The API as an OpenAPI service: routes plus the document describing them.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (PostsApi, HealthApi),
        "posts-server",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Posts API. Every /posts route needs an access token from the auth server \
             (Authorize: OAuth2 password flow); reads need posts:read, writes posts:write. \
             Errors are RFC 9457 problem details; authentication failures are RFC 6750 \
             challenges.",
    )
}
