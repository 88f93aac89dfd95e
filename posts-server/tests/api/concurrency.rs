//! Many writers at once: nothing lost, nothing doubled, no 5xx.

use std::collections::{HashMap, HashSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use posts_server::startup::Application;

use crate::helpers::{
    JwksServer, TestApp, TestDatabase, keys, launch_on, spawn_app, test_settings, token_for,
};

/// Follows `next_cursor` from the first page to the last; returns every post.
async fn every_post(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut posts = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let query = match &cursor {
            Some(cursor) => format!("{query}&cursor={cursor}"),
            None => query.to_owned(),
        };
        let response = app.get_posts(token, &query).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        posts.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return posts,
        }
    }
    panic!("pagination does not terminate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_creations_are_all_stored_and_listed() {
    let app = spawn_app().await;
    let authors: Vec<String> = (0..10).map(|n| format!("author-{n}")).collect();
    let tokens: Vec<String> = authors.iter().map(|author| app.token_for(author)).collect();

    let mut writers = tokio::task::JoinSet::new();
    for n in 0..200 {
        let client = app.client.clone();
        let url = format!("{}/posts", app.address);
        let token = tokens[n % tokens.len()].clone();
        writers.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "title": format!("post {n}"), "body": "concurrent" }))
                .send()
                .await
                .expect("the request is answered");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        });
    }
    let mut created = HashMap::new();
    while let Some(joined) = writers.join_next().await {
        let (status, post) = joined.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{post}");
        created.insert(post["id"].as_str().unwrap().to_owned(), post);
    }

    assert_eq!(created.len(), 200, "every post has its own id");
    let listed = every_post(&app, &tokens[0], "limit=100").await;
    let listed_ids: Vec<&str> = listed.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids.len(), 200, "no post listed twice or missing");
    assert_eq!(
        listed_ids.iter().copied().collect::<HashSet<_>>(),
        created.keys().map(String::as_str).collect::<HashSet<_>>()
    );
    for post in &listed {
        assert_eq!(post, &created[post["id"].as_str().unwrap()]);
    }
    let alices = every_post(&app, &tokens[0], &format!("limit=7&author={}", authors[0])).await;
    assert_eq!(alices.len(), 20);
}

/// Replicas of a new deployment start together on an empty PostgreSQL database: each must
/// come up, whichever of them applies the migrations, and the schema must be whole
/// afterwards. (Replicas are a PostgreSQL deployment; SQLite serves one process per file.)
#[tokio::test]
async fn replicas_starting_at_once_on_a_new_database_all_start() {
    if std::env::var_os("TEST_POSTGRES_URL").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(dir.path()).await;
    let jwks = JwksServer::start(vec![keys().primary.jwk.clone()]).await;
    let settings = test_settings(&database.url, Some(jwks.url.clone()));

    let build = || Application::build(settings.clone());
    let built = tokio::join!(build(), build(), build(), build());

    for result in [&built.0, &built.1, &built.2, &built.3] {
        if let Err(e) = result {
            panic!("a replica did not start: {e:#}");
        }
    }
    drop(built);
    let app = launch_on(database, dir, Some(jwks), |_| {}).await;
    app.wait_until_ready().await;
    let post = app.create_post(&token_for("alice"), "t", "b").await;
    assert_eq!(post["title"], "t");
}
