//! A failed-login counter for one account or one client address.

use sea_orm::entity::prelude::*;

/// A row of `login_throttle`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_throttle")]
pub struct Model {
    /// `account:<email>` or `ip:<address>:<window>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Consecutive failures (account) or failures in the window (address).
    pub failures: i32,
    /// The latest failure.
    pub last_failure_at: DateTimeUtc,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
