//! Black-box tests: the real server on port 0, talked to over HTTP.

mod authorization_code;
mod authorize_errors;
mod browser;
mod cli;
mod client_credentials;
mod discovery;
mod helpers;
mod key_database;
mod key_files;
mod key_revocation;
mod keys;
mod openid_connect;
mod operations;
mod outage;
mod password_grant;
mod refresh_grant;
mod revocation;
mod security;
mod sign_in_pages;
mod throttling;
mod users;
