use std::time::Duration;

use auth_server::keys::KeyFiles;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn a_rotated_key_signs_within_seconds_and_the_old_one_stays_published() {
    let app = spawn_app().await;
    app.signed_up_user("k@example.com").await;
    let old_token = app.password_tokens("k@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = kid_of(&old_token);

    let files = KeyFiles::new(app.keys_dir(), 2048);
    let new = tokio::task::spawn_blocking(move || files.rotate())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let new_token = app.password_tokens("k@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid_of(&new_token), new.kid);
    let jwks = app.get_jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [new.kid.as_str(), old_kid.as_str()],
        "active key first, retired key kept"
    );
    assert_eq!(app.get_me(&old_token).await.status(), StatusCode::OK);
    assert_eq!(app.get_me(&new_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_private_key_file_is_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_app_with(|s| s.keys_dir = dir.path().join("fresh-keys")).await;

    let kid = app.get_jwks().await["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    use std::os::unix::fs::PermissionsExt;
    let pem = dir.path().join("fresh-keys").join(format!("{kid}.pem"));
    assert_eq!(
        std::fs::metadata(pem).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn automatic_rotation_replaces_a_key_older_than_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let files = KeyFiles::new(&keys_dir, 2048);
    let old = tokio::task::spawn_blocking({
        let files = files.clone();
        move || files.generate()
    })
    .await
    .unwrap()
    .unwrap();
    // Age the key by three days.
    let meta_path = keys_dir.join(format!("{}.json", old.kid));
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["created_at"] =
        serde_json::json!((chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339());
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();

    let app = crate::helpers::spawn_app_with(|s| {
        s.keys_dir = keys_dir.clone();
        s.key_rotation_days = Some(Duration::from_secs(86_400));
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let jwks = app.get_jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_ne!(kids[0], old.kid, "a new key is active");
    assert_eq!(kids[1], old.kid, "the old key stays published");
}
