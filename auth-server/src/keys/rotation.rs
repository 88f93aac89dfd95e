//! Every change to the key set — the first key, the next key, rotation, revocation,
//! migration — written once for both stores and shared by the CLI and the scheduler.
//!
//! Each step is one conditional write (see [`super::storage`]); the order of the steps
//! keeps every state in between valid, so a crash half-way leaves a key that signs, and
//! the next start or reload adds whatever next key is missing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    KeyMeta, PrivateKey,
    lifecycle::{self, needs_next_key, plan_revocation, plan_rotation},
    storage::{Change, KeyStorage, WriteError},
};

/// What `keys rotate` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotated {
    /// The key that signs from `active_from`.
    pub kid: String,
    /// When it takes over.
    pub active_from: DateTime<Utc>,
    /// The next key, published now, that the following rotation will promote.
    pub next_kid: String,
}

/// What `keys migrate-to-database` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migrated {
    /// Keys copied into the database by this run.
    pub moved: Vec<String>,
    /// Keys a previous run had copied already.
    pub already_in_database: Vec<String>,
}

/// Makes sure the store has a key that signs and a next key. The first key of an empty
/// store signs at once: no verifier can have cached anything yet.
pub async fn ensure_keys(storage: &dyn KeyStorage, bits: usize) -> anyhow::Result<()> {
    add_key(storage, bits, true, |keys| keys.is_empty()).await?;
    ensure_next(storage, bits).await?;
    Ok(())
}

/// The next key that nothing has scheduled yet, made if there is none.
pub async fn ensure_next(storage: &dyn KeyStorage, bits: usize) -> anyhow::Result<String> {
    // Between two looks at the store another process may schedule the next key it saw
    // (a rotation on another replica, or its scheduler), leaving none unscheduled until it
    // makes the following one: then one is missing again, and is made (or seen) here.
    for _ in 0..5 {
        if let Some(kid) = add_key(storage, bits, false, needs_next_key).await? {
            return Ok(kid);
        }
        let set = storage.list().await?;
        if let Some(next) = set.keys.iter().rev().find(|m| lifecycle::is_unscheduled(m)) {
            return Ok(next.kid.clone());
        }
    }
    anyhow::bail!("the key store kept changing while a next key was being made; try again")
}

/// Adds a freshly generated key while `needed` says the store lacks one. Of several
/// processes doing this at once, exactly one succeeds; the others see its key and stop.
async fn add_key(
    storage: &dyn KeyStorage,
    bits: usize,
    signs_at_once: bool,
    needed: impl Fn(&[KeyMeta]) -> bool,
) -> anyhow::Result<Option<String>> {
    if !needed(&storage.list().await?.keys) {
        return Ok(None);
    }
    let key = tokio::task::spawn_blocking(move || PrivateKey::generate(bits)).await??;
    // Another process may have won the race while the primes were being found.
    for _ in 0..5 {
        let set = storage.list().await?;
        if !needed(&set.keys) {
            return Ok(None);
        }
        let now = lifecycle::now();
        let meta = KeyMeta {
            kid: key.kid().to_owned(),
            created_at: now,
            active_from: signs_at_once.then_some(now),
            retired_at: None,
            revoked_at: None,
        };
        match storage.insert(set.version, &meta, &key).await {
            Ok(()) => return Ok(Some(meta.kid)),
            Err(WriteError::Conflict) => continue,
            Err(WriteError::Other(e)) => return Err(e),
        }
    }
    anyhow::bail!("the key store kept changing while a key was being added; try again")
}

/// Rotates: the oldest next key takes over once it has been published for `lead`
/// (`immediate`: at once), and a new next key is made.
#[tracing::instrument(skip_all, fields(immediate))]
pub async fn rotate(
    storage: &dyn KeyStorage,
    bits: usize,
    lead: Duration,
    immediate: bool,
) -> anyhow::Result<Rotated> {
    // A store from before next keys existed has no next key to promote yet, and an empty
    // one (no server started) not even a key that signs.
    ensure_keys(storage, bits).await?;
    let set = storage.list().await?;
    let plan = plan_rotation(&set.keys, lifecycle::now(), lead, immediate)?;
    check_loads(storage, &plan.kid).await?;
    let change = if immediate {
        Change::PromoteNow {
            at: plan.active_from,
        }
    } else {
        Change::Schedule {
            at: plan.active_from,
        }
    };
    storage.update(&plan.kid, change).await?;
    tracing::info!(kid = %plan.kid, active_from = %plan.active_from, "scheduled a signing key");
    let next_kid = ensure_next(storage, bits).await?;
    Ok(Rotated {
        kid: plan.kid,
        active_from: plan.active_from,
        next_kid,
    })
}

/// Revokes `kid`; when it is the active key, the oldest next key signs first.
#[tracing::instrument(skip_all, fields(kid))]
pub async fn revoke(storage: &dyn KeyStorage, bits: usize, kid: &str) -> anyhow::Result<()> {
    let set = storage.list().await?;
    let now = lifecycle::now();
    let plan = plan_revocation(&set.keys, kid, now)?;
    // Promote before revoking: in between, two keys may sign, never none.
    if let Some(promotion) = &plan.promote {
        check_loads(storage, &promotion.kid).await?;
        storage
            .update(
                &promotion.kid,
                Change::PromoteNow {
                    at: promotion.active_from,
                },
            )
            .await?;
    }
    storage.update(kid, Change::Revoke { at: now }).await?;
    tracing::warn!(%kid, "revoked a signing key");
    ensure_next(storage, bits).await?;
    Ok(())
}

/// Copies the keys of `from` (a keys directory) into `to` (the database), metadata and
/// all. Idempotent; refuses to mix with keys that `to` made on its own, which would
/// leave two key sets, each believing it has the active key.
pub async fn migrate(from: &dyn KeyStorage, to: &dyn KeyStorage) -> anyhow::Result<Migrated> {
    let source = from.list().await?;
    let target = to.list().await?;
    let in_target = |kid: &str| target.keys.iter().any(|m| m.kid == kid);
    let (present, missing): (Vec<&KeyMeta>, Vec<&KeyMeta>) =
        source.keys.iter().partition(|m| in_target(&m.kid));
    let already_in_database: Vec<String> = present.iter().map(|m| m.kid.clone()).collect();
    if missing.is_empty() {
        return Ok(Migrated {
            moved: Vec::new(),
            already_in_database,
        });
    }
    let foreign: Vec<&str> = target
        .keys
        .iter()
        .filter(|t| !source.keys.iter().any(|s| s.kid == t.kid))
        .map(|t| t.kid.as_str())
        .collect();
    anyhow::ensure!(
        foreign.is_empty(),
        "the database already holds signing keys that are not in the keys directory ({}); \
         moving the directory's keys now would mix two key sets. Nothing was moved",
        foreign.join(", ")
    );
    // Read every key first: a directory with an unreadable key moves nothing.
    let mut keys = Vec::new();
    for meta in &missing {
        keys.push(from.load(&meta.kid).await?);
    }
    let mut moved = Vec::new();
    for (version, (meta, key)) in (target.version..).zip(missing.into_iter().zip(&keys)) {
        to.insert(version, meta, key).await?;
        moved.push(meta.kid.clone());
    }
    Ok(Migrated {
        moved,
        already_in_database,
    })
}

/// Refuses to promote a key whose private key does not load: it would be published in
/// no JWKS and sign nothing.
async fn check_loads(storage: &dyn KeyStorage, kid: &str) -> anyhow::Result<()> {
    let key = storage.load(kid).await?;
    tokio::task::spawn_blocking(move || key.signing_key())
        .await?
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("key {kid} cannot be used: {e} (revoke it)"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::keys::{KeyFiles, KeySet};

    /// Files on which another process schedules the next key right after the `nth` look.
    #[derive(Debug)]
    struct RotatedMeanwhile {
        files: KeyFiles,
        looks: AtomicUsize,
        nth: usize,
    }

    #[async_trait::async_trait]
    impl KeyStorage for RotatedMeanwhile {
        async fn list(&self) -> anyhow::Result<KeySet> {
            let set = self.files.list().await?;
            if self.looks.fetch_add(1, Ordering::SeqCst) + 1 == self.nth
                && let Some(next) = set.keys.iter().find(|m| lifecycle::is_unscheduled(m))
            {
                let at = lifecycle::now();
                self.files
                    .update(&next.kid, Change::Schedule { at })
                    .await
                    .unwrap();
            }
            Ok(set)
        }

        async fn load(&self, kid: &str) -> anyhow::Result<PrivateKey> {
            self.files.load(kid).await
        }

        async fn insert(
            &self,
            version: u64,
            meta: &KeyMeta,
            key: &PrivateKey,
        ) -> Result<(), WriteError> {
            self.files.insert(version, meta, key).await
        }

        async fn update(&self, kid: &str, change: Change) -> Result<(), WriteError> {
            self.files.update(kid, change).await
        }
    }

    #[tokio::test]
    async fn a_next_key_scheduled_by_another_process_between_two_looks_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path());
        ensure_keys(&files, 2048).await.unwrap();
        // The first look sees the next key; before the second, it is scheduled elsewhere.
        let storage = RotatedMeanwhile {
            files,
            looks: AtomicUsize::new(0),
            nth: 1,
        };

        let kid = ensure_next(&storage, 2048).await.unwrap();

        let keys = storage.files.list().await.unwrap().keys;
        let unscheduled: Vec<&str> = keys
            .iter()
            .filter(|m| lifecycle::is_unscheduled(m))
            .map(|m| m.kid.as_str())
            .collect();
        assert_eq!(unscheduled, [kid.as_str()]);
        assert_eq!(
            keys.len(),
            3,
            "the signing key, the scheduled one, a new next key"
        );
    }
}
