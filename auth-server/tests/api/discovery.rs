use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_jwks_is_cacheable_and_lists_rs256_signing_keys() {
    let app = spawn_app().await;

    let resp = app.get("/.well-known/jwks.json").await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = resp.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the active key and the next key");
    for key in keys {
        for field in ["kty", "use", "alg", "kid", "n", "e"] {
            assert!(key[field].is_string(), "{field}");
        }
        assert!(key.get("d").is_none(), "no private parts");
    }
}

#[tokio::test]
async fn the_metadata_lists_exactly_what_is_implemented() {
    let app = spawn_app().await;

    let meta: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(meta["issuer"], "http://127.0.0.1:8000");
    assert_eq!(meta["token_endpoint"], "http://127.0.0.1:8000/oauth/token");
    assert_eq!(
        meta["revocation_endpoint"],
        "http://127.0.0.1:8000/oauth/revoke"
    );
    assert_eq!(
        meta["introspection_endpoint"],
        "http://127.0.0.1:8000/oauth/introspect"
    );
    assert_eq!(
        meta["jwks_uri"],
        "http://127.0.0.1:8000/.well-known/jwks.json"
    );
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "password",
            "refresh_token",
            "client_credentials"
        ])
    );
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["posts:read", "posts:write", "openid", "profile", "email"])
    );
    assert_eq!(
        meta["authorization_endpoint"],
        "http://127.0.0.1:8000/oauth/authorize"
    );
    assert_eq!(
        meta["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    let methods = meta["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for m in ["client_secret_basic", "client_secret_post", "none"] {
        assert!(methods.iter().any(|v| v == m), "{m}");
    }
}

#[tokio::test]
async fn the_advertised_endpoints_exist() {
    let app = spawn_app().await;
    let meta: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();

    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let path = meta[key]
            .as_str()
            .unwrap()
            .trim_start_matches("http://127.0.0.1:8000");
        let resp = app
            .http
            .post(format!("{}{path}", app.address))
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), StatusCode::NOT_FOUND, "{key}");
        assert!(resp.status().is_client_error(), "{key}");
    }
}

/// RFC 9110 §15.5.6: a 405 lists the methods its resource takes, here those of the OpenAPI
/// document (and HEAD with GET).
#[tokio::test]
async fn every_405_lists_the_methods_the_document_gives_its_path() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();

    for (path, operations) in document["paths"].as_object().unwrap() {
        let mut documented: Vec<String> = operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
            .map(|k| k.to_uppercase())
            .collect();
        if documented.iter().any(|m| m == "GET") {
            documented.push("HEAD".into());
        }
        let other = if documented.iter().any(|m| m == "PUT") {
            reqwest::Method::DELETE
        } else {
            reqwest::Method::PUT
        };
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");

        let url = format!("{}{concrete}", app.address);
        let resp = app.http.request(other.clone(), url).send().await.unwrap();

        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{other} {path}"
        );
        let allow = resp.headers()["allow"].to_str().unwrap();
        let mut listed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
        listed.sort();
        documented.sort();
        assert_eq!(listed, documented, "{path}");
    }
}
