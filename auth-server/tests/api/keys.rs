//! Key rotation as an operator runs it (the CLI), seen through HTTP: the next key is
//! published before it signs, and servers switch at `active_from` without a restart.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, start};

/// The `kid` in a token's header.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The kids of the published key set, in order.
pub async fn jwks_kids(app: &TestApp) -> Vec<String> {
    kids(&app.get_jwks().await)
}

/// The kids of a key set.
pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// `keys list`, which must succeed.
pub fn list(app: &TestApp) -> Vec<Value> {
    let (code, listed) = app.admin(&["keys", "list"]);
    assert_eq!(code, 0, "{listed}");
    listed.as_array().unwrap().clone()
}

/// The listed entry of `kid`.
pub fn entry<'a>(listed: &'a [Value], kid: &str) -> &'a Value {
    listed
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("{kid} not listed: {listed:?}"))
}

/// The kids listed in `state`, oldest first.
pub fn in_state(listed: &[Value], state: &str) -> Vec<String> {
    let mut kids: Vec<String> = listed
        .iter()
        .filter(|k| k["state"] == state)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.reverse();
    kids
}

/// A time as printed by the CLI.
pub fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// A fresh access token for `email` (signed up already).
pub async fn token(app: &TestApp, email: &str) -> String {
    app.password_tokens(email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check().await
}

/// A server on an empty keys directory of its own, so that its next key is fresh.
async fn spawn_with_fresh_keys(lead: u64) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let app = spawn_app_with(|s| {
        s.keys_dir = keys;
        s.key_publish_lead = Some(Duration::from_secs(lead));
    })
    .await;
    (app, dir)
}

#[tokio::test]
async fn the_jwks_has_the_signing_key_first_and_a_next_key_that_signs_nothing() {
    let app = spawn_app().await;
    app.signed_up_user("k@example.com").await;

    let signed_by = kid_of(&token(&app, "k@example.com").await);

    let jwks = app.get_jwks().await;
    assert_eq!(kids(&jwks).len(), 2, "{jwks}");
    assert_eq!(kids(&jwks)[0], signed_by);
    for key in jwks["keys"].as_array().unwrap() {
        assert_eq!(
            (&key["kty"], &key["alg"], &key["use"]),
            (&"RSA".into(), &"RS256".into(), &"sig".into())
        );
    }
    let listed = list(&app);
    assert_eq!(in_state(&listed, "active"), [signed_by]);
    assert_eq!(in_state(&listed, "next"), [kids(&jwks)[1].clone()]);
}

#[tokio::test]
async fn a_verifier_holding_the_jwks_from_before_a_rotation_knows_the_key_that_signs_after_it() {
    let app = spawn_app_with(|s| s.key_publish_lead = Some(Duration::from_secs(2))).await;
    app.signed_up_user("v@example.com").await;
    let cached = app.get_jwks().await;

    let (code, rotated) = app.admin(&["keys", "rotate"]);
    assert_eq!(code, 0, "{rotated}");
    let wait = time(&rotated["active_from"]) - Utc::now();
    tokio::time::sleep(wait.to_std().unwrap_or_default() + Duration::from_millis(1500)).await;
    let after = token(&app, "v@example.com").await;

    assert_eq!(kid_of(&after), rotated["kid"].as_str().unwrap());
    let key = cached["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == rotated["kid"])
        .expect("the key signing after the rotation was in the key set fetched before it");
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["posts-api"]);
    validation.set_issuer(&["http://127.0.0.1:8000"]);
    jsonwebtoken::decode::<Value>(&after, &decoding, &validation)
        .expect("verifies with the old key set alone");
}

#[tokio::test]
async fn rotate_schedules_the_next_key_after_the_lead_and_rotate_now_promotes_it_at_once() {
    let (app, _dir) = spawn_with_fresh_keys(60).await;
    app.signed_up_user("r@example.com").await;
    let before = list(&app);
    let old = in_state(&before, "active")[0].clone();
    let next = in_state(&before, "next")[0].clone();

    let (code, rotated) = app.admin(&["keys", "rotate"]);

    assert_eq!(code, 0, "{rotated}");
    assert_eq!(rotated["kid"], next.as_str(), "the next key is promoted");
    let active_from = time(&rotated["active_from"]);
    let published = time(&entry(&before, &next)["created_at"]);
    assert_eq!(active_from, published + chrono::Duration::seconds(60));
    let new_next = rotated["next_kid"].as_str().unwrap().to_owned();
    let listed = list(&app);
    assert_eq!(in_state(&listed, "active"), [old.as_str()]);
    assert_eq!(in_state(&listed, "next"), [next.clone(), new_next.clone()]);
    assert_eq!(time(&entry(&listed, &next)["active_from"]), active_from);
    assert_eq!(time(&entry(&listed, &old)["retired_at"]), active_from);
    assert!(
        eventually(Duration::from_secs(5), || async {
            jwks_kids(&app).await == [old.clone(), next.clone(), new_next.clone()]
        })
        .await,
        "the active key first, then the next keys in the order they take over"
    );
    assert_eq!(kid_of(&token(&app, "r@example.com").await), old);

    // A second rotation waits for the first one.
    let (code, refused) = app.admin(&["keys", "rotate"]);
    assert_eq!(code, 1);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("already scheduled"),
        "{refused}"
    );
    assert_eq!(list(&app).len(), 3, "nothing changed");

    // An emergency promotes the scheduled key at once; the new next key stays next.
    let (code, now) = app.admin(&["keys", "rotate", "--now"]);
    assert_eq!(code, 0, "{now}");
    assert_eq!(
        (&now["kid"], &now["next_kid"]),
        (&next.as_str().into(), &new_next.as_str().into())
    );
    assert!(time(&now["active_from"]) <= Utc::now());
    assert!(
        eventually(Duration::from_secs(5), || async {
            kid_of(&token(&app, "r@example.com").await) == next
        })
        .await
    );
    let listed = list(&app);
    assert_eq!(in_state(&listed, "retired"), [old.as_str()]);
    assert_eq!(in_state(&listed, "active"), [next.as_str()]);
    assert_eq!(in_state(&listed, "next"), [new_next]);
    assert!(
        jwks_kids(&app).await.contains(&old),
        "its tokens are still alive"
    );
}

#[tokio::test]
async fn every_server_switches_to_a_scheduled_key_at_active_from_without_a_restart() {
    // The lead outlasts the set-up below, so the rotation is really scheduled.
    let (a, _dir) = spawn_with_fresh_keys(8).await;
    let b = start(a.settings.clone()).await;
    a.signed_up_user("s@example.com").await;
    let old = kid_of(&token(&a, "s@example.com").await);

    let (code, rotated) = a.admin(&["keys", "rotate"]);
    assert_eq!(code, 0, "{rotated}");
    let (new, active_from) = (
        rotated["kid"].as_str().unwrap(),
        time(&rotated["active_from"]),
    );
    assert!(active_from > Utc::now(), "scheduled after the lead");

    let deadline = active_from + chrono::Duration::milliseconds(2500);
    let mut switched = [false, false];
    while Utc::now() < deadline {
        for (i, server) in [&a, &b].into_iter().enumerate() {
            let sent = Utc::now();
            let kid = kid_of(&token(server, "s@example.com").await);
            let received = Utc::now();
            if received < active_from {
                assert_eq!(
                    kid, old,
                    "nothing signs with the new key before active_from"
                );
            }
            if sent > active_from + chrono::Duration::milliseconds(100) {
                assert_eq!(kid, new, "server {i} still signs with the old key");
                switched[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(switched, [true, true]);
}

#[tokio::test]
async fn automatic_rotation_schedules_like_keys_rotate_once_for_all_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    // A key that has signed for three days, and no next key yet (an old directory).
    let old = crate::key_files::write_old_style_key(&keys, 3 * 86_400, None);
    let app = spawn_app_with(|s| {
        s.keys_dir = keys.clone();
        s.key_rotation_days = Some(Duration::from_secs(86_400));
        s.key_publish_lead = Some(Duration::from_secs(2));
    })
    .await;
    let replica = start(app.settings.clone()).await;
    app.signed_up_user("auto@example.com").await;

    let rotated = eventually(Duration::from_secs(15), || async {
        kid_of(&token(&app, "auto@example.com").await) != old
    })
    .await;

    assert!(rotated, "a new key signs after the lead");
    let listed = list(&app);
    assert_eq!(
        listed.len(),
        3,
        "one rotation, not one per replica: {listed:?}"
    );
    assert_eq!(in_state(&listed, "retired"), [old.as_str()]);
    assert_eq!(in_state(&listed, "next").len(), 1);
    let signing = in_state(&listed, "active");
    assert_eq!(
        kid_of(&token(&replica, "auto@example.com").await),
        signing[0]
    );
    let published = jwks_kids(&app).await;
    assert_eq!(published[0], signing[0]);
    assert!(published.contains(&old), "the old key stays published");
    assert_eq!(
        app.get_me(&token(&replica, "auto@example.com").await)
            .await
            .status(),
        StatusCode::OK
    );
}
