//! The query planner stability guarantee on sqlx's SQLite connections, as on the readers.
//!
//! sea-orm's `.one()` ends its query with `LIMIT ?`. SQLite may plan a `LIMIT` by its
//! bound value, so it marks such a statement to be compiled again whenever that parameter
//! is bound; sqlx keeps its statements prepared and binds them anew at each use, so every
//! such query was parsed and planned again, every time (seen with a breakpoint on
//! `sqlite3Reprepare` during a browser sign-in: the pending request, the user and the code
//! lookups, four times per sign-in). With `SQLITE_DBCONFIG_ENABLE_QPSG` a plan never
//! depends on a bound value, and a prepared statement stays prepared. The plans themselves
//! do not change here: no database of the servers has `sqlite_stat4` statistics, the other
//! thing that lets a bound value pick a plan.

use std::{future::Future, pin::Pin};

use sea_orm::{
    ConnectOptions,
    sqlx::{self, pool::PoolConnectionMetadata, sqlite::SqliteConnection},
};

/// Turns the guarantee on for every SQLite connection of the pool `options` will open.
/// Connecting fails if it cannot be turned on. PostgreSQL pools are left alone. It takes
/// sea-orm's one SQLite pool-options hook (`map_sqlx_sqlite_pool_opts`), replacing any
/// function set there before; neither server sets another.
pub fn stable_plans(options: &mut ConnectOptions) {
    options.map_sqlx_sqlite_pool_opts(|pool| pool.after_connect(enable_qpsg));
}

type Done<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

fn enable_qpsg(conn: &mut SqliteConnection, _: PoolConnectionMetadata) -> Done<'_> {
    Box::pin(async move {
        let mut handle = conn.lock_handle().await?;
        // SAFETY: while `handle` lives sqlx makes no call on this connection; a rusqlite
        // `Connection` made from a handle does not close it, and is dropped first.
        let enabled = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }
            .and_then(|connection| {
                connection.set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                    true,
                )
            });
        drop(handle);
        match enabled {
            Ok(true) => Ok(()),
            Ok(false) => Err(sqlx::Error::Configuration(
                "SQLite did not enable the query planner stability guarantee".into(),
            )),
            Err(e) => Err(sqlx::Error::Configuration(e.into())),
        }
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::config::DbConfig;
    use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};

    use super::stable_plans;

    /// Whether each of `connections` connections of a pool built from `options` has the
    /// guarantee on, read back from SQLite.
    async fn guarantee_of(mut options: ConnectOptions, connections: u32) -> Vec<bool> {
        options
            .max_connections(connections)
            .min_connections(connections);
        let db = Database::connect(options).await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        let mut held = Vec::new();
        let mut enabled = Vec::new();
        for _ in 0..connections {
            let mut connection = pool.acquire().await.unwrap();
            let mut handle = connection.lock_handle().await.unwrap();
            // SAFETY: as in `enable_qpsg`.
            let c = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }
                .unwrap();
            enabled.push(c.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
            drop(c);
            drop(handle);
            held.push(connection); // so that the next acquire opens another one
        }
        enabled
    }

    fn options(dir: &tempfile::TempDir) -> ConnectOptions {
        let path = dir.path().join("t.db");
        ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()))
    }

    #[tokio::test]
    async fn every_connection_of_the_pool_plans_without_bound_values() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(guarantee_of(options(&dir), 2).await, [false, false]);
        let mut stable = options(&dir);
        stable_plans(&mut stable);
        assert_eq!(guarantee_of(stable, 2).await, [true, true]);
    }

    #[tokio::test]
    async fn a_bound_limit_still_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = options(&dir);
        options.max_connections(1);
        stable_plans(&mut options);
        let db = Database::connect(options).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)",
        )
        .await
        .unwrap();
        // One prepared statement, bound with another limit each time, as sqlx reuses it.
        for limit in [1, 3, 2, 0] {
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "SELECT id FROM t ORDER BY id LIMIT ?",
                    [limit.into()],
                ))
                .await
                .unwrap();
            assert_eq!(rows.len(), limit as usize);
        }
    }
}
