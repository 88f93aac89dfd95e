#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! - [`JwksCache`]: the key set, from a URL or a local file, kept fresh in the background.
//! - [`TokenVerifier`]: RFC 9068 checks of one token against the cache.
//! - [`BearerAuth`]: RFC 6750, from an `Authorization` header to [`Claims`] or a
//!   [`BearerError`] that knows its status and challenge.
//! - [`Observer`]: the hook for metrics.
//! - `poem` (feature `poem`): the same as poem errors, a middleware and an extractor.
//! - `testing` (feature `testing`): [`testing::TestIssuer`] mints tokens for tests.

#![warn(missing_docs)]

mod bearer;
mod claims;
mod jwks;
mod jwks_cache;
mod observer;
mod rejection;
mod scope;
mod verified;
mod verifier;

#[cfg(feature = "poem")]
pub mod poem;
#[cfg(feature = "testing")]
pub mod testing;

pub use bearer::{BearerAuth, BearerError, bearer_token};
pub use claims::{Claims, MAX_SUBJECT_CHARS};
pub use jwks::{BoxError, JwksError, MAX_JWKS_BYTES};
pub use jwks_cache::{JwksCache, JwksCacheBuilder, KeySource};
pub use observer::{FetchTrigger, Observer};
pub use rejection::{MAX_TOKEN_BYTES, Rejection};
pub use scope::{ScopeSet, ScopeSetError};
pub use verifier::{
    DEFAULT_CACHED_TOKENS, MAX_LEEWAY, TokenVerifier, TokenVerifierBuilder, VerifyError,
};
