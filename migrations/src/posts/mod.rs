//! Migrations of the posts-server database.

use sea_orm_migration::prelude::*;

mod m20261128_000001_create_posts;

/// Applies every migration of the posts database, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261128_000001_create_posts::Migration)]
    }
}
