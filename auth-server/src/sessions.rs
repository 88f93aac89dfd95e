//! Browser sessions (single sign-on) and remembered consent, on the database side.
//!
//! A session is a row keyed by a public id (`sid`, in ID tokens) with the SHA-256 of a
//! random 256-bit cookie value; the cookie holds only that value. Any replica finds the
//! session from the cookie, so no sticky sessions are needed. Every sign-in gets a new
//! cookie value (no session fixation); signing in again as the same user keeps the `sid`,
//! so that logout still ends every login made in the browser.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{
    digest::{random_token, sha256_hex},
    domain::ScopeSet,
    entities::{authorization_codes, browser_sessions, consents, refresh_families, users},
};

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The public session id (`sid`).
    pub sid: String,
    /// The signed-in user.
    pub user: users::Model,
    /// When the user last entered their password.
    pub auth_time: DateTime<Utc>,
}

/// A cookie value in clear, on its way to the browser. Never printed.
pub struct SessionCookie(String);

impl SessionCookie {
    /// The value for `Set-Cookie`.
    pub fn value(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie(<redacted>)")
    }
}

/// The live session a cookie value names, if any. Expired and ended sessions, and
/// sessions of users who no longer exist, are no session.
pub async fn find(
    db: &DatabaseConnection,
    cookie: Option<&str>,
) -> anyhow::Result<Option<BrowserSession>> {
    let Some(cookie) = cookie.filter(|c| crate::digest::is_token(c)) else {
        return Ok(None);
    };
    let found = browser_sessions::Entity::find()
        .filter(browser_sessions::Column::SecretHash.eq(sha256_hex(cookie.as_bytes())))
        .filter(browser_sessions::Column::EndedAt.is_null())
        .filter(browser_sessions::Column::ExpiresAt.gt(Utc::now()))
        .find_also_related(users::Entity)
        .one(db)
        .await?;
    Ok(match found {
        Some((session, Some(user))) => Some(BrowserSession {
            sid: session.sid,
            user,
            auth_time: session.auth_time,
        }),
        _ => None,
    })
}

/// A sign-in on its way to the database: the session it makes, which the next step of a
/// pending request can be decided on before anything is written, and the new cookie value
/// that will name it. Every sign-in gets a new cookie value and a fresh `auth_time`; the
/// same user keeps the browser's `sid`, another user's session is ended first.
pub struct SignIn {
    cookie: SessionCookie,
    session: BrowserSession,
    expires_at: DateTime<Utc>,
    /// Whether `session.sid` is the browser's live session of the same user, to renew.
    renews: bool,
    /// Another user's session in this browser, to end.
    ends: Option<String>,
}

impl SignIn {
    /// The sign-in of `user` in a browser whose live session is `previous`.
    pub fn new(
        user: users::Model,
        previous: Option<&BrowserSession>,
        ttl: Duration,
    ) -> anyhow::Result<Self> {
        let auth_time = Utc::now();
        let expires_at = auth_time + chrono::Duration::from_std(ttl)?;
        let renews = previous.is_some_and(|p| p.user.id == user.id);
        let (sid, ends) = match previous {
            Some(previous) if renews => (previous.sid.clone(), None),
            previous => (Uuid::new_v4().to_string(), previous.map(|p| p.sid.clone())),
        };
        Ok(Self {
            cookie: SessionCookie(random_token()?),
            session: BrowserSession {
                sid,
                user,
                auth_time,
            },
            expires_at,
            renews,
            ends,
        })
    }

    /// The session as it will be once stored (its `sid` may still change: see
    /// [`SignIn::store`]).
    pub fn session(&self) -> &BrowserSession {
        &self.session
    }

    /// Stores the sign-in, in the caller's transaction if it has one. A session to renew
    /// that ended in the meantime (logout in another tab) is replaced by a new one, with a
    /// new `sid`.
    #[tracing::instrument(skip_all, fields(user_id = %self.session.user.id))]
    pub async fn store(
        self,
        db: &impl ConnectionTrait,
    ) -> anyhow::Result<(SessionCookie, BrowserSession)> {
        let Self {
            cookie,
            mut session,
            expires_at,
            renews,
            ends,
        } = self;
        let secret_hash = sha256_hex(cookie.0.as_bytes());
        if renews {
            let renewed = browser_sessions::Entity::update_many()
                .col_expr(
                    browser_sessions::Column::SecretHash,
                    Expr::value(secret_hash.clone()),
                )
                .col_expr(
                    browser_sessions::Column::AuthTime,
                    Expr::value(session.auth_time),
                )
                .col_expr(browser_sessions::Column::ExpiresAt, Expr::value(expires_at))
                .filter(browser_sessions::Column::Sid.eq(session.sid.clone()))
                .filter(browser_sessions::Column::EndedAt.is_null())
                .exec(db)
                .await?;
            if renewed.rows_affected == 1 {
                tracing::info!(sid = %session.sid, "signed in again");
                return Ok((cookie, session));
            }
            session.sid = Uuid::new_v4().to_string();
        }
        if let Some(other) = &ends {
            end(db, other).await?;
        }
        browser_sessions::Entity::insert(browser_sessions::ActiveModel {
            sid: Set(session.sid.clone()),
            secret_hash: Set(secret_hash),
            user_id: Set(session.user.id.clone()),
            auth_time: Set(session.auth_time),
            created_at: Set(session.auth_time),
            expires_at: Set(expires_at),
            ended_at: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        tracing::info!(sid = %session.sid, "signed in");
        Ok((cookie, session))
    }
}

/// Ends a session and revokes every login (refresh-token family) made in it, and every
/// code issued in it that was not exchanged yet. Returns whether a live session was ended.
#[tracing::instrument(skip_all, fields(%sid))]
pub async fn end(db: &impl ConnectionTrait, sid: &str) -> anyhow::Result<bool> {
    let now = Utc::now();
    let ended = browser_sessions::Entity::update_many()
        .col_expr(browser_sessions::Column::EndedAt, Expr::value(now))
        .filter(browser_sessions::Column::Sid.eq(sid.to_owned()))
        .filter(browser_sessions::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    let revoked = refresh_families::Entity::update_many()
        .col_expr(refresh_families::Column::RevokedAt, Expr::value(now))
        .filter(refresh_families::Column::Sid.eq(sid.to_owned()))
        .filter(refresh_families::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    // A code is a login not yet started; marked used, its exchange is refused (and, having
    // no login to revoke, changes nothing else).
    authorization_codes::Entity::update_many()
        .col_expr(authorization_codes::Column::UsedAt, Expr::value(now))
        .filter(authorization_codes::Column::Sid.eq(sid.to_owned()))
        .filter(authorization_codes::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    tracing::info!(logins = revoked.rows_affected, "session ended");
    Ok(ended.rows_affected > 0)
}

/// Whether `user_id` already allowed `client_id` every scope of `scope`.
pub async fn consent_covers(
    db: &DatabaseConnection,
    user_id: &str,
    client_id: &str,
    scope: &ScopeSet,
) -> anyhow::Result<bool> {
    let Some(row) = consents::Entity::find_by_id((user_id.to_owned(), client_id.to_owned()))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    // A scope this server no longer knows is simply not covered.
    let allowed: Vec<&str> = row
        .scope
        .split_whitespace()
        .filter(|s| ScopeSet::parse(s).is_ok())
        .collect();
    let allowed = ScopeSet::parse(&allowed.join(" "))?;
    Ok(scope.is_subset_of(&allowed))
}

/// Remembers that `user_id` allowed `client_id` the scopes of `scope`, on top of what it
/// allowed before.
pub async fn remember_consent(
    writer: &DatabaseConnection,
    user_id: &str,
    client_id: &str,
    scope: &ScopeSet,
) -> anyhow::Result<()> {
    let previous = consents::Entity::find_by_id((user_id.to_owned(), client_id.to_owned()))
        .one(writer)
        .await?
        .and_then(|row| ScopeSet::parse(&row.scope).ok());
    let all = match previous {
        Some(previous) => previous.union(scope),
        None => scope.clone(),
    };
    consents::Entity::insert(consents::ActiveModel {
        user_id: Set(user_id.to_owned()),
        client_id: Set(client_id.to_owned()),
        scope: Set(all.to_string()),
        granted_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([consents::Column::UserId, consents::Column::ClientId])
            .update_columns([consents::Column::Scope, consents::Column::GrantedAt])
            .to_owned(),
    )
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// Forgets sessions that ended or expired more than a day ago.
pub async fn purge(db: &impl ConnectionTrait) -> anyhow::Result<()> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    browser_sessions::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(browser_sessions::Column::ExpiresAt.lt(cutoff))
                .add(browser_sessions::Column::EndedAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(())
}
