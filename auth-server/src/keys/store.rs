//! The keys of a running server: loaded from the store, re-read every few seconds, and
//! asked at every signature which key signs *now*, so that every replica switches at a
//! scheduled `active_from` without a restart and without talking to the others.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};

use super::{
    JwkSet, KeyMeta, KeyStorage, SigningKey,
    lifecycle::{self, RotationError, is_next, pick_active, rotation_due, signing_candidates},
    rotation,
    storage::WriteError,
};

/// Resource servers accept tokens this much past `exp` (posts-server defaults to 30 s);
/// a retired key stays published at least this long after its last token expires.
const PUBLICATION_MARGIN: Duration = Duration::from_secs(60);

/// How keys are made and retired, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// Size of generated RSA keys.
    pub bits: usize,
    /// How long a key is published before it may sign.
    pub publish_lead: Duration,
    /// The longest lifetime of a token signed by these keys.
    pub max_token_lifetime: Duration,
    /// Automatic rotation, when set.
    pub rotate_every: Option<Duration>,
}

/// One reading of the store.
struct Loaded {
    metas: Vec<KeyMeta>,
    /// The keys that are not revoked and still published (or will be), parsed.
    keys: HashMap<String, Arc<SigningKey>>,
    /// Until when each loaded key is published; `None`: as long as nothing replaces it.
    published_until: HashMap<String, Option<DateTime<Utc>>>,
    /// The key that signed when this was read, should no candidate be loadable later.
    fallback: Arc<SigningKey>,
    /// Keys that failed to load, so that each is warned about once, not every reload.
    broken: HashSet<String>,
}

impl Loaded {
    fn active(&self, now: DateTime<Utc>) -> Arc<SigningKey> {
        signing_candidates(&self.metas, now)
            .into_iter()
            .find_map(|m| self.keys.get(&m.kid))
            .unwrap_or(&self.fallback)
            .clone()
    }

    fn is_published(&self, kid: &str, now: DateTime<Utc>) -> bool {
        self.published_until
            .get(kid)
            .is_some_and(|until| until.is_none_or(|u| now < u))
            // Only a hand-edited store gets here: its signing key is always published.
            || self.active(now).kid == kid
    }
}

/// The keys in memory, re-read from the store by [`KeyStore::reload`].
pub struct KeyStore {
    storage: Arc<dyn KeyStorage>,
    policy: KeyPolicy,
    loaded: RwLock<Arc<Loaded>>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("storage", &self.storage)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads the keys, making the first key of an empty store and a next key if none.
    ///
    /// When the store has keys, the one that signs must load before anything is
    /// written: a broken store is reported, not papered over with a fresh key.
    pub async fn open(storage: Arc<dyn KeyStorage>, policy: KeyPolicy) -> anyhow::Result<Self> {
        let set = storage.list().await?;
        let checked = match set.keys.is_empty() {
            true => None,
            false => Some(load(&*storage, &policy, set.keys, None).await?),
        };
        rotation::ensure_keys(&*storage, policy.bits).await?;
        let set = storage.list().await?;
        let loaded = load(&*storage, &policy, set.keys, checked.as_ref()).await?;
        Ok(Self {
            storage,
            policy,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Re-reads the store: picks up keys added, scheduled or revoked by the CLI or
    /// another replica, and drops keys whose tokens have all expired. Keeps the current
    /// keys on error, so a broken store never empties the JWKS.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let previous = self.snapshot();
        let set = self.storage.list().await?;
        let loaded = load(&*self.storage, &self.policy, set.keys, Some(&previous)).await?;
        let now = lifecycle::now();
        let (before, after) = (previous.active(now), loaded.active(now));
        if before.kid != after.kid {
            tracing::info!(kid = %after.kid, "now signing with a new key");
        }
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    /// The periodic chores of every replica, coordinated through the store so that one
    /// change happens however many replicas run: make a missing next key, and rotate
    /// when automatic rotation is due. Reloads after a change.
    pub async fn maintain(&self) -> anyhow::Result<()> {
        let metas = self.snapshot().metas.clone();
        let mut changed = false;
        if lifecycle::needs_next_key(&metas) {
            let kid = rotation::ensure_next(&*self.storage, self.policy.bits).await?;
            tracing::info!(%kid, "made a next key");
            changed = true;
        }
        if rotation_due(&metas, lifecycle::now(), self.policy.rotate_every) {
            match rotation::rotate(
                &*self.storage,
                self.policy.bits,
                self.policy.publish_lead,
                false,
            )
            .await
            {
                Ok(r) => {
                    tracing::info!(kid = %r.kid, active_from = %r.active_from, "rotation scheduled (automatic)");
                    changed = true;
                }
                // Another replica rotated first.
                Err(e) if is_lost_race(&e) => changed = true,
                Err(e) => return Err(e),
            }
        }
        if changed {
            self.reload().await?;
        }
        Ok(())
    }

    /// The key that signs new tokens now.
    pub fn active(&self) -> Arc<SigningKey> {
        self.snapshot().active(lifecycle::now())
    }

    /// A published key by kid, for verifying tokens this server issued. Revoked keys and
    /// keys whose tokens have all expired are not found.
    pub fn published(&self, kid: &str) -> Option<Arc<SigningKey>> {
        let loaded = self.snapshot();
        let now = lifecycle::now();
        let key = loaded.keys.get(kid)?;
        loaded.is_published(kid, now).then(|| key.clone())
    }

    /// The RFC 7517 key set: the active key first, then the next keys (the one that
    /// takes over first leading), then retired keys whose tokens may still be alive.
    pub fn jwks(&self) -> JwkSet {
        let loaded = self.snapshot();
        let now = lifecycle::now();
        let active = loaded.active(now);
        let mut keys: Vec<(u8, &KeyMeta)> = loaded
            .metas
            .iter()
            .filter(|m| loaded.keys.contains_key(&m.kid))
            .filter(|m| loaded.is_published(&m.kid, now))
            .map(|m| {
                let rank = match () {
                    () if m.kid == active.kid => 0,
                    () if is_next(m, now) => 1,
                    () => 2,
                };
                (rank, m)
            })
            .collect();
        keys.sort_by(|(ra, a), (rb, b)| {
            ra.cmp(rb).then_with(|| match ra {
                // Scheduled before unscheduled, the earliest first.
                1 => (a.active_from.is_none(), a.active_from, a.created_at).cmp(&(
                    b.active_from.is_none(),
                    b.active_from,
                    b.created_at,
                )),
                _ => b.active_from.cmp(&a.active_from),
            })
        });
        JwkSet {
            keys: keys
                .iter()
                .filter_map(|(_, m)| loaded.keys.get(&m.kid))
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// Where the keys are kept.
    pub fn storage(&self) -> &Arc<dyn KeyStorage> {
        &self.storage
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Whether a rotation failed only because another process rotated at the same moment.
fn is_lost_race(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<RotationError>(),
        Some(RotationError::AlreadyScheduled { .. })
    ) || matches!(e.downcast_ref::<WriteError>(), Some(WriteError::Conflict))
}

/// Parses the keys that matter now (not revoked, still published or yet to sign),
/// reusing those `previous` had. The key that signs now must load; any other that does
/// not is left out of the JWKS with a warning.
async fn load(
    storage: &dyn KeyStorage,
    policy: &KeyPolicy,
    metas: Vec<KeyMeta>,
    previous: Option<&Loaded>,
) -> anyhow::Result<Loaded> {
    let now = lifecycle::now();
    let active_kid = pick_active(&metas, now)
        .map(|m| m.kid.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no stored key can sign: every key is next, retired or revoked \
                 (`auth-server keys rotate --now` promotes a next key)"
            )
        })?;
    let mut keys = HashMap::new();
    let mut published_until = HashMap::new();
    let mut broken = HashSet::new();
    for meta in &metas {
        let Some(until) =
            lifecycle::published_until(meta, &metas, policy.max_token_lifetime, PUBLICATION_MARGIN)
        else {
            continue;
        };
        if until.is_some_and(|u| now >= u) && meta.kid != active_kid {
            continue;
        }
        let cached = previous.and_then(|p| p.keys.get(&meta.kid)).cloned();
        let key = match cached {
            Some(key) => key,
            None => match load_one(storage, &meta.kid).await {
                Ok(key) => Arc::new(key),
                Err(e) if meta.kid == active_kid => {
                    return Err(e.context(format!("the active key {active_kid} cannot be used")));
                }
                // The key is fine, the database is away: a key set without it would be
                // published, and a verifier that fetched it would miss the key. Keep the
                // current set until the whole store can be read.
                Err(e) if db_outage::is_outage(e.as_ref()) => return Err(e),
                Err(e) => {
                    if previous.is_none_or(|p| !p.broken.contains(&meta.kid)) {
                        tracing::warn!(kid = %meta.kid, error = format!("{e:#}"), "leaving an unusable key out of the JWKS");
                    }
                    broken.insert(meta.kid.clone());
                    continue;
                }
            },
        };
        keys.insert(meta.kid.clone(), key);
        published_until.insert(meta.kid.clone(), until);
    }
    let fallback = keys
        .get(&active_kid)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the active key {active_kid} was not loaded"))?;
    Ok(Loaded {
        metas,
        keys,
        published_until,
        fallback,
        broken,
    })
}

async fn load_one(storage: &dyn KeyStorage, kid: &str) -> anyhow::Result<SigningKey> {
    let private = storage.load(kid).await?;
    tokio::task::spawn_blocking(move || private.signing_key()).await?
}
