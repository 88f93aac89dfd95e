//! Access-token authentication: the glue between jwt-verifier (key set cache, offline
//! verification, RFC 6750 challenges) and this API's poem-openapi security scheme and
//! problem+json bodies.

pub mod bearer;

pub use bearer::{BearerProblem, Caller, ReadPosts, RequiredScope, WritePosts};
