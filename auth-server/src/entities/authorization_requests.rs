//! An authorization request waiting for the user (sign-in, sign-up or consent).

use sea_orm::entity::prelude::*;

/// A row of `authorization_requests`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_requests")]
pub struct Model {
    /// Random id, carried by the pages' URLs and forms.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Hex SHA-256 of the cookie of the browser that sent the request.
    pub browser_hash: String,
    /// The client.
    pub client_id: String,
    /// The validated request, as JSON.
    pub parameters: String,
    /// Arrival time.
    pub created_at: DateTimeUtc,
    /// After this the user must start again.
    pub expires_at: DateTimeUtc,
    /// Set by the one step that answered the client.
    pub completed_at: Option<DateTimeUtc>,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
