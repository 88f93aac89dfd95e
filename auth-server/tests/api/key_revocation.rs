//! `keys revoke`: a key leaves the JWKS and everything this server accepts.

use std::time::Duration;

use reqwest::StatusCode;

use crate::{
    helpers::{spawn_app, test_settings},
    key_files::write_old_style_key,
    keys::{entry, eventually, in_state, jwks_kids, kid_of, list, token},
};

#[tokio::test]
async fn revoking_the_active_key_promotes_the_next_key_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    app.signed_up_user("rv@example.com").await;
    let old_token = token(&app, "rv@example.com").await;
    let revoked = kid_of(&old_token);
    let next = in_state(&list(&app), "next")[0].clone();

    let (code, body) = app.admin(&["keys", "revoke", &revoked]);

    assert_eq!(code, 0, "{body}");
    assert_eq!(body, serde_json::json!({"kid": revoked}));
    assert!(
        eventually(Duration::from_secs(5), || async {
            !jwks_kids(&app).await.contains(&revoked)
        })
        .await,
        "gone from the JWKS within the reload interval"
    );
    assert_eq!(
        app.get_me(&old_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let secret = app
        .create_client("inspector", true, &["client_credentials"], "posts:read")
        .await
        .unwrap();
    let introspected = app.introspect("inspector", &secret, &old_token).await;
    assert_eq!(introspected["active"], false, "{introspected}");
    let fresh = token(&app, "rv@example.com").await;
    assert_eq!(kid_of(&fresh), next, "the next key signs at once");
    assert_eq!(app.get_me(&fresh).await.status(), StatusCode::OK);
    let listed = list(&app);
    assert_eq!(entry(&listed, &revoked)["state"], "revoked");
    assert!(entry(&listed, &revoked)["revoked_at"].is_string());
    assert_eq!(in_state(&listed, "active"), [next.as_str()]);
    let new_next = in_state(&listed, "next");
    assert_eq!(
        new_next.len(),
        1,
        "a new next key replaces the promoted one"
    );
    assert_eq!(jwks_kids(&app).await, [next, new_next[0].clone()]);
}

#[tokio::test]
async fn revoking_a_next_key_replaces_it_and_the_signing_key_stays() {
    let app = spawn_app().await;
    app.signed_up_user("n@example.com").await;
    let signing = kid_of(&token(&app, "n@example.com").await);
    let next = in_state(&list(&app), "next")[0].clone();

    let (code, body) = app.admin(&["keys", "revoke", &next]);

    assert_eq!(code, 0, "{body}");
    let listed = list(&app);
    assert_eq!(in_state(&listed, "active"), [signing.as_str()]);
    let replacement = in_state(&listed, "next");
    assert_eq!(replacement.len(), 1);
    assert_ne!(replacement[0], next);
    assert!(
        eventually(Duration::from_secs(5), || async {
            jwks_kids(&app).await == [signing.clone(), replacement[0].clone()]
        })
        .await
    );
}

#[tokio::test]
async fn revoking_an_unknown_or_revoked_kid_is_a_json_error() {
    let app = spawn_app().await;
    let next = in_state(&list(&app), "next")[0].clone();

    let (code, body) = app.admin(&["keys", "revoke", "no-such-kid"]);
    assert_eq!(code, 1);
    assert!(
        body["error"].as_str().unwrap().contains("no-such-kid"),
        "{body}"
    );

    assert_eq!(app.admin(&["keys", "revoke", &next]).0, 0);
    let (code, body) = app.admin(&["keys", "revoke", &next]);
    assert_eq!(code, 1);
    assert!(
        body["error"].as_str().unwrap().contains("already revoked"),
        "{body}"
    );
}

#[tokio::test]
async fn revoking_the_last_key_that_can_sign_is_refused_and_changes_nothing() {
    // A directory of an earlier version that no server has opened yet: no next key.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let only = write_old_style_key(&keys, 60, None);
    let mut settings = test_settings(dir.path(), "sqlite::memory:".into());
    settings.keys_dir = keys.clone();
    let before = std::fs::read_dir(&keys).unwrap().count();

    let (code, body) = crate::helpers::admin(&settings, &["keys", "revoke", &only]);

    assert_eq!(code, 1);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("only key that can sign"), "{error}");
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), before);
    let (_, listed) = crate::helpers::admin(&settings, &["keys", "list"]);
    assert_eq!(listed[0]["state"], "active");
}
