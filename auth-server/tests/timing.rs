//! User enumeration through timing. A test binary of its own, so that no other test of
//! the suite competes for the CPU while it measures.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{TestApp, spawn_app_with};

async fn failed_login(app: &TestApp, email: &str) -> Duration {
    let started = Instant::now();
    let resp = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", "wrong password"),
        ])
        .await;
    assert_eq!(resp.status(), 400);
    started.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn failed_logins_for_unknown_users_and_wrong_passwords_take_similar_time() {
    // Production Argon2 parameters: the point is that both paths pay for one hash.
    let app = spawn_app_with(|s| {
        s.argon2 = auth_server::config::Argon2Settings {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        };
        s.throttle.max_failures = 10_000;
    })
    .await;
    app.signed_up_user("known@example.com").await;
    // Warm up connections and caches on both paths.
    failed_login(&app, "warmup@example.com").await;
    failed_login(&app, "known@example.com").await;

    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..25 {
        // Interleaved, so that load from outside affects both series alike.
        unknown.push(failed_login(&app, &format!("nobody{i}@example.com")).await);
        wrong.push(failed_login(&app, "known@example.com").await);
    }

    let (u, w) = (median(&mut unknown), median(&mut wrong));
    let ratio = u.as_secs_f64().max(w.as_secs_f64()) / u.as_secs_f64().min(w.as_secs_f64());
    assert!(ratio < 1.5, "median unknown {u:?} vs wrong password {w:?}");
}
