//! The auth server as a library: `main.rs`, the admin CLI and the tests share one path.

pub mod api;
pub mod authorization;
pub mod cli;
pub mod clients;
pub mod config;
pub mod db;
pub mod digest;
pub mod domain;
pub mod entities;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod web;
