//! sea-orm entities of the auth database.

pub mod clients;
pub mod users;
