//! Brute-force throttling of the password grant, per account and per client address.
//!
//! Policy: after `max_failures` consecutive failed logins an account is locked for
//! `lockout_base`, doubling with every further failure up to `lockout_max`; attempts
//! while locked are answered 429 with `Retry-After` and are not checked (so they cost no
//! Argon2 time and cannot succeed). A success resets the account. Failures older than
//! `reset_after` are forgotten, so a lock never lasts longer than `lockout_max`: an
//! attacker can slow a victim down but not lock them out for long. Independently, one
//! client address may fail at most `ip_budget` times per `ip_window` across all accounts,
//! which caps password spraying. The counters live in the database, so every replica
//! behind a load balancer enforces the same limits.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, EntityTrait,
    sea_query::{Expr, OnConflict},
};

use sqlite_readers::{Readers, rusqlite};

use crate::{entities::login_throttle, error::OAuthError};

/// The throttling policy.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Consecutive failures before an account is locked.
    pub max_failures: u32,
    /// First lock duration.
    pub lockout_base: Duration,
    /// Longest lock duration.
    pub lockout_max: Duration,
    /// Failures older than this no longer count.
    pub reset_after: Duration,
    /// Failures allowed per client address per window.
    pub ip_budget: u32,
    /// The address window.
    pub ip_window: Duration,
}

/// How long an account with `failures` consecutive failures stays locked after the last
/// one, if at all.
pub fn lockout(policy: &ThrottlePolicy, failures: u32) -> Option<Duration> {
    if failures < policy.max_failures {
        return None;
    }
    let doublings = (failures - policy.max_failures).min(20);
    Some(
        policy
            .lockout_base
            .saturating_mul(1 << doublings)
            .min(policy.lockout_max),
    )
}

/// The counter key of an account: a hash of the normalised e-mail, so that any username
/// (however long, existing or not) fits the key column and no address is stored here.
fn account_key(email: &str) -> String {
    let hex = crate::digest::sha256_hex(email.trim().to_lowercase().as_bytes());
    format!("account:{hex}")
}

fn ip_key(ip: IpAddr, now: DateTime<Utc>, window: Duration) -> (String, DateTime<Utc>) {
    let window_secs = window.as_secs().max(1) as i64;
    let index = now.timestamp().div_euclid(window_secs);
    let ends = DateTime::from_timestamp((index + 1) * window_secs, 0).unwrap_or(now);
    (format!("ip:{ip}:{index}"), ends)
}

fn retry_after(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    // Round up: a client that waits exactly this long must not be refused again.
    let millis = (until - now).num_milliseconds().max(0) as u64;
    millis.div_ceil(1000).max(1)
}

/// Serialises the password checks of one account within this process, so that parallel
/// guesses cannot all pass [`check`] before any of them is counted: each waits for the
/// previous one to be recorded. (Across replicas the bound is `max_failures` per replica
/// for guesses that arrive at the same instant; the counters themselves are shared.)
#[derive(Default)]
pub struct AccountGate {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for AccountGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountGate").finish_non_exhaustive()
    }
}

impl AccountGate {
    /// Waits for the account's turn; the turn lasts as long as the returned pass.
    pub async fn enter(&self, email: &str) -> AccountPass<'_> {
        let key = account_key(email);
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        AccountPass {
            gate: self,
            key,
            lock,
            guard: Some(guard),
        }
    }
}

/// One account's turn at the password check.
pub struct AccountPass<'a> {
    gate: &'a AccountGate,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for AccountPass<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.gate.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map and this pass still hold the lock: nobody is waiting, forget it.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

/// Refuses the attempt with 429 while the account is locked or the address has spent its
/// budget. Otherwise tells whether the account has failures on record, which a successful
/// login then clears.
pub async fn check(
    db: &impl ConnectionTrait,
    readers: Option<&Readers>,
    policy: &ThrottlePolicy,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<bool, OAuthError> {
    let now = Utc::now();
    let account = account_key(email);
    let address = ip.map(|ip| ip_key(ip, now, policy.ip_window));
    let rows = counters(db, readers, &account, address.as_ref().map(|(k, _)| k)).await?;
    // The account's lock first: it is the answer when both apply.
    let account_row = rows.iter().find(|row| row.key == account);
    if let Some(row) = account_row {
        let fresh = now - row.last_failure_at
            < chrono::Duration::from_std(policy.reset_after).unwrap_or(chrono::Duration::MAX);
        if let Some(lock) = lockout(policy, row.failures.max(0) as u32).filter(|_| fresh) {
            let until = row.last_failure_at
                + chrono::Duration::from_std(lock).unwrap_or(chrono::Duration::MAX);
            if now < until {
                tracing::info!("password grant throttled: account locked");
                return Err(OAuthError::TooManyRequests {
                    retry_after: retry_after(until, now),
                });
            }
        }
    }
    if let Some((key, window_ends)) = &address
        && let Some(row) = rows.iter().find(|row| &row.key == key)
        && row.failures.max(0) as u32 >= policy.ip_budget
    {
        tracing::info!(ip = ?ip, "password grant throttled: address budget spent");
        return Err(OAuthError::TooManyRequests {
            retry_after: retry_after(*window_ends, now),
        });
    }
    let account_failures = account_row.is_some();
    Ok(account_failures)
}

/// The counters of the account and of the address, in one query: every sign-in asks, so
/// on SQLite they are read on this thread (see `sqlite-readers`), else, or when that fails,
/// through sea-orm; the same rows either way (a test holds them to it).
async fn counters(
    db: &impl ConnectionTrait,
    readers: Option<&Readers>,
    account: &str,
    address: Option<&String>,
) -> Result<Vec<login_throttle::Model>, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    if let Some(rows) = readers.and_then(|r| r.read(|c| read_counters(c, account, address))) {
        return Ok(rows);
    }
    let keys = std::iter::once(account.to_owned()).chain(address.cloned());
    login_throttle::Entity::find()
        .filter(login_throttle::Column::Key.is_in(keys))
        .all(db)
        .await
}

fn read_counters(
    connection: &rusqlite::Connection,
    account: &str,
    address: Option<&String>,
) -> rusqlite::Result<Vec<login_throttle::Model>> {
    // Without an address `?2` is NULL, which `IN` never matches.
    connection
        .prepare_cached(
            "SELECT key, failures, last_failure_at FROM login_throttle WHERE key IN (?1, ?2)",
        )?
        .query_map(rusqlite::params![account, address], |r| {
            Ok(login_throttle::Model {
                key: r.get(0)?,
                failures: r.get(1)?,
                last_failure_at: sqlite_readers::datetime(r.get_ref(2)?)?,
            })
        })?
        .collect()
}

/// Counts a failed login against the account and the address, atomically, so concurrent
/// failures on several replicas all count.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    policy: &ThrottlePolicy,
    email: &str,
    ip: Option<IpAddr>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let stale = now - chrono::Duration::from_std(policy.reset_after)?;
    increment(db, account_key(email), now, Some(stale)).await?;
    if let Some(ip) = ip {
        increment(db, ip_key(ip, now, policy.ip_window).0, now, None).await?;
    }
    Ok(())
}

async fn increment(
    db: &impl ConnectionTrait,
    key: String,
    now: DateTime<Utc>,
    restart_if_before: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    // Scoped: ExprTrait's min/max would shadow the integer ones elsewhere in this file.
    use sea_orm::sea_query::ExprTrait;
    let failures = Expr::col((login_throttle::Entity, login_throttle::Column::Failures));
    let next = match restart_if_before {
        Some(stale) => Expr::case(
            Expr::col((
                login_throttle::Entity,
                login_throttle::Column::LastFailureAt,
            ))
            .lt(stale),
            1,
        )
        .finally(failures.add(1))
        .into(),
        None => failures.add(1),
    };
    let row = login_throttle::ActiveModel {
        key: sea_orm::Set(key),
        failures: sea_orm::Set(1),
        last_failure_at: sea_orm::Set(now),
    };
    login_throttle::Entity::insert(row)
        .on_conflict(
            OnConflict::column(login_throttle::Column::Key)
                .value(login_throttle::Column::Failures, next)
                .value(login_throttle::Column::LastFailureAt, Expr::value(now))
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// A successful login clears the account's failures.
pub async fn record_success(db: &impl ConnectionTrait, email: &str) -> anyhow::Result<()> {
    login_throttle::Entity::delete_by_id(account_key(email))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets counters that can no longer matter.
pub async fn purge(db: &impl ConnectionTrait, policy: &ThrottlePolicy) -> anyhow::Result<()> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let horizon = policy
        .reset_after
        .max(policy.ip_window)
        .max(policy.lockout_max);
    let cutoff = Utc::now() - chrono::Duration::from_std(horizon)?;
    login_throttle::Entity::delete_many()
        .filter(login_throttle::Column::LastFailureAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: 5,
            lockout_base: Duration::from_secs(2),
            lockout_max: Duration::from_secs(60),
            reset_after: Duration::from_secs(900),
            ip_budget: 100,
            ip_window: Duration::from_secs(300),
        }
    }

    #[test]
    fn no_lock_below_the_threshold() {
        assert_eq!(lockout(&policy(), 4), None);
    }

    #[test]
    fn the_lock_doubles_and_is_bounded() {
        let p = policy();
        assert_eq!(lockout(&p, 5), Some(Duration::from_secs(2)));
        assert_eq!(lockout(&p, 6), Some(Duration::from_secs(4)));
        assert_eq!(lockout(&p, 9), Some(Duration::from_secs(32)));
        assert_eq!(lockout(&p, 10), Some(Duration::from_secs(60)));
        assert_eq!(lockout(&p, 10_000), Some(Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let now = Utc::now();
        assert_eq!(
            retry_after(now + chrono::Duration::milliseconds(1500), now),
            2
        );
        assert_eq!(retry_after(now, now), 1);
    }

    #[tokio::test]
    async fn the_gate_forgets_accounts_nobody_waits_for() {
        let gate = AccountGate::default();
        {
            let _pass = gate.enter("a@example.com").await;
            assert_eq!(gate.locks.lock().unwrap().len(), 1);
        }
        assert!(gate.locks.lock().unwrap().is_empty());
    }

    #[test]
    fn account_keys_are_fixed_size_and_case_insensitive() {
        assert_eq!(account_key("A@Example.com"), account_key(" a@example.com"));
        assert_eq!(
            account_key(&"x".repeat(10_000)).len(),
            "account:".len() + 64
        );
    }

    // The counters read on the calling thread are the rows sea-orm reads (the times as
    // sqlx wrote them), with and without an address, and none for an unknown account.
    #[tokio::test]
    async fn the_synchronous_read_and_sea_orm_give_the_same_counters() {
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
        let (_dir, db, readers) = crate::db::temporary_sqlite().await;
        let p = policy();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            record_failure(&db, &p, "a@example.com", Some(ip))
                .await
                .unwrap();
        }
        record_failure(&db, &p, "b@example.com", None)
            .await
            .unwrap();
        let address = ip_key(ip, Utc::now(), p.ip_window).0;
        for (email, address) in [
            ("a@example.com", Some(&address)),
            ("a@example.com", None),
            ("b@example.com", Some(&address)),
            ("nobody@example.com", None),
        ] {
            let account = account_key(email);
            let keys = std::iter::once(account.clone()).chain(address.cloned());
            let orm = login_throttle::Entity::find()
                .filter(login_throttle::Column::Key.is_in(keys))
                .order_by_asc(login_throttle::Column::Key)
                .all(&db)
                .await
                .unwrap();
            let mut fast = readers
                .read(|c| read_counters(c, &account, address))
                .unwrap();
            fast.sort_by(|a, b| a.key.cmp(&b.key));
            assert_eq!(fast, orm, "{email} {address:?}");
        }
        let a = account_key("a@example.com");
        let both = counters(&db, Some(&readers), &a, Some(&address))
            .await
            .unwrap();
        assert_eq!(both.iter().map(|r| r.failures).sum::<i32>(), 6);
    }

    #[test]
    fn address_windows_are_aligned() {
        let now = DateTime::from_timestamp(1000, 0).unwrap();
        let (key, ends) = ip_key("10.0.0.1".parse().unwrap(), now, Duration::from_secs(300));
        assert_eq!(key, "ip:10.0.0.1:3");
        assert_eq!(ends.timestamp(), 1200);
    }
}
