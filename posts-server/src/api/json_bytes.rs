//! A JSON response body that serde writes straight into bytes.
//!
//! poem-openapi's `Json<T>` converts `T` into a `serde_json::Value` tree and then writes
//! the tree: one allocation per field and per string for every response. For a page of
//! posts that tree costs more than the query behind it. `JsonBytes<T>` documents the
//! same schema as `Json<T>` (the `T` is the OpenAPI object) but is encoded through
//! `T`'s `serde::Serialize`, directly. The tests in `api/posts.rs` check that both
//! encodings of a page give the same JSON.

use std::marker::PhantomData;

use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

/// A 200 JSON body with the schema of `T`, already encoded.
pub struct JsonBytes<T> {
    bytes: Vec<u8>,
    schema: PhantomData<fn() -> T>,
}

impl<T: Serialize> JsonBytes<T> {
    /// Encodes `value`.
    pub fn encode(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            bytes: serde_json::to_vec(value)?,
            schema: PhantomData,
        })
    }
}

impl<T> JsonBytes<T> {
    /// The encoded body.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for JsonBytes<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for JsonBytes<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(CONTENT_TYPE)
            .body(self.bytes)
    }
}

impl<T: Type + Send> ApiResponse for JsonBytes<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: <Self as Payload>::CONTENT_TYPE,
                    schema: <Self as Payload>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
