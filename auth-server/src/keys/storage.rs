//! Where keys are kept: one small trait, implemented by the keys directory
//! ([`super::KeyFiles`]) and by the auth database ([`super::KeyDatabase`]).
//!
//! Every write is conditional, so replicas that change keys at the same moment cannot
//! both succeed: a new key is added only if no other key was added since the caller
//! listed the store, and a change to a key applies only if the key is still in the state
//! the change expects. The loser gets [`WriteError::Conflict`], lists again and decides
//! afresh (usually: nothing left to do).

use chrono::{DateTime, Utc};

use super::{KeyMeta, PrivateKey};

/// The keys of a store, oldest first, and the store's version: how many keys it has
/// ever been given, the precondition of the next insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// Every key's metadata, oldest first.
    pub keys: Vec<KeyMeta>,
    /// Changes whenever a key is added.
    pub version: u64,
}

/// A change to one stored key, applied only while its precondition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Schedules a next key to start signing at `at`; only if nothing scheduled it yet.
    Schedule {
        /// The new `active_from`.
        at: DateTime<Utc>,
    },
    /// Makes a next key sign from `at`, scheduled or not; only while it has not started.
    PromoteNow {
        /// The new `active_from`.
        at: DateTime<Utc>,
    },
    /// Revokes the key; only once.
    Revoke {
        /// The `revoked_at`.
        at: DateTime<Utc>,
    },
}

impl Change {
    /// The key after the change, or `None` when its precondition does not hold. The
    /// database encodes the same preconditions in its `UPDATE … WHERE`.
    pub fn apply(&self, meta: &KeyMeta) -> Option<KeyMeta> {
        let usable = meta.revoked_at.is_none() && meta.retired_at.is_none();
        let mut changed = meta.clone();
        match *self {
            Self::Schedule { at } if usable && meta.active_from.is_none() => {
                changed.active_from = Some(at);
            }
            Self::PromoteNow { at } if usable && meta.active_from.is_none_or(|a| a > at) => {
                changed.active_from = Some(at);
            }
            Self::Revoke { at } if meta.revoked_at.is_none() => changed.revoked_at = Some(at),
            _ => return None,
        }
        Some(changed)
    }
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another process changed the keys first; list again and decide afresh.
    #[error(
        "another process changed the signing keys at the same time \
         (`auth-server keys list` shows the result)"
    )]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A place that keeps signing keys. Listing never changes anything; every write is
/// conditional (see the module documentation).
#[async_trait::async_trait]
pub trait KeyStorage: std::fmt::Debug + Send + Sync {
    /// Every key's metadata. An unreadable entry is an error, never skipped: deciding on
    /// a partial view could, say, generate a "first" key next to an unreadable one.
    async fn list(&self) -> anyhow::Result<KeySet>;

    /// The private key of `kid`.
    async fn load(&self, kid: &str) -> anyhow::Result<PrivateKey>;

    /// Adds a key, if the store is still at `version`.
    async fn insert(
        &self,
        version: u64,
        meta: &KeyMeta,
        key: &PrivateKey,
    ) -> Result<(), WriteError>;

    /// Changes the key `kid`, if the change's precondition still holds.
    async fn update(&self, kid: &str, change: Change) -> Result<(), WriteError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(t, 0).unwrap()
    }

    fn next() -> KeyMeta {
        KeyMeta {
            kid: "k".into(),
            created_at: at(0),
            active_from: None,
            retired_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_key_is_scheduled_once() {
        let scheduled = Change::Schedule { at: at(10) }.apply(&next()).unwrap();
        assert_eq!(scheduled.active_from, Some(at(10)));
        assert!(Change::Schedule { at: at(5) }.apply(&scheduled).is_none());
    }

    #[test]
    fn promotion_now_moves_a_schedule_earlier_but_never_later() {
        let scheduled = Change::Schedule { at: at(10) }.apply(&next()).unwrap();
        let promoted = Change::PromoteNow { at: at(3) }.apply(&scheduled).unwrap();
        assert_eq!(promoted.active_from, Some(at(3)));
        assert!(Change::PromoteNow { at: at(4) }.apply(&promoted).is_none());
    }

    #[test]
    fn a_revoked_key_is_neither_revoked_again_nor_promoted() {
        let revoked = Change::Revoke { at: at(1) }.apply(&next()).unwrap();
        assert!(Change::Revoke { at: at(2) }.apply(&revoked).is_none());
        assert!(Change::PromoteNow { at: at(2) }.apply(&revoked).is_none());
        assert!(Change::Schedule { at: at(2) }.apply(&revoked).is_none());
    }
}
