use reqwest::StatusCode;
use serde_json::Value;

use auth_server::startup::Application;

use crate::helpers::{
    PostgresDatabase, assert_problem, database_store, spawn_app, start, test_settings,
};

#[tokio::test]
async fn health_and_readiness_are_ok() {
    let app = spawn_app().await;

    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_and_token_counters() {
    let app = spawn_app().await;
    app.signed_up_user("m@example.com").await;
    app.password_tokens("m@example.com").await;

    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(
        text.contains(
            "auth_http_requests_total{method=\"POST\",route=\"/oauth/token\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("auth_tokens_issued_total{grant_type=\"password\"} 1"),
        "{text}"
    );
    assert!(text.contains("auth_http_request_duration_seconds_bucket"));
    // The client and refresh lookups ran on the synchronous SQLite readers, none failed
    // over to sqlx; on PostgreSQL there are no such readers.
    let fallbacks = "sqlite_reader_fallbacks_total 0\n";
    if std::env::var_os("TEST_POSTGRES_URL").is_none() {
        assert!(text.contains(fallbacks), "{text}");
    } else {
        assert!(!text.contains("sqlite_reader_fallbacks"), "{text}");
    }
}

#[tokio::test]
async fn the_openapi_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;

    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/users",
        "/users/me",
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/userinfo",
        "/.well-known/jwks.json",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the spec"
        );
    }
    // UserInfo's answers are built by hand; the document lists them all, with the
    // RFC 6750 challenge on every refusal.
    for method in ["get", "post"] {
        let responses = &spec["paths"]["/oauth/userinfo"][method]["responses"];
        for status in ["200", "400", "401", "403", "413", "500", "503"] {
            assert!(responses.get(status).is_some(), "{method} {status}");
        }
        for status in ["400", "401", "403"] {
            let challenge = &responses[status]["headers"]["WWW-Authenticate"];
            assert_eq!(challenge["required"], true, "{method} {status}");
        }
    }
    let form = &spec["paths"]["/oauth/userinfo"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["$ref"];
    assert_eq!(form, "#/components/schemas/UserInfoRequest");
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;

    assert_problem(app.get("/nope").await, StatusCode::NOT_FOUND).await;
    let delete = app
        .http
        .delete(format!("{}/users/me", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(delete, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn restarting_keeps_the_key_so_old_tokens_still_verify() {
    let mut app = spawn_app().await;
    app.signed_up_user("k@example.com").await;
    let token = app.password_tokens("k@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid_before = app.get_jwks().await["keys"][0]["kid"].clone();
    app.stop().await;

    let restarted = crate::helpers::start(app.settings.clone()).await;

    assert_eq!(restarted.get_jwks().await["keys"][0]["kid"], kid_before);
    assert_eq!(restarted.get_me(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    let app = spawn_app().await;

    let given = app
        .http
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let generated = app.get("/healthz").await;
    let forged = app
        .http
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "a\tb c")
        .send()
        .await
        .unwrap();

    assert_eq!(given.headers()["x-request-id"], "abc-123");
    assert!(uuid::Uuid::parse_str(generated.headers()["x-request-id"].to_str().unwrap()).is_ok());
    assert_ne!(forged.headers()["x-request-id"], "a\tb c");
}

/// UserInfo is served through the OpenAPI service now; its HTTP surface is as before:
/// CORS as for the token endpoint (the contract), GET and POST only, and a body that is
/// not a form is not read for a token (RFC 6750 §2.2).
#[tokio::test]
async fn userinfo_allows_the_cors_origin_and_reads_tokens_only_from_forms() {
    let app = spawn_app().await;
    app.signed_up_user("cors@example.com").await;
    let tokens: Value = app
        .password_tokens_asking("cors@example.com", &[("scope", "openid")])
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = format!("{}/oauth/userinfo", app.address);
    let origin = "http://127.0.0.1:8001";

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    let get = app
        .http
        .get(&url)
        .header("origin", origin)
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()["access-control-allow-origin"], origin);

    let json_body = app
        .http
        .post(&url)
        .json(&serde_json::json!({ "access_token": access }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_body.headers()["www-authenticate"],
        r#"Bearer realm="auth-server""#
    );
    let header_and_other_body = app
        .http
        .post(&url)
        .bearer_auth(access)
        .body("access_token=ignored")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(header_and_other_body.status(), StatusCode::OK);

    let put = app.http.put(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// Replicas of a new deployment start together on an empty PostgreSQL database: each must
/// come up, whichever of them applies the migrations, and the schema must be whole
/// afterwards. (Replicas are a PostgreSQL deployment; SQLite serves one process per file.)
#[tokio::test]
async fn replicas_starting_at_once_on_a_new_database_all_start() {
    let Some(postgres) = PostgresDatabase::create_named("auth").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), postgres.url.clone());
    database_store(&mut settings);

    let builds = (0..4).map(|_| Application::build(settings.clone()));
    let built = futures::future::join_all(builds).await;

    for result in &built {
        if let Err(e) = result {
            panic!("a replica did not start: {e:#}");
        }
    }
    let mut app = start(settings).await;
    app.signed_up_user("replica@example.com").await;
    app.password_tokens("replica@example.com").await;
    app.stop().await;
    drop(postgres);
}
