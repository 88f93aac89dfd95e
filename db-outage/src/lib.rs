//! Is this database error an outage?
//!
//! A request that fails because the database cannot be reached (stopped, restarting,
//! failing over, its connection pool exhausted) will succeed if it is sent again in a
//! moment: that is a 503 with `Retry-After`, not a 500. A request that fails for any other
//! reason (a bug, a broken constraint, bad stored data) will fail again: that stays a 500.
//! [`is_outage`] tells the two apart over an error's whole cause chain, so both servers
//! classify alike and each maps the answer into its own error formats.
//!
//! Nothing here keeps state: the connection pools reconnect by themselves (sqlx drops a
//! connection whose ping fails when it goes back to the pool, and opens new ones on
//! demand), so the first request after the database is back simply succeeds.

#![warn(missing_docs)]

#[cfg(feature = "cluster")]
pub mod cluster;

use std::error::Error;

use sea_orm::{
    ConnAcquireErr, DbErr, RuntimeErr,
    sqlx::{self, postgres::PgDatabaseError, sqlite::SqliteError},
};

/// The `Retry-After` of an outage answer, in seconds. Short: the pools reconnect within
/// about a second of the database coming back, and a client that waits longer than it
/// must only adds to the outage.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Whether `error`, or any error in its source chain, says the database is unavailable
/// rather than that this request is at fault.
///
/// Recognised: sea-orm's connection errors ([`DbErr::Conn`], [`DbErr::ConnectionAcquire`]);
/// sqlx's transport and pool errors (`Io`, `Tls`, `PoolTimedOut`, `PoolClosed`) wherever
/// sea-orm wrapped them; PostgreSQL's SQLSTATEs for a server that is going away or not
/// taking connections (see [`is_outage_sqlstate`]); SQLite's result codes for a database
/// file that is locked by another process or cannot be read (see [`is_outage_sqlite_code`]),
/// and with the feature `rusqlite` the same codes in a `rusqlite::Error`.
pub fn is_outage(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if link_is_outage(error) {
            return true;
        }
        next = error.source();
    }
    false
}

/// One link of a cause chain. A `#[error(transparent)]` wrapper forwards `source()` past
/// the error it wraps, so a chain may show a `RuntimeErr` or a `ConnAcquireErr` without
/// the `DbErr` that held it: each is recognised on its own too.
fn link_is_outage(error: &(dyn Error + 'static)) -> bool {
    if let Some(e) = error.downcast_ref::<DbErr>() {
        return match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
            DbErr::Exec(e) | DbErr::Query(e) => runtime_is_outage(e),
            _ => false,
        };
    }
    if error.downcast_ref::<ConnAcquireErr>().is_some() {
        return true;
    }
    if let Some(e) = error.downcast_ref::<RuntimeErr>() {
        return runtime_is_outage(e);
    }
    if let Some(e) = error.downcast_ref::<sqlx::Error>() {
        return sqlx_is_outage(e);
    }
    #[cfg(feature = "rusqlite")]
    if let Some(rusqlite::Error::SqliteFailure(e, _)) = error.downcast_ref::<rusqlite::Error>() {
        return is_outage_sqlite_code(e.extended_code);
    }
    false
}

fn runtime_is_outage(error: &RuntimeErr) -> bool {
    match error {
        // sea-orm keeps the sqlx error behind an `Arc` that `source()` does not follow.
        RuntimeErr::SqlxError(e) => sqlx_is_outage(e),
        _ => false,
    }
}

fn sqlx_is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(e) => {
            if let Some(pg) = e.try_downcast_ref::<PgDatabaseError>() {
                is_outage_sqlstate(pg.code())
            } else if e.try_downcast_ref::<SqliteError>().is_some() {
                e.code()
                    .and_then(|code| code.parse().ok())
                    .is_some_and(is_outage_sqlite_code)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// sea-orm's reading of a failure to take a connection from a pool that was used through
/// sqlx directly (to borrow SQLite's writer handle), so that a timeout or a closed pool is
/// an outage as it is everywhere else.
pub fn acquire_failed(error: sqlx::Error) -> DbErr {
    match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(RuntimeErr::SqlxError(e.into())),
    }
}

/// Whether a PostgreSQL SQLSTATE says the server, not the statement, is the problem:
/// class 08 (connection exception), `53300` too_many_connections, `57P01`
/// admin_shutdown ("terminating connection due to administrator command"), `57P02`
/// crash_shutdown, `57P03` cannot_connect_now ("the database system is shutting down",
/// "… is starting up").
pub fn is_outage_sqlstate(code: &str) -> bool {
    code.len() == 5 && code.starts_with("08")
        || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

/// Whether a SQLite (extended) result code says the database file is out of reach for
/// now: `SQLITE_BUSY` (another process held the lock past the busy timeout),
/// `SQLITE_IOERR` (the file system under it failed), `SQLITE_CANTOPEN` (the file or its
/// directory cannot be opened). Not `SQLITE_READONLY`: a write sent to a read-only
/// connection is a bug, and must stay a 500.
pub fn is_outage_sqlite_code(code: i32) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_CANTOPEN: i32 = 14;
    // An extended code keeps its primary code in the low byte.
    matches!(code & 0xff, SQLITE_BUSY | SQLITE_IOERR | SQLITE_CANTOPEN)
}

#[cfg(test)]
mod tests;
