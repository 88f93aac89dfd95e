//! The hook through which a service counts what the verifier does, with whatever metrics
//! library it already uses.
//!
//! The crate itself records nothing: forcing prometheus-client (or any other) on every user
//! would pin their metrics stack to ours. Gauges need no hook: [`JwksCache::age`] and
//! [`JwksCache::key_count`] can be read when metrics are scraped.
//!
//! [`JwksCache::age`]: crate::JwksCache::age
//! [`JwksCache::key_count`]: crate::JwksCache::key_count

use std::fmt;

use crate::{JwksError, Rejection, ScopeSet};

/// Receives an event for every key set fetch and every refused token.
///
/// Every method has an empty default, so an implementation names only what it counts, and
/// new events can be added without breaking it. Methods are called on the request path:
/// keep them cheap (increment a counter) and never block.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use jwt_verifier::{Observer, Rejection};
///
/// #[derive(Default)]
/// struct Counts {
///     rejected: AtomicU64,
/// }
///
/// impl Observer for Counts {
///     fn token_rejected(&self, rejection: &Rejection) {
///         // A real service would count by `rejection.label()`.
///         self.rejected.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let counts = Counts::default();
/// counts.token_rejected(&Rejection::Expired);
/// assert_eq!(counts.rejected.load(Ordering::Relaxed), 1);
/// ```
pub trait Observer: Send + Sync + 'static {
    /// A fetch (or file read) of the key set ended: `Ok` with the number of usable keys it
    /// installed, or why it failed (the previous set, if any, stays in use).
    fn key_set_fetched(&self, trigger: FetchTrigger, outcome: Result<usize, &JwksError>) {
        let _ = (trigger, outcome);
    }

    /// A token was refused. Called once per refused token, including tokens refused before
    /// verification proper (an unusable `Authorization` header).
    fn token_rejected(&self, rejection: &Rejection) {
        let _ = rejection;
    }

    /// A valid token lacked scopes: those `required`, of which `granted` holds not all.
    fn insufficient_scope(&self, required: &ScopeSet, granted: &ScopeSet) {
        let _ = (required, granted);
    }
}

/// Observes nothing: the default.
impl Observer for () {}

/// What made the cache fetch the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchTrigger {
    /// An explicit [`JwksCache::load`](crate::JwksCache::load), typically before serving.
    Startup,
    /// The background refresher: the first fetch, `max-age` running out, or a retry.
    Background,
    /// A token named a kid the set does not hold.
    UnknownKid,
}

impl FetchTrigger {
    /// A stable short label for metrics and logs: `startup`, `background`, `unknown_kid`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Background => "background",
            Self::UnknownKid => "unknown_kid",
        }
    }
}

impl fmt::Display for FetchTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
