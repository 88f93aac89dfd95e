//! sea-orm entities of the auth database.

pub mod authorization_codes;
pub mod authorization_requests;
pub mod browser_sessions;
pub mod clients;
pub mod consents;
pub mod family_access_tokens;
pub mod login_throttle;
pub mod refresh_families;
pub mod refresh_tokens;
pub mod revoked_access_tokens;
pub mod signing_keys;
pub mod users;
