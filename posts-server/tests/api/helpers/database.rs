//! One database per test: SQLite by default, PostgreSQL with `TEST_POSTGRES_URL`.

use sea_orm::{ConnectionTrait, Database};

/// A database for one test: a SQLite file in the test's temporary directory, or, when
/// `TEST_POSTGRES_URL` is set, a fresh PostgreSQL database dropped when the test ends.
pub struct TestDatabase {
    /// The URL the app connects to.
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh, empty database for one test.
    pub async fn create(dir: &std::path::Path) -> Self {
        let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
            return Self {
                url: format!("sqlite://{}?mode=rwc", dir.join("posts.db").display()),
                postgres: None,
            };
        };
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("posts_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(format!("{server}/postgres"))
            .await
            .expect("connect to TEST_POSTGRES_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Self {
            url: format!("{server}/{name}"),
            postgres: Some((server, name)),
        }
    }
}

impl TestDatabase {
    /// A database the test manages itself (a private cluster's): nothing is dropped.
    pub fn at(url: String) -> Self {
        Self {
            url,
            postgres: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on async work; a thread
        // with its own runtime can. FORCE ends the app's pooled connections.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping the test database");
            runtime.block_on(async move {
                let admin = Database::connect(format!("{server}/postgres")).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}
