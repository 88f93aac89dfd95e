//! Sign-up and credential checks.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
};
use sqlite_readers::{Readers, rusqlite};
use uuid::Uuid;

use crate::{
    domain::{Email, FullName, Password},
    entities::users,
    error::OAuthError,
    passwords::PasswordHasher,
    state::AppState,
    throttle,
};

/// A validated sign-up request.
#[derive(Debug)]
pub struct NewUser {
    /// The address, normalised.
    pub email: Email,
    /// The password, checked for length.
    pub password: Password,
    /// The display name.
    pub full_name: FullName,
}

/// What is wrong with each field of a sign-up, by the rules of [`Email`], [`Password`] and
/// [`FullName`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SignUpProblems {
    /// The e-mail address's problem.
    pub email: Option<String>,
    /// The password's problem.
    pub password: Option<String>,
    /// The name's problem.
    pub full_name: Option<String>,
}

impl SignUpProblems {
    /// The first problem, in the order of the fields.
    pub fn first(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.password.as_deref())
            .or(self.full_name.as_deref())
    }
}

impl NewUser {
    /// Parses a sign-up, from the API or from the sign-up page alike.
    pub fn parse(email: &str, password: String, full_name: &str) -> Result<Self, SignUpProblems> {
        match (
            Email::parse(email),
            Password::parse(password),
            FullName::parse(full_name),
        ) {
            (Ok(email), Ok(password), Ok(full_name)) => Ok(Self {
                email,
                password,
                full_name,
            }),
            (email, password, full_name) => Err(SignUpProblems {
                email: email.err(),
                password: password.err(),
                full_name: full_name.err(),
            }),
        }
    }
}

/// Why a sign-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    /// The address belongs to another user (compared case-insensitively).
    #[error("a user with this email already exists")]
    EmailTaken,
    /// Database or hashing failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Stores a new user with an Argon2id hash of the password.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn sign_up(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    new: NewUser,
) -> Result<users::Model, SignUpError> {
    let password_hash = hasher.hash(new.password).await?;
    let user = users::ActiveModel {
        id: Set(Uuid::new_v4().to_string()),
        email: Set(new.email.as_str().to_owned()),
        password_hash: Set(password_hash),
        full_name: Set(new.full_name.as_str().to_owned()),
        created_at: Set(Utc::now()),
    };
    // The unique index decides, not a pre-check: two concurrent sign-ups with one address
    // cannot both pass a SELECT and then both insert.
    match user.insert(db).await {
        Ok(model) => {
            tracing::info!(user_id = %model.id, "user signed up");
            Ok(model)
        }
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(SignUpError::EmailTaken)
        }
        Err(e) => Err(SignUpError::Internal(e.into())),
    }
}

/// The user with this id, if any.
pub async fn find(db: &DatabaseConnection, id: &str) -> anyhow::Result<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id.to_owned()).one(db).await?)
}

/// Checks an e-mail and password. Unknown users and wrong passwords take the same time
/// and give the same `None`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(
    db: &DatabaseConnection,
    readers: Option<&Readers>,
    hasher: &PasswordHasher,
    email: &str,
    password: String,
) -> anyhow::Result<Option<users::Model>> {
    let email = email.trim().to_lowercase();
    // No stored e-mail holds a NUL (sign-up refuses control characters), and PostgreSQL
    // refuses NUL in any text parameter, so such a name is simply unknown.
    let user = if email.contains('\0') {
        None
    } else {
        by_email(db, readers, &email).await?
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if hasher.verify(password, stored).await? {
        Ok(user)
    } else {
        Ok(None)
    }
}

/// The user with this (lower-cased) e-mail: every sign-in asks, so on SQLite read on this
/// thread (see `sqlite-readers`), else, or when that fails, through sea-orm; the same row
/// either way (a test holds them to it).
async fn by_email(
    db: &DatabaseConnection,
    readers: Option<&Readers>,
    email: &str,
) -> Result<Option<users::Model>, sea_orm::DbErr> {
    if let Some(found) = readers.and_then(|r| r.read(|c| read_by_email(c, email))) {
        return Ok(found);
    }
    users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(db)
        .await
}

fn read_by_email(
    connection: &rusqlite::Connection,
    email: &str,
) -> rusqlite::Result<Option<users::Model>> {
    use rusqlite::OptionalExtension;
    connection
        .prepare_cached(
            "SELECT id, email, password_hash, full_name, created_at FROM users WHERE email = ?1",
        )?
        .query_row([email], |r| {
            Ok(users::Model {
                id: r.get(0)?,
                email: r.get(1)?,
                password_hash: r.get(2)?,
                full_name: r.get(3)?,
                created_at: sqlite_readers::datetime(r.get_ref(4)?)?,
            })
        })
        .optional()
}

/// Why a sign-in with e-mail and password failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Unknown e-mail or wrong password: one answer for both.
    #[error("the e-mail address or the password is wrong")]
    Invalid,
    /// Too many failures for the account or the client address.
    #[error("too many failed attempts, retry later")]
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Database or hashing failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The one sign-in path of the password grant and the sign-in page: the throttle (account
/// and address counters, one check at a time per account), the Argon2id check (a dummy hash
/// for unknown users, so timing tells nothing), and the counting of the outcome.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify_credentials(
    state: &AppState,
    username: &str,
    password: &str,
    client_ip: Option<std::net::IpAddr>,
) -> Result<users::Model, CredentialError> {
    let policy = state.settings.throttle.policy();
    // One check at a time per account, from the throttle check to the recorded outcome,
    // so that parallel guesses cannot all pass the check before the first failure is
    // counted.
    let _turn = state.login_gate.enter(username).await;
    let had_failures = match throttle::check(
        &state.db,
        state.readers.as_ref(),
        &policy,
        username,
        client_ip,
    )
    .await
    {
        Ok(had_failures) => had_failures,
        Err(OAuthError::TooManyRequests { retry_after }) => {
            return Err(CredentialError::Throttled { retry_after });
        }
        // Its cause, not the error: mapped again, it must still read as an outage.
        Err(e) => {
            let cause = e.into_cause().unwrap_or_else(anyhow::Error::new);
            return Err(CredentialError::Internal(cause));
        }
    };
    let Some(user) = authenticate(
        &state.db,
        state.readers.as_ref(),
        &state.hasher,
        username,
        password.to_owned(),
    )
    .await?
    else {
        throttle::record_failure(&state.writer, &policy, username, client_ip).await?;
        state.metrics.failed_login();
        tracing::debug!("sign-in refused: bad credentials");
        return Err(CredentialError::Invalid);
    };
    if had_failures {
        throttle::record_success(&state.writer, username).await?;
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The user read on the calling thread is the row sea-orm reads, column for column, and
    // an unknown e-mail is unknown on both paths.
    #[tokio::test]
    async fn the_synchronous_read_and_sea_orm_give_the_same_user() {
        let (_dir, db, readers) = crate::db::temporary_sqlite().await;
        for (email, name) in [("a@example.com", "Ann Ô'Neil"), ("b@example.com", "Bo")] {
            users::ActiveModel {
                id: Set(Uuid::new_v4().to_string()),
                email: Set(email.into()),
                password_hash: Set("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
                full_name: Set(name.into()),
                created_at: Set(Utc::now()),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        for email in ["a@example.com", "b@example.com", "nobody@example.com"] {
            let orm = users::Entity::find()
                .filter(users::Column::Email.eq(email))
                .one(&db)
                .await
                .unwrap();
            assert_eq!(readers.read(|c| read_by_email(c, email)), Some(orm.clone()));
            assert_eq!(by_email(&db, Some(&readers), email).await.unwrap(), orm);
        }
        assert_eq!(readers.failures(), 0);
    }
}
