//! Black-box tests: each starts the real application on port 0 with a fresh database and a
//! test key set served over HTTP (or from a file), then talks to it like a client would.

mod bad_input;
mod cli;
mod concurrency;
mod crash_safety;
mod health;
mod helpers;
mod jwks_cache;
mod outage;
mod pagination;
mod posts;
mod request_ids;
mod security;
mod token_rejections;
