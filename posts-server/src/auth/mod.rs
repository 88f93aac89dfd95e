//! Access-token authentication: the cached key set, offline verification, and the bearer
//! extractor that turns both into RFC 6750 answers.

pub mod bearer;
pub mod jwks;
pub mod jwks_cache;
pub mod verify;

pub use bearer::{BearerError, Caller, ReadPosts, RequiredScope, WritePosts};
pub use jwks::JwksError;
pub use jwks_cache::{JwksCache, KeyLookup};
pub use verify::{Claims, Rejection, TokenVerifier, VerifyError};
