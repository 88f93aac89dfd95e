use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{access_token, helpers::spawn_app, spawn_posts};

#[tokio::test]
async fn sign_up_token_create_list_page_patch_delete() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    let user = auth.signed_up_user("writer@example.com").await;
    let token = access_token(&auth, "writer@example.com").await;

    let mut ids = Vec::new();
    for i in 0..5 {
        let resp = posts.create(&token, &format!("post {i}"), "hello").await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let post: Value = resp.json().await.unwrap();
        assert_eq!(post["author_id"], user["id"]);
        assert!(location.ends_with(post["id"].as_str().unwrap()));
        ids.push(post["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut path = "/posts?limit=2".to_owned();
    loop {
        let page: Value = posts.get(&path, Some(&token)).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/posts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let mine: Value = posts
        .get("/posts/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 5);

    let patched = posts
        .patch(&token, &ids[0], &json!({"title": "renamed"}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(patched.json::<Value>().await.unwrap()["title"], "renamed");

    assert_eq!(
        posts.delete(&token, &ids[0]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        posts
            .get(&format!("/posts/{}", ids[0]), Some(&token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn only_the_author_may_change_a_post() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    auth.signed_up_user("author@example.com").await;
    auth.signed_up_user("other@example.com").await;
    let author = access_token(&auth, "author@example.com").await;
    let other = access_token(&auth, "other@example.com").await;
    let post: Value = posts
        .create(&author, "mine", "body")
        .await
        .json()
        .await
        .unwrap();
    let id = post["id"].as_str().unwrap();

    assert_eq!(
        posts
            .get(&format!("/posts/{id}"), Some(&other))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        posts
            .patch(&other, id, &json!({"body": "x"}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        posts.delete(&other, id).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_read_only_token_cannot_write() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    auth.signed_up_user("reader@example.com").await;
    let body: Value = auth
        .post_token(&[
            ("grant_type", "password"),
            ("username", "reader@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("scope", "posts:read"),
        ])
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();

    let resp = posts.create(token, "t", "b").await;

    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains("posts:write"), "{challenge}");
    assert_eq!(
        posts.get("/posts", Some(token)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_client_credentials_token_acts_as_the_client() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    let secret = auth
        .create_client(
            "importer",
            true,
            &["client_credentials"],
            "posts:read posts:write",
        )
        .await
        .unwrap();
    let body: Value = auth
        .post_token_basic("importer", &secret, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();

    let resp = posts
        .create(body["access_token"].as_str().unwrap(), "imported", "b")
        .await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.json::<Value>().await.unwrap()["author_id"], "importer");
}

#[tokio::test]
async fn a_token_for_another_audience_or_tampered_is_refused() {
    let auth = spawn_app_with_audience("billing-api").await;
    let posts = spawn_posts(&auth.address).await;
    auth.signed_up_user("a@example.com").await;
    let token = access_token(&auth, "a@example.com").await;

    let resp = posts.get("/posts", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

async fn spawn_app_with_audience(audience: &str) -> crate::helpers::TestApp {
    let audience = audience.to_owned();
    crate::helpers::spawn_app_with(move |s| s.audience = audience).await
}

#[tokio::test]
async fn after_a_key_rotation_both_old_and_new_tokens_are_accepted() {
    let auth = spawn_app().await;
    let posts = spawn_posts(&auth.address).await;
    auth.signed_up_user("rot@example.com").await;
    let old = access_token(&auth, "rot@example.com").await;
    assert_eq!(
        posts.get("/posts/me", Some(&old)).await.status(),
        StatusCode::OK
    );

    let (code, rotated) = auth.admin(&["keys", "rotate", "--now"]);
    assert_eq!(code, 0, "{rotated}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let new = access_token(&auth, "rot@example.com").await;

    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        rotated["kid"].as_str().unwrap()
    );
    assert_eq!(
        posts.get("/posts/me", Some(&new)).await.status(),
        StatusCode::OK,
        "the new key was published before it signed"
    );
    assert_eq!(
        posts.get("/posts/me", Some(&old)).await.status(),
        StatusCode::OK,
        "retired key still trusted"
    );
}
