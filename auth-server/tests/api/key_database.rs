//! Keys in the auth database (`AUTH_KEYS_STORE=database`): encrypted at rest, shared by
//! replicas without a shared disk, guarded against a wrong encryption key.

use std::time::Duration;

use auth_server::{
    config::Secret, entities::signing_keys, keys::EncryptionKey, startup::Application,
};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};

use crate::{
    helpers::{ENCRYPTION_KEY, TestApp, database_store, spawn_app, spawn_app_with, start},
    keys::{eventually, in_state, jwks_kids, kid_of, list, token},
};

async fn rows(app: &TestApp) -> Vec<signing_keys::Model> {
    let db = auth_server::db::connect(&app.database_url).await.unwrap();
    signing_keys::Entity::find()
        .order_by_asc(signing_keys::Column::Seq)
        .all(&db)
        .await
        .unwrap()
}

/// A server keeping its keys in the database, with an empty keys directory of its own.
async fn spawn_database_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let app = spawn_app_with(|s| {
        database_store(s);
        s.keys_dir = keys;
    })
    .await;
    (app, dir)
}

#[tokio::test]
async fn keys_in_the_database_are_encrypted_and_need_no_keys_directory() {
    let (app, dir) = spawn_database_app().await;
    app.signed_up_user("db@example.com").await;

    let signed = token(&app, "db@example.com").await;

    assert_eq!(app.get_me(&signed).await.status(), StatusCode::OK);
    assert!(!dir.path().join("keys").exists(), "nothing written to disk");
    let stored = rows(&app).await;
    let kids: Vec<&str> = stored.iter().map(|r| r.kid.as_str()).collect();
    assert_eq!(jwks_kids(&app).await, kids);
    assert_eq!(kid_of(&signed), kids[0]);
    let key = EncryptionKey::parse(ENCRYPTION_KEY).unwrap();
    for row in &stored {
        let der = key.open(&row.kid, &row.encrypted_key).unwrap();
        assert!(
            !row.encrypted_key
                .windows(32)
                .any(|w| der.windows(32).any(|d| d == w))
        );
        assert!(
            key.open("another-kid", &row.encrypted_key).is_err(),
            "bound to its kid"
        );
        assert!(
            !format!("{row:?}").contains("encrypted_key"),
            "Debug hides the key"
        );
    }
}

#[tokio::test]
async fn a_wrong_missing_or_malformed_encryption_key_refuses_to_start_and_changes_no_row() {
    let (app, _dir) = spawn_database_app().await;
    let before = rows(&app).await;
    let wrong = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let malformed = "this is not base64!";

    for (value, expected) in [
        (Some(wrong), "does not decrypt"),
        (None, "required"),
        (Some(malformed), "not standard base64"),
        (Some("c2hvcnQ="), "32 bytes"),
    ] {
        let mut settings = app.settings.clone();
        settings.keys_encryption_key = value.map(Secret::new);

        let err = Application::build(settings.clone()).await.err().unwrap();
        let message = format!("{err:#}");
        assert!(message.contains(expected), "{message}");
        assert!(
            value.is_none_or(|v| !message.contains(v)),
            "the key is never shown"
        );

        let (code, body) = crate::helpers::admin(&settings, &["keys", "rotate", "--now"]);
        assert_eq!(code, 1, "{body}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
        assert_eq!(rows(&app).await, before, "no row changed");
    }
}

#[tokio::test]
async fn replicas_starting_at_once_on_an_empty_database_make_one_active_and_one_next_key() {
    let (app, _dir) = spawn_database_app().await;
    let db = auth_server::db::connect(&app.database_url).await.unwrap();
    signing_keys::Entity::delete_many().exec(&db).await.unwrap();
    let settings = app.settings.clone();

    let builds = (0..4).map(|i| {
        let mut s = settings.clone();
        s.keys_dir = s.keys_dir.with_file_name(format!("replica-{i}"));
        Application::build(s)
    });
    let apps = futures::future::join_all(builds).await;

    assert!(apps.iter().all(|a| a.is_ok()));
    let listed = list(&app);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(in_state(&listed, "active").len(), 1);
    assert_eq!(in_state(&listed, "next").len(), 1);
    let other = start(settings).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            jwks_kids(&app).await == jwks_kids(&other).await
        })
        .await
    );
}

#[tokio::test]
async fn a_corrupted_key_row_stops_the_start_with_a_clear_error_and_changes_no_row() {
    let (app, _dir) = spawn_database_app().await;
    app.signed_up_user("cr@example.com").await;
    let active = kid_of(&token(&app, "cr@example.com").await);
    let db = auth_server::db::connect(&app.database_url).await.unwrap();
    signing_keys::Entity::update_many()
        .col_expr(
            signing_keys::Column::EncryptedKey,
            Expr::value(vec![0u8; 40]),
        )
        .filter(signing_keys::Column::Kid.eq(&active))
        .exec(&db)
        .await
        .unwrap();
    let before = rows(&app).await;

    let err = Application::build(app.settings.clone())
        .await
        .err()
        .unwrap();

    let message = format!("{err:#}");
    assert!(
        message.contains(&active) && message.contains("corrupted"),
        "{message}"
    );
    assert_eq!(rows(&app).await, before);
    // The running server keeps the keys it loaded.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(jwks_kids(&app).await[0], active);
    assert_eq!(kid_of(&token(&app, "cr@example.com").await), active);
}

#[tokio::test]
async fn migrate_to_database_moves_the_file_keys_once_and_a_database_server_uses_them() {
    let files_app = spawn_app().await;
    files_app.signed_up_user("mig@example.com").await;
    let issued = token(&files_app, "mig@example.com").await;
    let file_kids = jwks_kids(&files_app).await;
    let mut settings = files_app.settings.clone();
    database_store(&mut settings);

    let (code, moved) = crate::helpers::admin(&settings, &["keys", "migrate-to-database"]);
    assert_eq!(code, 0, "{moved}");
    let mut listed: Vec<String> = moved["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut expected = file_kids.clone();
    expected.sort();
    assert_eq!(listed, expected);

    let (code, again) = crate::helpers::admin(&settings, &["keys", "migrate-to-database"]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["moved"], serde_json::json!([]));
    assert_eq!(again["already_in_database"].as_array().unwrap().len(), 2);

    let dir = tempfile::tempdir().unwrap();
    settings.keys_dir = dir.path().join("empty");
    let db_app = start(settings).await;
    assert_eq!(jwks_kids(&db_app).await, file_kids);
    assert_eq!(db_app.get_me(&issued).await.status(), StatusCode::OK);
    assert_eq!(
        kid_of(&token(&db_app, "mig@example.com").await),
        kid_of(&issued)
    );
}

#[tokio::test]
async fn rotate_and_revoke_work_on_the_database_store() {
    let (app, _dir) = spawn_database_app().await;
    app.signed_up_user("dbr@example.com").await;
    let old = kid_of(&token(&app, "dbr@example.com").await);

    let (code, rotated) = app.admin(&["keys", "rotate", "--now"]);
    assert_eq!(code, 0, "{rotated}");
    let new = rotated["kid"].as_str().unwrap().to_owned();
    assert!(
        eventually(Duration::from_secs(5), || async {
            kid_of(&token(&app, "dbr@example.com").await) == new
        })
        .await
    );
    let (code, body) = app.admin(&["keys", "revoke", &old]);
    assert_eq!(code, 0, "{body}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            !jwks_kids(&app).await.contains(&old)
        })
        .await
    );
    let listed = list(&app);
    assert_eq!(in_state(&listed, "revoked"), [old]);
    assert_eq!(in_state(&listed, "active"), [new]);
    assert_eq!(in_state(&listed, "next").len(), 1);
}
