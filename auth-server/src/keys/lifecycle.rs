use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens.
    Active,
    /// Signs nothing any more; published while tokens it signed may still be alive.
    Retired,
}

/// What is known about a key besides its key material; stored as `<kid>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMeta {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// When the key was generated.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing; `None` while it may still sign.
    pub retired_at: Option<DateTime<Utc>>,
}

impl KeyMeta {
    /// Active or retired.
    pub fn state(&self) -> KeyState {
        if self.retired_at.is_some() {
            KeyState::Retired
        } else {
            KeyState::Active
        }
    }
}

/// Whether a key must still appear in the JWKS at `now`.
///
/// A retired key signed its last token at `retired_at`; that token is valid until
/// `retired_at + max_token_lifetime`, and resource servers accept it for a further
/// `leeway` of clock skew. Until then the key stays published; afterwards no live token
/// can need it. An unretired key is always published.
pub fn is_published(
    meta: &KeyMeta,
    now: DateTime<Utc>,
    max_token_lifetime: Duration,
    leeway: Duration,
) -> bool {
    match meta.retired_at {
        None => true,
        Some(retired_at) => {
            let window = chrono::Duration::from_std(max_token_lifetime + leeway)
                .unwrap_or(chrono::Duration::MAX);
            retired_at
                .checked_add_signed(window)
                .is_none_or(|until| now < until)
        }
    }
}

/// Whether automatic rotation (every `every`, when set) is due for an active key created
/// at `created_at`.
pub fn rotation_due(
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    every: Option<Duration>,
) -> bool {
    let Some(every) = every else {
        return false;
    };
    let age = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    created_at
        .checked_add_signed(age)
        .is_some_and(|due| now >= due)
}

/// Picks the key that signs: the newest key that is not retired (ties broken by kid, so
/// replicas that generated keys at the same moment still agree).
pub fn pick_active(metas: &[KeyMeta]) -> Option<&KeyMeta> {
    metas
        .iter()
        .filter(|m| m.retired_at.is_none())
        .max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kid: &str, created: i64, retired: Option<i64>) -> KeyMeta {
        KeyMeta {
            kid: kid.into(),
            created_at: DateTime::from_timestamp(created, 0).unwrap(),
            retired_at: retired.map(|t| DateTime::from_timestamp(t, 0).unwrap()),
        }
    }

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(t, 0).unwrap()
    }

    const TTL: Duration = Duration::from_secs(900);
    const LEEWAY: Duration = Duration::from_secs(60);

    #[test]
    fn an_active_key_is_always_published() {
        assert!(is_published(
            &meta("a", 0, None),
            at(1_000_000),
            TTL,
            LEEWAY
        ));
    }

    #[test]
    fn a_retired_key_is_published_until_its_last_token_expires() {
        let m = meta("a", 0, Some(1000));
        assert!(is_published(&m, at(1000), TTL, LEEWAY));
        assert!(is_published(&m, at(1000 + 900 + 59), TTL, LEEWAY));
        assert!(!is_published(&m, at(1000 + 900 + 60), TTL, LEEWAY));
    }

    #[test]
    fn the_newest_unretired_key_is_active() {
        let metas = vec![
            meta("old", 10, Some(20)),
            meta("b", 20, None),
            meta("a", 30, None),
        ];
        assert_eq!(pick_active(&metas).unwrap().kid, "a");
    }

    #[test]
    fn equal_creation_times_are_broken_by_kid() {
        let metas = vec![meta("x", 10, None), meta("y", 10, None)];
        assert_eq!(pick_active(&metas).unwrap().kid, "y");
    }

    #[test]
    fn rotation_is_due_only_when_enabled_and_old_enough() {
        let day = Duration::from_secs(86_400);
        assert!(!rotation_due(at(0), at(10 * 86_400), None));
        assert!(!rotation_due(at(0), at(86_399), Some(day)));
        assert!(rotation_due(at(0), at(86_400), Some(day)));
    }

    #[test]
    fn no_unretired_key_means_no_active_key() {
        assert!(pick_active(&[meta("a", 1, Some(2))]).is_none());
    }
}
