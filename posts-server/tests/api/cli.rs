//! The binary itself: `posts-server migrate`, `--help`, and exit codes (0 ok, 1 failure,
//! 2 usage).

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

    assert_eq!(
        output.status.code(),
        Some(2),
        "a bad setting is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("POSTS_LEEWAY")
            || String::from_utf8_lossy(&output.stderr).contains("leeway")
    );
}

fn posts_server(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_posts-server"))
        .args(args)
        .current_dir(dir.path())
        .env("POSTS_LOG", "warn")
        .output()
        .expect("run posts-server")
}

#[test]
fn help_says_what_the_server_and_each_command_do() {
    let top = posts_server(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("Posts API"), "{top}");
    assert!(top.contains("migrate"), "{top}");
    assert!(
        top.contains("Apply the pending database migrations"),
        "{top}"
    );
    assert!(top.contains("POSTS_REQUEST_TIMEOUT"), "{top}");
    assert!(top.contains("Exit status"), "{top}");

    let migrate = posts_server(&["migrate", "--help"]);
    assert_eq!(migrate.status.code(), Some(0));
    let migrate = String::from_utf8_lossy(&migrate.stdout);
    assert!(
        migrate.contains("Apply the pending database migrations and exit"),
        "{migrate}"
    );
    assert!(migrate.contains("POSTS_DATABASE_URL"), "{migrate}");

    let serve = posts_server(&["serve", "--help"]);
    assert_eq!(serve.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&serve.stdout).contains("Serve the API"));
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["--no-such-flag"][..],
        &["no-such-command"],
        &["migrate", "extra"],
    ] {
        let output = posts_server(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
}

#[test]
fn a_failed_migration_prints_a_json_error_and_exits_with_1() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the database's directory should be: SQLite cannot create it.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let url = format!("sqlite://{}?mode=rwc", blocker.join("posts.db").display());

    let output = posts_server(&["migrate", "--database-url", &url]);

    assert_eq!(output.status.code(), Some(1));
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert!(printed["error"].is_string(), "{printed}");
}

#[test]
fn migrate_succeeds_with_exit_0_when_nothing_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("posts.db").display()
    );

    for _ in 0..2 {
        let output = posts_server(&["migrate", "--database-url", &url]);
        assert_eq!(output.status.code(), Some(0));
    }
}
