//! The keys directory (`AUTH_KEYS_STORE=files`, the default): file modes, directories
//! written by earlier versions, corrupted files, and replicas sharing one directory.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use auth_server::{keys::PrivateKey, startup::Application};
use reqwest::StatusCode;

use crate::{
    helpers::{spawn_app, spawn_app_with, test_settings},
    keys::{eventually, in_state, jwks_kids, kid_of, list, token},
};

/// Writes a key as versions before next keys wrote it: `<kid>.json` with only
/// `created_at` and `retired_at`. Returns its kid.
pub fn write_old_style_key(dir: &Path, age_secs: i64, retired_secs_ago: Option<i64>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let key = PrivateKey::generate(2048).unwrap();
    let kid = key.kid().to_owned();
    let pem = dir.join(format!("{kid}.pem"));
    std::fs::write(&pem, key.to_pem().unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ago = |secs| (chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339();
    let meta = serde_json::json!({
        "kid": kid,
        "created_at": ago(age_secs),
        "retired_at": retired_secs_ago.map(ago),
    });
    std::fs::write(dir.join(format!("{kid}.json")), meta.to_string()).unwrap();
    kid
}

/// Every file of a directory with its contents, to show that nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn the_private_key_files_are_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("fresh-keys");
    let app = spawn_app_with(|s| s.keys_dir = keys.clone()).await;

    for kid in jwks_kids(&app).await {
        let mode = std::fs::metadata(keys.join(format!("{kid}.pem")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn a_keys_directory_from_before_next_keys_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let retired = write_old_style_key(&keys, 7200, Some(60));
    let active = write_old_style_key(&keys, 60, None);

    let app = spawn_app_with(|s| s.keys_dir = keys.clone()).await;
    app.signed_up_user("old@example.com").await;

    assert_eq!(kid_of(&token(&app, "old@example.com").await), active);
    let listed = list(&app);
    assert_eq!(in_state(&listed, "active"), [active.as_str()]);
    assert_eq!(in_state(&listed, "retired"), [retired.as_str()]);
    let next = in_state(&listed, "next");
    assert_eq!(next.len(), 1, "a next key is made on start");
    assert_eq!(jwks_kids(&app).await, [active, next[0].clone(), retired]);
}

#[tokio::test]
async fn a_corrupted_key_file_stops_the_start_with_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let kid = write_old_style_key(&keys, 60, None);
    std::fs::write(
        keys.join(format!("{kid}.pem")),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n",
    )
    .unwrap();
    let before = snapshot(&keys);
    let settings = |dir: &Path| {
        let mut s = test_settings(
            dir,
            format!("sqlite://{}?mode=rwc", dir.join("a.db").display()),
        );
        s.keys_dir = keys.clone();
        s
    };

    let err = Application::build(settings(dir.path()))
        .await
        .err()
        .unwrap();

    let message = format!("{err:#}");
    assert!(
        message.contains(&kid) && message.contains("cannot"),
        "{message}"
    );
    assert_eq!(snapshot(&keys), before, "no key was added or changed");

    std::fs::write(keys.join(format!("{kid}.json")), b"{\"kid\":").unwrap();
    let err = Application::build(settings(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains(&format!("{kid}.json")),
        "{err:#}"
    );
}

#[tokio::test]
async fn files_corrupted_while_running_never_leave_a_jwks_without_the_signing_key() {
    let app = spawn_app().await;
    app.signed_up_user("c@example.com").await;
    let signing = kid_of(&token(&app, "c@example.com").await);
    let keys = app.keys_dir();

    for entry in std::fs::read_dir(&keys).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(jwks_kids(&app).await[0], signing);
    let fresh = token(&app, "c@example.com").await;
    assert_eq!(kid_of(&fresh), signing);
    assert_eq!(app.get_me(&fresh).await.status(), StatusCode::OK);
    let (code, body) = app.admin(&["keys", "rotate"]);
    assert_eq!(code, 1, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unreadable key metadata"),
        "{body}"
    );
}

#[tokio::test]
async fn replicas_starting_at_once_on_an_empty_directory_make_one_active_and_one_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("shared-keys");
    let first = spawn_app_with(|s| s.keys_dir = dir.path().join("unused")).await;
    let mut settings = first.settings.clone();
    settings.keys_dir = keys.clone();

    let builds = (0..4).map(|_| Application::build(settings.clone()));
    let apps = futures::future::join_all(builds).await;

    assert!(apps.iter().all(|a| a.is_ok()));
    let app = crate::helpers::start(settings).await;
    let listed = list(&app);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(in_state(&listed, "active").len(), 1);
    assert_eq!(in_state(&listed, "next").len(), 1);
    assert!(
        eventually(Duration::from_secs(1), || async {
            jwks_kids(&app).await.len() == 2
        })
        .await
    );
}
