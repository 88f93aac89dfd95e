use std::process::Command;

use serde_json::Value;

use crate::helpers::spawn_app;

fn auth_server(app: &crate::helpers::TestApp, args: &[&str]) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(args)
        .env("AUTH_DATABASE_URL", &app.database_url)
        .env("AUTH_KEYS_DIR", app.keys_dir())
        .env("RUST_LOG", "warn")
        .output()
        .expect("auth-server runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(stdout.trim()).unwrap()
    };
    (output.status.code().unwrap(), json)
}

#[tokio::test]
async fn clients_create_list_and_delete_print_json() {
    let app = spawn_app().await;

    let (code, created) = auth_server(
        &app,
        &[
            "clients",
            "create",
            "reporting",
            "--confidential",
            "--grants",
            "client_credentials",
            "--scopes",
            "posts:read",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(created["client_id"], "reporting");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);

    // This token request also puts the client's row in the server's cache.
    let resp = app
        .post_token_basic(
            "reporting",
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 200);

    let (code, listed) = auth_server(&app, &["clients", "list"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["posts-web", "reporting"]);
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once only"
    );

    let (code, _) = auth_server(&app, &["clients", "delete", "reporting"]);
    assert_eq!(code, 0);
    // Refused as soon as the command has answered, though the row was cached: the
    // deletion moved the version of the clients (the migration's trigger, on SQLite and
    // PostgreSQL alike) and the command waited out the cache's bound.
    let resp = app
        .post_token_basic(
            "reporting",
            &secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn admin_failures_exit_1_and_usage_errors_exit_2() {
    let app = spawn_app().await;

    let (code, body) = auth_server(&app, &["clients", "delete", "ghost"]);
    assert_eq!(code, 1);
    assert!(body["error"].is_string());
    let (code, _) = auth_server(&app, &["clients", "create", "bad id!"]);
    assert_eq!(code, 1);
    let (code, _) = auth_server(
        &app,
        &["clients", "create", "pub", "--grants", "client_credentials"],
    );
    assert_eq!(code, 1, "client_credentials needs a confidential client");
    let (code, _) = auth_server(&app, &["clients", "frobnicate"]);
    assert_eq!(code, 2);
}

#[tokio::test]
async fn clients_create_registers_redirect_uris_trust_and_a_name() {
    let app = spawn_app().await;

    let (code, created) = auth_server(
        &app,
        &[
            "clients",
            "create",
            "spa",
            "--grants",
            "authorization_code,refresh_token",
            "--scopes",
            "openid profile posts:read",
            "--redirect-uri",
            "https://spa.example.com/cb",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--post-logout-redirect-uri",
            "https://spa.example.com/",
            "--trusted",
            "--name",
            "Single Page App",
        ],
    );
    assert_eq!(code, 0, "{created}");
    assert!(created.get("client_secret").is_none(), "public");

    let (_, listed) = auth_server(&app, &["clients", "list"]);
    let spa = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "spa")
        .unwrap();
    assert_eq!(
        spa["redirect_uris"],
        serde_json::json!(["https://spa.example.com/cb", "http://127.0.0.1/cb"])
    );
    assert_eq!(
        spa["post_logout_redirect_uris"],
        serde_json::json!(["https://spa.example.com/"])
    );
    assert_eq!(spa["trusted"], true);
    assert_eq!(spa["name"], "Single Page App");
    let posts_web = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "posts-web")
        .unwrap();
    assert_eq!(posts_web["trusted"], true);
    let grants = posts_web["grant_types"].to_string();
    assert!(grants.contains("authorization_code") && grants.contains("password"));
    assert_eq!(
        posts_web["redirect_uris"],
        serde_json::json!([
            "http://127.0.0.1:8001/docs/oauth-receiver.html",
            "http://localhost:8001/docs/oauth-receiver.html"
        ]),
        "the default AUTH_POSTS_WEB_REDIRECT_URIS"
    );
}

#[tokio::test]
async fn clients_create_refuses_unsafe_redirect_uris() {
    let app = spawn_app().await;
    let create = |uri: &'static str| {
        let app = &app;
        move |flag: &'static str| {
            auth_server(
                app,
                &[
                    "clients",
                    "create",
                    "bad",
                    "--grants",
                    "authorization_code",
                    flag,
                    uri,
                ],
            )
        }
    };
    for uri in [
        "http://app.example.com/cb",
        "https://app.example.com/cb#x",
        "/relative",
        "javascript:alert(1)",
    ] {
        for flag in ["--redirect-uri", "--post-logout-redirect-uri"] {
            let (code, body) = create(uri)(flag);
            assert_eq!(code, 1, "{flag} {uri}");
            assert!(body["error"].as_str().unwrap().contains("URI"), "{body}");
        }
    }
    let (code, body) = auth_server(
        &app,
        &[
            "clients",
            "create",
            "nouri",
            "--grants",
            "authorization_code",
        ],
    );
    assert_eq!(code, 1, "the code grant needs a redirect URI: {body}");
}

#[tokio::test]
async fn migrate_applies_migrations_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("fresh.db").display()
    );

    let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["migrate"])
        .env("AUTH_DATABASE_URL", &url)
        .output()
        .unwrap();

    assert!(output.status.success());
    assert!(dir.path().join("fresh.db").exists());
}
