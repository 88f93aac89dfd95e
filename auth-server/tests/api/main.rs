//! Black-box tests: the real server on port 0, talked to over HTTP.

mod cli;
mod client_credentials;
mod discovery;
mod helpers;
mod key_database;
mod key_files;
mod key_revocation;
mod keys;
mod operations;
mod password_grant;
mod refresh_grant;
mod revocation;
mod security;
mod throttling;
mod users;
