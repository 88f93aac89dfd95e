//! The posts API: create, read, list, change, delete, and who may do what.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app, www_authenticate};

#[tokio::test]
async fn a_post_walks_through_create_list_page_patch_and_delete() {
    // Arrange
    let app = spawn_app().await;
    let alice = app.token_for("alice");

    // Act: create three posts
    let mut created = Vec::new();
    for n in 1..=3 {
        created.push(app.create_post(&alice, &format!("Post {n}"), "Hello").await);
    }

    // Assert: the list is newest first and pages with a cursor
    let first: Value = app.get_posts(&alice, "limit=2").await.json().await.unwrap();
    let titles: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Post 3", "Post 2"]);
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    let second: Value = app
        .get_posts(&alice, &format!("limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["title"], "Post 1");
    assert!(second["next_cursor"].is_null());

    // Act: patch the first post
    let id = created[0]["id"].as_str().unwrap();
    let patched = app
        .patch_post(&alice, id, &json!({ "title": "Post 1, revised" }))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["title"], "Post 1, revised");
    assert_eq!(patched["body"], "Hello");
    assert!(patched["updated_at"].as_str() >= created[0]["updated_at"].as_str());
    let fetched: Value = app.get_post(&alice, id).await.json().await.unwrap();
    assert_eq!(fetched, patched);

    // Act: delete it
    let deleted = app.delete_post(&alice, id).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get_post(&alice, id).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn create_answers_201_with_the_post_and_its_location() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    let response = app
        .post_posts(&token, &json!({ "title": "Hi", "body": "There" }))
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let post: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/posts/{}", post["id"].as_str().unwrap()));
    assert_eq!(post["author_id"], "alice");
    assert_eq!(post["title"], "Hi");
    assert_eq!(post["body"], "There");
    assert_eq!(post["created_at"], post["updated_at"]);
    for field in ["created_at", "updated_at"] {
        let time = post[field].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339");
        assert_eq!(parsed.offset().local_minus_utc(), 0, "{time} is UTC");
    }
    let fetched = app.get_post(&token, post["id"].as_str().unwrap()).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.json::<Value>().await.unwrap(), post);
}

#[tokio::test]
async fn only_the_author_may_change_or_delete_a_post() {
    let app = spawn_app().await;
    let alice = app.token_for("alice");
    let mallory = app.token_for("mallory");
    let post = app.create_post(&alice, "Mine", "Keep out").await;
    let id = post["id"].as_str().unwrap();

    let patch = app
        .patch_post(&mallory, id, &json!({ "title": "Yours now" }))
        .await;
    assert_problem(patch, StatusCode::FORBIDDEN).await;
    let delete = app.delete_post(&mallory, id).await;
    assert_problem(delete, StatusCode::FORBIDDEN).await;

    let unchanged: Value = app.get_post(&mallory, id).await.json().await.unwrap();
    assert_eq!(unchanged, post);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let unknown = uuid::Uuid::now_v7().to_string();

    for id in [
        unknown.as_str(),
        "not-a-uuid",
        "1",
        "%2e%2e%2fetc",
        "%C3%A9t%C3%A9",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        assert_problem(app.get_post(&token, id).await, StatusCode::NOT_FOUND).await;
        let patch = app.patch_post(&token, id, &json!({ "title": "x" })).await;
        assert_problem(patch, StatusCode::NOT_FOUND).await;
        assert_problem(app.delete_post(&token, id).await, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn deleting_twice_answers_404_the_second_time() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let post = app.create_post(&token, "Once", "Only").await;
    let id = post["id"].as_str().unwrap();

    assert_eq!(
        app.delete_post(&token, id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(app.delete_post(&token, id).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn titles_and_bodies_are_measured_in_characters_not_bytes() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    // 200 two-byte characters: 400 bytes, still a valid title.
    let ok = app
        .post_posts(&token, &json!({ "title": "é".repeat(200), "body": "b" }))
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let too_long = app
        .post_posts(&token, &json!({ "title": "é".repeat(201), "body": "b" }))
        .await;
    assert_problem(too_long, StatusCode::UNPROCESSABLE_ENTITY).await;

    // The limit counts characters: 100,000 two-byte characters (200 KB) are a valid body.
    let ok = app
        .post_posts(
            &token,
            &json!({ "title": "t", "body": "é".repeat(100_000) }),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let stored: Value = ok.json().await.unwrap();
    assert_eq!(stored["body"].as_str().unwrap().chars().count(), 100_000);
    let too_long = app
        .post_posts(
            &token,
            &json!({ "title": "t", "body": "a".repeat(100_001) }),
        )
        .await;
    assert_problem(too_long, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn empty_or_blank_titles_and_bodies_are_422() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    for body in [
        json!({ "title": "", "body": "b" }),
        json!({ "title": "   ", "body": "b" }),
        json!({ "title": "t", "body": "" }),
        json!({ "title": "t", "body": "\n\t " }),
        json!({ "title": "two\nlines", "body": "b" }),
        json!({ "title": "t", "body": "nul\u{0}byte" }),
    ] {
        let response = app.post_posts(&token, &body).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn a_patch_must_change_something_valid() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let post = app.create_post(&token, "Title", "Body").await;
    let id = post["id"].as_str().unwrap();

    for body in [
        json!({}),
        json!({ "title": null, "body": null }),
        json!({ "title": "" }),
        json!({ "body": "x".repeat(100_001) }),
    ] {
        let response = app.patch_post(&token, id, &body).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let body_only = app
        .patch_post(&token, id, &json!({ "body": "New body" }))
        .await;
    assert_eq!(body_only.status(), StatusCode::OK);
    let body_only: Value = body_only.json().await.unwrap();
    assert_eq!(body_only["title"], "Title");
    assert_eq!(body_only["body"], "New body");
}

#[tokio::test]
async fn the_author_filter_and_my_posts_show_one_authors_posts() {
    let app = spawn_app().await;
    let alice = app.token_for("alice");
    let bob = app.token_for("bob");
    app.create_post(&alice, "A1", "x").await;
    app.create_post(&bob, "B1", "x").await;
    app.create_post(&alice, "A2", "x").await;

    let titles = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|post| post["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_alice: Value = app
        .get_posts(&bob, "author=alice")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(by_alice), ["A2", "A1"]);
    let everyone: Value = app.get_posts(&bob, "").await.json().await.unwrap();
    assert_eq!(titles(everyone), ["A2", "B1", "A1"]);
    let mine: Value = app.get_my_posts(&bob, "").await.json().await.unwrap();
    assert_eq!(titles(mine), ["B1"]);
    let nobody: Value = app
        .get_posts(&bob, "author=carol")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nobody, json!({ "items": [], "next_cursor": null }));
}

#[tokio::test]
async fn reads_need_posts_read_and_writes_need_posts_write() {
    let app = spawn_app().await;
    let reader = app.mint_token(json!({ "sub": "r", "scope": "posts:read" }));
    let writer = app.mint_token(json!({ "sub": "w", "scope": "posts:write" }));
    let post = app.create_post(&writer, "t", "b").await;
    let id = post["id"].as_str().unwrap();

    let write_scope =
        "Bearer realm=\"posts-api\", error=\"insufficient_scope\", scope=\"posts:write\"";
    let read_scope =
        "Bearer realm=\"posts-api\", error=\"insufficient_scope\", scope=\"posts:read\"";
    for response in [
        app.post_posts(&reader, &json!({ "title": "t", "body": "b" }))
            .await,
        app.patch_post(&reader, id, &json!({ "title": "t" })).await,
        app.delete_post(&reader, id).await,
    ] {
        assert_eq!(www_authenticate(&response), write_scope);
        assert_problem(response, StatusCode::FORBIDDEN).await;
    }
    for response in [
        app.get_posts(&writer, "").await,
        app.get_my_posts(&writer, "").await,
        app.get_post(&writer, id).await,
    ] {
        assert_eq!(www_authenticate(&response), read_scope);
        assert_problem(response, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(app.get_post(&reader, id).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_posts_route_needs_a_token() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7().to_string();
    let routes = [
        (reqwest::Method::POST, "/posts".to_owned()),
        (reqwest::Method::GET, "/posts".to_owned()),
        (reqwest::Method::GET, "/posts/me".to_owned()),
        (reqwest::Method::GET, format!("/posts/{id}")),
        (reqwest::Method::PATCH, format!("/posts/{id}")),
        (reqwest::Method::DELETE, format!("/posts/{id}")),
    ];

    for (method, path) in routes {
        let response = app
            .request(method.clone(), &path, None)
            .json(&json!({ "title": "t", "body": "b" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            www_authenticate(&response),
            "Bearer realm=\"posts-api\"",
            "{method} {path}"
        );
        assert_problem(response, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn a_stopped_app_shuts_down_cleanly() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    app.create_post(&token, "Before", "shutdown").await;
    let address = app.address.clone();

    app.shutdown().await.expect("a clean shutdown");

    let refused = reqwest::get(format!("{address}/healthz")).await;
    assert!(refused.is_err(), "the port is closed after shutdown");
}

#[tokio::test]
async fn a_post_answered_201_is_in_the_very_next_list() {
    // Arrange
    let app = spawn_app().await;
    let alice = app.token_for("alice");

    for n in 0..20 {
        // Act
        let created = app.create_post(&alice, &format!("Post {n}"), "body").await;
        let mine: Value = app
            .get_my_posts(&alice, "limit=1")
            .await
            .json()
            .await
            .unwrap();
        let everyone: Value = app.get_posts(&alice, "limit=1").await.json().await.unwrap();

        // Assert: each list reads after the commit that the 201 acknowledged.
        assert_eq!(mine["items"][0], created, "GET /posts/me after post {n}");
        assert_eq!(everyone["items"][0], created, "GET /posts after post {n}");
    }
}
