//! Operational endpoints and the API documentation.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_and_readyz_answer_200_once_keys_are_loaded() {
    let app = spawn_app().await;

    assert_eq!(app.get_healthz().await.status(), StatusCode::OK);
    let ready = app.get_readyz().await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["keys"], 1);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    app.create_post(&token, "t", "b").await;
    let _ = app.get_posts("garbage", "").await;
    assert_eq!(app.get_posts(&token, "").await.status(), 200);

    let metrics = app.get_metrics().await;

    for expected in [
        "http_requests_total{method=\"POST\",route=\"/posts\",status=\"201\"} 1",
        "http_requests_total{method=\"GET\",route=\"/posts\",status=\"401\"} 1",
        "token_rejections_total{reason=\"malformed\"} 1",
        "jwks_fetches_total{trigger=\"background\",outcome=\"success\"} 1",
        "jwks_keys 1",
        "jwks_age_seconds ",
        "# EOF",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    // The page was read on the synchronous SQLite readers, without falling back to sqlx;
    // on PostgreSQL there are no such readers.
    if std::env::var_os("TEST_POSTGRES_URL").is_none() {
        assert!(
            metrics.contains("sqlite_reader_fallbacks_total 0\n"),
            "{metrics}"
        );
    } else {
        assert!(!metrics.contains("sqlite_reader_fallbacks"), "{metrics}");
    }
}

#[tokio::test]
async fn metrics_do_not_grow_a_series_per_unknown_path() {
    let app = spawn_app().await;
    for n in 0..3 {
        let _ = app
            .request(reqwest::Method::GET, &format!("/scan-{n}"), None)
            .send()
            .await
            .unwrap();
    }

    let metrics = app.get_metrics().await;

    assert!(
        metrics.contains("route=\"unmatched\",status=\"404\"} 3"),
        "{metrics}"
    );
    assert!(!metrics.contains("scan-"), "{metrics}");
}

#[tokio::test]
async fn the_openapi_document_points_swagger_at_the_configured_token_endpoint() {
    let app = spawn_app_with(|settings| {
        settings.token.token_url = Some("https://auth.example.com/oauth/token".parse().unwrap());
    })
    .await;

    let response = app.get_openapi().await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();

    let scheme = &document["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "oauth2");
    let password = &scheme["flows"]["password"];
    assert_eq!(password["tokenUrl"], "https://auth.example.com/oauth/token");
    assert!(password["scopes"]["posts:read"].is_string());
    assert!(password["scopes"]["posts:write"].is_string());
    assert_eq!(
        document["paths"]["/posts"]["post"]["security"][0]["oauth2"][0],
        "posts:write"
    );
    assert_eq!(
        document["paths"]["/posts"]["get"]["security"][0]["oauth2"][0],
        "posts:read"
    );
    let title = &document["components"]["schemas"]["NewPost"]["properties"]["title"];
    assert_eq!(title["maxLength"], 200);

    let docs = app.get_docs().await;
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"));
    assert!(html.contains("https://auth.example.com/oauth/token"));
}

#[tokio::test]
async fn the_token_endpoint_defaults_to_the_issuers() {
    let app = spawn_app().await;

    let document: Value = app.get_openapi().await.json().await.unwrap();

    let flows = &document["components"]["securitySchemes"]["oauth2"]["flows"];
    assert_eq!(
        flows["password"]["tokenUrl"],
        "http://127.0.0.1:8000/oauth/token"
    );
    assert_eq!(
        flows["authorizationCode"]["authorizationUrl"],
        "http://127.0.0.1:8000/oauth/authorize"
    );
}

#[tokio::test]
async fn swagger_offers_the_authorization_code_flow_with_pkce_as_posts_web() {
    let app = spawn_app_with(|settings| {
        settings.token.authorize_url =
            Some("https://auth.example.com/oauth/authorize".parse().unwrap());
        settings.token.token_url = Some("https://auth.example.com/oauth/token".parse().unwrap());
    })
    .await;

    let document: Value = app.get_openapi().await.json().await.unwrap();
    let code = &document["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(
        code["authorizationUrl"],
        "https://auth.example.com/oauth/authorize"
    );
    assert_eq!(code["tokenUrl"], "https://auth.example.com/oauth/token");
    assert!(code["scopes"]["posts:read"].is_string());

    let html = app.get_docs().await.text().await.unwrap();
    assert!(html.contains(r#"clientId: "posts-web""#), "initOAuth");
    assert!(html.contains("usePkceWithAuthorizationCodeGrant: true"));
    // The page that receives the code in Swagger's sign-in popup.
    let receiver = reqwest::get(format!("{}/docs/oauth-receiver.html", app.address))
        .await
        .unwrap();
    assert_eq!(receiver.status(), StatusCode::OK);
    assert!(
        receiver
            .text()
            .await
            .unwrap()
            .contains("swaggerUIRedirectOauth2")
    );
}

#[tokio::test]
async fn metrics_have_latency_histograms_rejection_reasons_and_key_set_age() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let post = app.create_post(&token, "t", "b").await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(app.get_post(&token, id).await.status(), StatusCode::OK);
    let expired = app.mint_token(serde_json::json!({ "exp": crate::helpers::now() - 3600 }));
    let _ = app.get_posts(&expired, "").await;

    let metrics = app.get_metrics().await;

    assert!(!metrics.contains(id), "a raw path became a label");
    for expected in [
        "# TYPE http_request_duration_seconds histogram",
        "http_request_duration_seconds_count{method=\"POST\",route=\"/posts\"} 1",
        "http_request_duration_seconds_bucket{le=\"+Inf\",method=\"POST\",route=\"/posts\"} 1",
        // The pattern, not the id: one series however many posts exist.
        "http_request_duration_seconds_count{method=\"GET\",route=\"/posts/:",
        "http_requests_total{method=\"GET\",route=\"/posts/:",
        "token_rejections_total{reason=\"expired\"} 1",
        "# TYPE jwks_fetches counter",
        "# TYPE jwks_age_seconds gauge",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    let age: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("jwks_age_seconds "))
        .expect("the key set age")
        .parse()
        .unwrap();
    assert!((0.0..60.0).contains(&age), "age {age}");
}
