//! Keyset pagination: complete, duplicate-free, and stable while others insert.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// Follows `next_cursor` from the first page to the last; returns the ids in order.
async fn walk(app: &TestApp, token: &str, query: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("{query}&cursor={cursor}"),
            None => query.to_owned(),
        };
        let response = app.get_posts(token, &query).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        pages += 1;
        for post in page["items"].as_array().unwrap() {
            ids.push(post["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
        assert!(pages < 1_000, "pagination does not terminate");
    }
}

#[tokio::test]
async fn paging_visits_every_post_once_newest_first() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let mut created = Vec::new();
    for n in 0..25 {
        let post = app.create_post(&token, &format!("#{n}"), "x").await;
        created.push(post["id"].as_str().unwrap().to_owned());
    }

    let (ids, pages) = walk(&app, &token, "limit=10").await;

    created.reverse();
    assert_eq!(ids, created);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn the_default_page_holds_twenty_posts() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    for n in 0..21 {
        app.create_post(&token, &format!("#{n}"), "x").await;
    }

    let page: Value = app.get_posts(&token, "").await.json().await.unwrap();

    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn an_exactly_full_last_page_has_no_next_cursor() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    for n in 0..4 {
        app.create_post(&token, &format!("#{n}"), "x").await;
    }

    let first: Value = app.get_posts(&token, "limit=2").await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let last: Value = app
        .get_posts(&token, &format!("limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(last["items"].as_array().unwrap().len(), 2);
    assert!(last["next_cursor"].is_null());
}

#[tokio::test]
async fn pages_stay_stable_while_posts_are_inserted_concurrently() {
    // Arrange: 40 posts exist before the client starts paging.
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let mut existing = HashSet::new();
    for n in 0..40 {
        let post = app.create_post(&token, &format!("old {n}"), "x").await;
        existing.insert(post["id"].as_str().unwrap().to_owned());
    }

    // Act: page through while four writers keep inserting.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = app.client.clone();
            let url = format!("{}/posts", app.address);
            let token = app.token_for(&format!("writer-{w}"));
            tokio::spawn(async move {
                for n in 0..15 {
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&serde_json::json!({ "title": format!("new {w}/{n}"), "body": "x" }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::CREATED);
                }
            })
        })
        .collect();
    let (seen, _) = walk(&app, &token, "limit=7").await;
    for writer in writers {
        writer.await.unwrap();
    }

    // Assert: no post twice, and every post that existed at the start exactly once.
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a post appeared twice");
    for id in &existing {
        assert!(unique.contains(id), "post {id} was skipped");
    }
    // Nothing acknowledged with 201 is lost.
    let (all, _) = walk(&app, &token, "limit=100").await;
    assert_eq!(all.len(), 40 + 4 * 15);
}

#[tokio::test]
async fn out_of_range_limits_are_rejected_with_a_problem() {
    let app = spawn_app().await;
    let token = app.token_for("alice");

    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=1e3",
        "limit=99999999999999999999999999",
        "limit=",
    ] {
        let response = app.get_posts(&token, query).await;
        let status = response.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {status}"
        );
        assert_problem(response, status).await;
    }
    assert_eq!(
        app.get_posts(&token, "limit=100").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_posts(&token, "limit=1").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn forged_or_garbage_cursors_are_rejected_with_a_problem() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let long = "A".repeat(5_000);

    for cursor in [
        "x",
        "%00",
        "!!!!",
        "eyJhbGciOiJub25lIn0",
        long.as_str(),
        "MTIzOm5vdC1hLXV1aWQ",
    ] {
        let response = app.get_posts(&token, &format!("cursor={cursor}")).await;
        assert_problem(response, StatusCode::BAD_REQUEST).await;
        let mine = app.get_my_posts(&token, &format!("cursor={cursor}")).await;
        assert_problem(mine, StatusCode::BAD_REQUEST).await;
    }
}
