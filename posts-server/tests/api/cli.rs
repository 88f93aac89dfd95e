//! The binary itself: `posts-server migrate`.

use std::process::Command;

#[test]
fn migrate_applies_the_migrations_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("nested").join("posts.db");

    let output = Command::new(env!("CARGO_BIN_EXE_posts-server"))
        .arg("migrate")
        .current_dir(dir.path())
        .env(
            "POSTS_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", database.display()),
        )
        .env("POSTS_LOG", "warn")
        .output()
        .expect("run posts-server");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(printed["migrated"], true);
    assert!(
        database.exists(),
        "the database file and its directory were created"
    );
}

#[test]
fn a_bad_setting_fails_before_starting() {
    let output = Command::new(env!("CARGO_BIN_EXE_posts-server"))
        .env("POSTS_LEEWAY", "soon")
        .output()
        .expect("run posts-server");

    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("POSTS_LEEWAY")
            || String::from_utf8_lossy(&output.stderr).contains("leeway")
    );
}
