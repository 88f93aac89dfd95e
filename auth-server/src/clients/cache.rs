//! Client rows cached in the process, invalidated through the database.
//!
//! Every token, revocation and introspection request authenticates its client, and
//! reading its row was a fifth of a client-credentials token's CPU outside the signature
//! (on PostgreSQL, a round trip per request; BENCHMARKS.md, issue 14, fourteenth round).
//! Rows are kept here instead. Triggers on `clients` bump `client_changes.version` at every
//! insert, update and delete, whichever process makes it (the CLI, another replica, an
//! operator's SQL). A cached row is used only while the version was read less than
//! [`BOUND`] ago; the first lookup after that reads it again and, if it moved, empties the
//! cache. So a change committed at time t holds for every lookup that starts after
//! t + [`BOUND`], on every replica, and the CLI's `clients delete` waits that long before
//! it answers: when it says a client is deleted, no replica accepts it any more.
//!
//! Only rows that exist are kept (unknown client ids are read every time, so they cannot
//! fill the memory), at most [`MAX_ROWS`] of them.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::entities::clients;

/// How long a change of `clients` may go unseen by a replica.
pub const BOUND: Duration = Duration::from_millis(250);

/// Rows kept at most; past that, lookups of other clients read the database.
const MAX_ROWS: usize = 4096;

/// See the module documentation; one per server, shared by its request threads.
#[derive(Debug, Default)]
pub struct ClientCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The version the rows were read under, and when it was last read.
    version: Option<(i64, Instant)>,
    rows: HashMap<String, clients::Model>,
}

/// What [`ClientCache::lookup`] found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// The row, cached under a version read less than [`BOUND`] ago.
    Hit(clients::Model),
    /// Not cached, and the version is fresh: read the row, then [`ClientCache::keep`] it
    /// under this version.
    Miss(i64),
    /// The version is older than [`BOUND`] (or was never read): read it and
    /// [`ClientCache::observe`] it first.
    Stale,
}

impl ClientCache {
    /// The cached row of `client_id`, if the version is fresh.
    pub fn lookup(&self, client_id: &str, now: Instant) -> Lookup {
        let inner = self.lock();
        match inner.version {
            Some((version, read_at)) if now.saturating_duration_since(read_at) < BOUND => {
                match inner.rows.get(client_id) {
                    Some(row) => Lookup::Hit(row.clone()),
                    None => Lookup::Miss(version),
                }
            }
            _ => Lookup::Stale,
        }
    }

    /// Records `version`, read from the database by a read that started at `read_at`; the
    /// rows of an older version are dropped. Returns the version to keep rows under.
    pub fn observe(&self, version: i64, read_at: Instant) -> i64 {
        let mut inner = self.lock();
        match inner.version {
            // A read that started earlier and ended later does not move the time back.
            Some((current, at)) if current == version => {
                inner.version = Some((version, at.max(read_at)));
            }
            // Versions only grow: this read was overtaken by one that saw a change. Its
            // caller's row is not kept (`keep` asks for the current version).
            Some((current, _)) if current > version => {}
            _ => {
                inner.rows.clear();
                inner.version = Some((version, read_at));
            }
        }
        version
    }

    /// Keeps `row`, read after `version` was: unless the version moved meanwhile (then the
    /// row may predate the change, and is not kept).
    pub fn keep(&self, version: i64, row: &clients::Model) {
        let mut inner = self.lock();
        if inner.version.map(|(v, _)| v) == Some(version) && inner.rows.len() < MAX_ROWS {
            inner.rows.insert(row.client_id.clone(), row.clone());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections only move values: a panic cannot leave them half done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, scopes: &str) -> clients::Model {
        clients::Model {
            client_id: id.to_owned(),
            secret_hash: None,
            grant_types: "password".to_owned(),
            scopes: scopes.to_owned(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            trusted: false,
            name: None,
        }
    }

    #[test]
    fn a_row_is_served_only_while_the_version_is_fresh() {
        let cache = ClientCache::default();
        let t0 = Instant::now();
        assert_eq!(cache.lookup("c", t0), Lookup::Stale, "never read");
        let version = cache.observe(7, t0);
        assert_eq!(cache.lookup("c", t0), Lookup::Miss(7));
        cache.keep(version, &row("c", "a"));
        assert_eq!(
            cache.lookup("c", t0 + BOUND / 2),
            Lookup::Hit(row("c", "a"))
        );
        assert_eq!(cache.lookup("c", t0 + BOUND), Lookup::Stale);
        // Unchanged: the row stays, fresh again.
        cache.observe(7, t0 + BOUND);
        assert_eq!(cache.lookup("c", t0 + BOUND), Lookup::Hit(row("c", "a")));
    }

    #[test]
    fn a_new_version_drops_every_row() {
        let cache = ClientCache::default();
        let t0 = Instant::now();
        cache.observe(1, t0);
        cache.keep(1, &row("c", "a"));
        cache.keep(1, &row("d", "a"));
        cache.observe(2, t0 + BOUND);
        assert_eq!(cache.lookup("c", t0 + BOUND), Lookup::Miss(2));
        assert_eq!(cache.lookup("d", t0 + BOUND), Lookup::Miss(2));
    }

    #[test]
    fn a_row_read_before_a_change_was_seen_is_not_kept() {
        let cache = ClientCache::default();
        let t0 = Instant::now();
        let version = cache.observe(1, t0);
        // Another request sees the change while this one reads the old row.
        cache.observe(2, t0);
        cache.keep(version, &row("c", "old"));
        assert_eq!(cache.lookup("c", t0), Lookup::Miss(2));
    }

    #[test]
    fn an_overtaken_read_of_an_older_version_changes_nothing() {
        let cache = ClientCache::default();
        let t0 = Instant::now();
        cache.observe(2, t0);
        cache.keep(2, &row("c", "new"));
        let version = cache.observe(1, t0);
        cache.keep(version, &row("c", "old"));
        assert_eq!(cache.lookup("c", t0), Lookup::Hit(row("c", "new")));
    }

    #[test]
    fn an_earlier_read_of_the_same_version_does_not_age_it() {
        let cache = ClientCache::default();
        let t0 = Instant::now();
        cache.observe(1, t0 + BOUND);
        cache.keep(1, &row("c", "a"));
        cache.observe(1, t0);
        assert_eq!(
            cache.lookup("c", t0 + BOUND + BOUND / 2),
            Lookup::Hit(row("c", "a"))
        );
    }
}
