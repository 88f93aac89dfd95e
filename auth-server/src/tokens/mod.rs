//! Tokens: what an access token says, how it is signed and checked, the refresh-token
//! lifecycle, and the grants that issue them.

pub mod access;
pub mod claims;
pub mod codes;
pub mod grants;
pub mod id_token;
pub mod introspection;
pub mod refresh;
pub mod rotation;

pub use access::{AccessTokenIssuer, IssuedAccessToken, VerifyError};
pub use claims::AccessClaims;
