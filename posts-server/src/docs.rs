//! The OpenAPI document and Swagger UI, with the auth server's token endpoint filled in at
//! start-up.
//!
//! poem-openapi wants the password flow's `tokenUrl` as a compile-time string, but it is a
//! deployment setting, so the generated document is patched once and served as is.

use anyhow::{Context, bail};
use poem::endpoint::make_sync;
use poem::http::header;
use poem::web::Html;
use poem::{IntoResponse, Route};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};
use url::Url;

use crate::api::Apis;
use crate::auth::bearer::SECURITY_SCHEME;
use crate::domain::{PostBody, PostTitle};

/// The patched document and the Swagger UI page that embeds it.
#[derive(Clone)]
pub struct ApiDocs {
    spec: String,
    swagger_html: String,
}

impl ApiDocs {
    /// Generates the document of `service` with `token_url` as the password flow's endpoint.
    pub fn build(service: &OpenApiService<Apis, ()>, token_url: &Url) -> anyhow::Result<Self> {
        let generated = service.spec();
        let mut document: Value =
            serde_json::from_str(&generated).context("the generated OpenAPI document")?;
        let Some(flow) = document.pointer_mut(&format!(
            "/components/securitySchemes/{SECURITY_SCHEME}/flows/password"
        )) else {
            bail!("the OpenAPI document has no password flow to patch");
        };
        flow["tokenUrl"] = Value::String(token_url.to_string());
        document_lengths(&mut document);
        document_nullable_cursor(&mut document);
        let spec = serde_json::to_string_pretty(&document).context("the patched document")?;
        // Swagger UI embeds the document verbatim; swap in the patched one.
        let swagger_html = service.swagger_ui_html();
        if !swagger_html.contains(&generated) {
            bail!("Swagger UI does not embed the generated OpenAPI document");
        }
        let swagger_html = swagger_html.replacen(&generated, &spec, 1);
        Ok(Self { spec, swagger_html })
    }

    /// The document as JSON text.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// `GET /docs` (Swagger UI) and `GET /openapi.json`.
    pub fn routes(&self) -> Route {
        let spec = self.spec.clone();
        let html = self.swagger_html.clone();
        let page = make_sync(move |_| Html(html.clone()));
        Route::new()
            .at(
                "/openapi.json",
                make_sync(move |_| {
                    spec.clone()
                        .with_content_type("application/json")
                        .with_header(header::CACHE_CONTROL, "no-cache")
                }),
            )
            .at("/docs", page)
    }
}

// poem-openapi documents `Option<String>` as an optional string, but the last page
// answers `"next_cursor": null`, which OpenAPI 3.0 only allows when the schema says so.
fn document_nullable_cursor(document: &mut Value) {
    if let Some(Value::Object(property)) =
        document.pointer_mut("/components/schemas/PostPage/properties/next_cursor")
    {
        property.insert("nullable".to_owned(), json!(true));
    }
}

// The length rules live in the domain newtypes (so violations are 422, not poem-openapi's
// 400); copy them into the schemas so that the document still states them.
fn document_lengths(document: &mut Value) {
    for schema in ["NewPost", "PostChanges"] {
        for (field, max) in [
            ("title", PostTitle::MAX_CHARS),
            ("body", PostBody::MAX_CHARS),
        ] {
            if let Some(property) =
                document.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}"))
                && let Some(object) = property.as_object_mut()
            {
                object.insert("minLength".to_owned(), json!(1));
                object.insert("maxLength".to_owned(), json!(max));
            }
        }
    }
}
