//! The state every handler shares, attached to the routes with `.data()`.

use std::sync::Arc;

use jwt_verifier::{BearerAuth, JwksCache};
use sea_orm::DatabaseConnection;

use crate::inserts::Inserter;
use crate::metrics::Metrics;
use crate::page_reads::SqliteReaders;

/// Database, keys and metrics; cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct AppState {
    /// The posts database, for reads.
    pub db: DatabaseConnection,
    /// The page query's synchronous readers on an SQLite file (see
    /// [`crate::page_reads`]).
    pub sync_readers: Option<SqliteReaders>,
    /// The posts database, for writes (see [`crate::db::Databases`]).
    pub writer: DatabaseConnection,
    /// Stores new posts through `writer`, many per commit.
    pub inserter: Inserter,
    /// The cached key set.
    pub keys: JwksCache,
    /// Checks the bearer tokens of requests against `keys`.
    pub bearer: BearerAuth,
    /// Every metric.
    pub metrics: Arc<Metrics>,
}
