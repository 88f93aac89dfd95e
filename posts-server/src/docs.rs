//! The OpenAPI document and Swagger UI, with the auth server's endpoints filled in at
//! start-up.
//!
//! poem-openapi wants the OAuth flows' `tokenUrl` and `authorizationUrl` as compile-time
//! strings, but they are deployment settings, so the generated document is patched once and
//! served as is. Swagger UI signs in two ways: the authorization-code flow with PKCE as the
//! public client `posts-web` (a popup on the auth server's sign-in page that lands on
//! Swagger's OAuth receiver page, `/docs/oauth-receiver.html`, a redirect URI registered for
//! `posts-web`), and the legacy password flow.

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

/// The client Swagger UI signs in as: public, trusted, registered by auth-server.
pub const SWAGGER_CLIENT_ID: &str = "posts-web";

/// The patched document, the Swagger UI page that embeds it, and its OAuth receiver page.
#[derive(Clone)]
pub struct ApiDocs {
    spec: String,
    swagger_html: String,
    receiver_html: String,
}

impl ApiDocs {
    /// Generates the document of `service` with the auth server's `token_url` and
    /// `authorize_url` in its OAuth flows.
    pub async fn build(
        service: &OpenApiService<Apis, ()>,
        token_url: &Url,
        authorize_url: &Url,
    ) -> anyhow::Result<Self> {
        let generated = service.spec();
        let mut document: Value =
            serde_json::from_str(&generated).context("the generated OpenAPI document")?;
        let flows = format!("/components/securitySchemes/{SECURITY_SCHEME}/flows");
        let Some(password) = document.pointer_mut(&format!("{flows}/password")) else {
            bail!("the OpenAPI document has no password flow to patch");
        };
        password["tokenUrl"] = Value::String(token_url.to_string());
        let Some(code) = document.pointer_mut(&format!("{flows}/authorizationCode")) else {
            bail!("the OpenAPI document has no authorization-code flow to patch");
        };
        code["tokenUrl"] = Value::String(token_url.to_string());
        code["authorizationUrl"] = Value::String(authorize_url.to_string());
        document_lengths(&mut document);
        document_nullable_cursor(&mut document);
        let spec = serde_json::to_string_pretty(&document).context("the patched document")?;
        // Swagger UI embeds the document verbatim; swap in the patched one.
        let swagger_html = service.swagger_ui_html();
        if !swagger_html.contains(&generated) {
            bail!("Swagger UI does not embed the generated OpenAPI document");
        }
        let swagger_html = with_pkce_client(&swagger_html.replacen(&generated, &spec, 1))?;
        Ok(Self {
            spec,
            swagger_html,
            receiver_html: receiver_page(service).await?,
        })
    }

    /// The document as JSON text.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// `GET /docs` (Swagger UI), `GET /docs/oauth-receiver.html` and `GET /openapi.json`.
    pub fn routes(&self) -> Route {
        let spec = self.spec.clone();
        let html = self.swagger_html.clone();
        let page = make_sync(move |_| Html(html.clone()));
        let receiver = self.receiver_html.clone();
        let receiver = make_sync(move |_| {
            Html(receiver.clone())
                .with_header(header::CACHE_CONTROL, "no-store")
                .with_header(header::REFERRER_POLICY, "no-referrer")
        });
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
            .at("/docs/oauth-receiver.html", receiver)
    }
}

/// Swagger UI's page with its OAuth settings: the `posts-web` client id and PKCE for the
/// authorization-code flow (`initOAuth`). The page poem-openapi generates calls
/// `SwaggerUIBundle` without keeping the instance, so the call is rewritten to keep it.
fn with_pkce_client(html: &str) -> anyhow::Result<String> {
    const CALL: &str = "    SwaggerUIBundle({";
    const END: &str = "    })\n</script>";
    if html.matches(CALL).count() != 1 || !html.contains(END) {
        bail!("Swagger UI's page no longer has the expected SwaggerUIBundle call");
    }
    let init = format!(
        "    }})\n    ui.initOAuth({{ clientId: {client}, usePkceWithAuthorizationCodeGrant: true, \
         scopes: \"posts:read posts:write\" }});\n</script>",
        client = json!(SWAGGER_CLIENT_ID)
    );
    Ok(html
        .replacen(CALL, "    const ui = SwaggerUIBundle({", 1)
        .replacen(END, &init, 1))
}

/// Swagger's OAuth receiver page, as poem-openapi ships it: it hands the code back to the
/// Swagger UI window that opened the sign-in popup.
async fn receiver_page(service: &OpenApiService<Apis, ()>) -> anyhow::Result<String> {
    use poem::Endpoint;
    let ui = service.swagger_ui();
    let resp = ui
        .call(
            poem::Request::builder()
                .uri_str("/oauth-receiver.html")
                .finish(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("Swagger UI's receiver page: {e}"))?
        .into_response();
    let page = resp
        .into_body()
        .into_string()
        .await
        .context("Swagger UI's receiver page")?;
    if !page.contains("swaggerUIRedirectOauth2") {
        bail!("Swagger UI's receiver page is not the OAuth receiver");
    }
    Ok(page)
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
