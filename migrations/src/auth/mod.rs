//! Migrations of the auth-server database.

use sea_orm_migration::prelude::*;

mod m20261128_000001_create_users;
mod m20261128_000002_create_clients;
mod m20261128_000003_create_token_state;
mod m20261128_000004_create_login_throttle;
mod m20261201_000005_browser_sign_in;
mod m20261201_000006_create_signing_keys;
mod m20261206_000007_client_changes;

/// Applies every migration of the auth database, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_users::Migration),
            Box::new(m20261128_000002_create_clients::Migration),
            Box::new(m20261128_000003_create_token_state::Migration),
            Box::new(m20261128_000004_create_login_throttle::Migration),
            Box::new(m20261201_000005_browser_sign_in::Migration),
            Box::new(m20261201_000006_create_signing_keys::Migration),
            Box::new(m20261206_000007_client_changes::Migration),
        ]
    }
}
