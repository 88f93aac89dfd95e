//! posts-server: a posts API that verifies every RS256 access token offline against the
//! auth server's published key set (RFC 9068, RFC 6750).
//!
//! The binary in `main.rs` only parses settings and hands off; everything else lives here so
//! that the tests, the CLI and the server share one code path.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod docs;
pub mod domain;
pub mod entities;
pub mod error;
pub mod inserts;
pub mod limits;
pub mod metrics;
pub mod page_reads;
pub mod posts;
pub mod request_log;
pub mod startup;
pub mod state;
pub mod telemetry;
