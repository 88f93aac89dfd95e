//! Tokens: what an access token says, how it is signed and checked, and the grants that
//! issue them.

pub mod access;
pub mod claims;
pub mod grants;

pub use access::{AccessTokenIssuer, IssuedAccessToken, VerifyError};
pub use claims::AccessClaims;
