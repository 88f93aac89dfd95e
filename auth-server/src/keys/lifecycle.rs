//! The pure rules of a key's life: which key signs, which keys are published, and what a
//! rotation or a revocation changes. Everything here is a function of the stored metadata
//! and the time it is asked at, so every replica reaches the same answer without talking
//! to the others, and switches keys at `active_from` without a restart.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

/// Where a key is in its life at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, signs nothing yet (possibly scheduled to take over at `active_from`).
    Next,
    /// Signs new tokens.
    Active,
    /// Signs nothing any more; published while tokens it signed may still be alive.
    Retired,
    /// Withdrawn: neither published nor accepted; listed only.
    Revoked,
}

/// What is stored about a key besides its key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// When the key was written to the store, which is when it counts as published.
    pub created_at: DateTime<Utc>,
    /// When it starts (or started) to sign; `None` for a next key not yet scheduled.
    pub active_from: Option<DateTime<Utc>>,
    /// An explicit retirement. Keys retire implicitly when a successor takes over; only
    /// key directories written before next keys existed carry this.
    pub retired_at: Option<DateTime<Utc>>,
    /// When the key was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The current time at the precision every store keeps (PostgreSQL: microseconds), so a
/// time read back from a store equals the one written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The smallest step between two activations, so that a promotion always starts strictly
/// after the key it replaces, even on a coarse clock.
const TICK: chrono::Duration = chrono::Duration::microseconds(1);

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Signing order: the later `active_from` wins, ties broken by kid.
fn order(meta: &KeyMeta) -> (Option<DateTime<Utc>>, &str) {
    (meta.active_from, meta.kid.as_str())
}

/// When the key took (or takes) over signing, if it ever does: a key revoked before its
/// `active_from` never signed.
fn takes_over(meta: &KeyMeta) -> Option<DateTime<Utc>> {
    let start = meta.active_from?;
    meta.revoked_at.is_none_or(|r| r > start).then_some(start)
}

/// The keys allowed to sign at `now`, best first: started, not revoked, not explicitly
/// retired. The first is the active key; the rest are fallbacks should it not load.
pub fn signing_candidates(metas: &[KeyMeta], now: DateTime<Utc>) -> Vec<&KeyMeta> {
    let mut candidates: Vec<&KeyMeta> = metas
        .iter()
        .filter(|m| m.revoked_at.is_none())
        .filter(|m| m.retired_at.is_none_or(|r| r > now))
        .filter(|m| m.active_from.is_some_and(|a| a <= now))
        .collect();
    candidates.sort_by(|a, b| order(b).cmp(&order(a)));
    candidates
}

/// The key that signs at `now`.
pub fn pick_active(metas: &[KeyMeta], now: DateTime<Utc>) -> Option<&KeyMeta> {
    signing_candidates(metas, now).into_iter().next()
}

/// Whether the key is a next key at `now`: published, not signing yet.
pub fn is_next(meta: &KeyMeta, now: DateTime<Utc>) -> bool {
    meta.revoked_at.is_none()
        && meta.retired_at.is_none()
        && meta.active_from.is_none_or(|a| a > now)
}

/// When the key stops (or stopped) signing: the start of the first key that took over
/// after it, or an explicit retirement. `None` while nothing is set to replace it.
pub fn retired_at(meta: &KeyMeta, metas: &[KeyMeta]) -> Option<DateTime<Utc>> {
    if meta.retired_at.is_some() {
        return meta.retired_at;
    }
    meta.active_from?;
    metas
        .iter()
        .filter(|other| order(other) > order(meta))
        .filter_map(takes_over)
        .min()
}

/// The key's state at `now`.
pub fn state(meta: &KeyMeta, metas: &[KeyMeta], now: DateTime<Utc>) -> KeyState {
    if meta.revoked_at.is_some() {
        KeyState::Revoked
    } else if pick_active(metas, now).is_some_and(|a| a.kid == meta.kid) {
        KeyState::Active
    } else if is_next(meta, now) {
        KeyState::Next
    } else {
        KeyState::Retired
    }
}

/// Until when the key must appear in the JWKS: `Some(None)` for as long as nothing
/// replaces it, `Some(Some(t))` until `t`, `None` never (revoked).
///
/// A retired key signed its last token at its retirement; that token is valid for
/// `max_token_lifetime`, and resource servers accept it for a further `leeway` of clock
/// skew. Afterwards no live token can need the key.
pub fn published_until(
    meta: &KeyMeta,
    metas: &[KeyMeta],
    max_token_lifetime: Duration,
    leeway: Duration,
) -> Option<Option<DateTime<Utc>>> {
    if meta.revoked_at.is_some() {
        return None;
    }
    Some(retired_at(meta, metas).map(|r| add(r, max_token_lifetime + leeway)))
}

/// Whether the key must appear in the JWKS at `now`. The key that signs always does.
pub fn is_published(
    meta: &KeyMeta,
    metas: &[KeyMeta],
    now: DateTime<Utc>,
    max_token_lifetime: Duration,
    leeway: Duration,
) -> bool {
    match published_until(meta, metas, max_token_lifetime, leeway) {
        None => false,
        Some(until) => {
            until.is_none_or(|u| now < u)
                || pick_active(metas, now).is_some_and(|a| a.kid == meta.kid)
        }
    }
}

/// When a next key published at `published_at` may start signing: not before every
/// verifier has had `lead` to fetch it, not before now, and strictly after the key it
/// replaces started.
pub fn activation_time(
    published_at: DateTime<Utc>,
    now: DateTime<Utc>,
    lead: Duration,
    current_start: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let mut at = now.max(add(published_at, lead));
    if let Some(current) = current_start {
        at = at.max(current + TICK);
    }
    at
}

/// Whether the key is a next key that nothing has scheduled yet.
pub fn is_unscheduled(meta: &KeyMeta) -> bool {
    meta.revoked_at.is_none() && meta.retired_at.is_none() && meta.active_from.is_none()
}

/// Whether a store lacks a next key that nothing has scheduled yet, which every rotation
/// needs: there is always one besides any key already scheduled to take over.
pub fn needs_next_key(metas: &[KeyMeta]) -> bool {
    !metas.iter().any(is_unscheduled)
}

/// A next key chosen to take over signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The key that will sign.
    pub kid: String,
    /// From when.
    pub active_from: DateTime<Utc>,
}

/// Why a rotation cannot happen now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    /// A rotation is already waiting for its key's lead to pass.
    #[error(
        "a rotation is already scheduled: key {kid} becomes active at {}; \
         use --now to promote it at once",
        active_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    AlreadyScheduled {
        /// The scheduled key.
        kid: String,
        /// When it takes over.
        active_from: DateTime<Utc>,
    },
    /// There is no next key to promote.
    #[error("there is no next key to promote")]
    NoNextKey,
}

/// Plans a rotation: the oldest next key takes over once it has been published for
/// `lead` (`immediate`: at once, for emergencies, even if a rotation is scheduled).
///
/// A plain rotation refuses while another is pending, so two rotations started together
/// (two operators, or the scheduler on several replicas) make one change, not two.
pub fn plan_rotation(
    metas: &[KeyMeta],
    now: DateTime<Utc>,
    lead: Duration,
    immediate: bool,
) -> Result<Promotion, RotationError> {
    let current = pick_active(metas, now).and_then(|a| a.active_from);
    let mut next: Vec<&KeyMeta> = metas.iter().filter(|m| is_next(m, now)).collect();
    next.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    if immediate {
        let key = next.first().ok_or(RotationError::NoNextKey)?;
        let active_from = activation_time(now, now, Duration::ZERO, current);
        return Ok(Promotion {
            kid: key.kid.clone(),
            active_from,
        });
    }
    if let Some(scheduled) = next.iter().find(|m| m.active_from.is_some()) {
        return Err(RotationError::AlreadyScheduled {
            kid: scheduled.kid.clone(),
            active_from: scheduled.active_from.unwrap_or(now),
        });
    }
    let key = next.first().ok_or(RotationError::NoNextKey)?;
    Ok(Promotion {
        kid: key.kid.clone(),
        active_from: activation_time(key.created_at, now, lead, current),
    })
}

/// Whether automatic rotation (every `every`, when set) is due at `now`: the active key
/// has signed for `every`, and no rotation is already scheduled.
pub fn rotation_due(metas: &[KeyMeta], now: DateTime<Utc>, every: Option<Duration>) -> bool {
    let Some(every) = every else {
        return false;
    };
    let Some(started) = pick_active(metas, now).and_then(|a| a.active_from) else {
        return false;
    };
    let scheduled = metas
        .iter()
        .any(|m| is_next(m, now) && m.active_from.is_some());
    !scheduled && now >= add(started, every)
}

/// What revoking a key changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The key to revoke.
    pub kid: String,
    /// The next key that must sign first, when the revoked key is the active one.
    pub promote: Option<Promotion>,
}

/// Why a key cannot be revoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// No such key.
    #[error("no key with kid `{0}`")]
    UnknownKey(String),
    /// Revoked before.
    #[error("key `{0}` is already revoked")]
    AlreadyRevoked(String),
    /// Revoking it would leave nothing that can sign.
    #[error(
        "key `{0}` is the only key that can sign: there is no next key to promote \
         (run `auth-server keys rotate --now` first)"
    )]
    LastKey(String),
}

/// Plans the revocation of `kid`. Revoking the active key first promotes the oldest next
/// key at once, as `rotate --now` does; revoking the only key that can sign is refused.
pub fn plan_revocation(
    metas: &[KeyMeta],
    kid: &str,
    now: DateTime<Utc>,
) -> Result<Revocation, RevocationError> {
    let meta = metas
        .iter()
        .find(|m| m.kid == kid)
        .ok_or_else(|| RevocationError::UnknownKey(kid.to_owned()))?;
    if meta.revoked_at.is_some() {
        return Err(RevocationError::AlreadyRevoked(kid.to_owned()));
    }
    let is_active = pick_active(metas, now).is_some_and(|a| a.kid == kid);
    let promote = if is_active {
        let promotion = plan_rotation(metas, now, Duration::ZERO, true)
            .map_err(|_| RevocationError::LastKey(kid.to_owned()))?;
        Some(promotion)
    } else {
        None
    };
    Ok(Revocation {
        kid: kid.to_owned(),
        promote,
    })
}

// The rules are exercised case by case in `lifecycle/tests.rs`.
#[cfg(test)]
mod tests;
