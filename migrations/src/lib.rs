//! Database migrations, one migrator per database.
//!
//! The auth and posts databases are separate (the servers share only the public key set),
//! so each has its own migrator and its own `seaql_migrations` table. Never edit a migration
//! that has been released; add a new one.

pub mod auth;
pub mod posts;

pub use sea_orm_migration;
