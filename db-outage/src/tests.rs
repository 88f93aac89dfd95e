use std::{io, sync::Arc, time::Duration};

use sea_orm::{
    ConnAcquireErr, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr,
    RuntimeErr, TransactionTrait, sqlx,
};

use super::{is_outage, is_outage_sqlite_code, is_outage_sqlstate};

fn query(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

fn io(kind: io::ErrorKind) -> sqlx::Error {
    sqlx::Error::Io(io::Error::from(kind))
}

#[test]
fn connection_and_pool_errors_are_outages() {
    let outages = [
        query(io(io::ErrorKind::ConnectionRefused)),
        query(io(io::ErrorKind::UnexpectedEof)),
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(io(
            io::ErrorKind::ConnectionReset,
        )))),
        query(sqlx::Error::PoolTimedOut),
        query(sqlx::Error::PoolClosed),
        query(sqlx::Error::Tls("handshake failed".into())),
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        DbErr::Conn(RuntimeErr::Internal("connection lost".into())),
    ];
    for e in outages {
        assert!(is_outage(&e), "{e:?}");
    }
}

#[test]
fn errors_of_the_request_are_not_outages() {
    let others = [
        DbErr::RecordNotFound("post".into()),
        DbErr::Custom("stored scope is malformed".into()),
        DbErr::Query(RuntimeErr::Internal("syntax error".into())),
        query(sqlx::Error::RowNotFound),
        query(sqlx::Error::Protocol("unexpected message".into())),
        query(sqlx::Error::ColumnNotFound("id".into())),
        DbErr::Type("not a string".into()),
    ];
    for e in others {
        assert!(!is_outage(&e), "{e:?}");
    }
}

#[test]
fn an_outage_is_found_behind_context_and_transparent_wrappers() {
    #[derive(Debug, thiserror::Error)]
    enum Surface {
        #[error(transparent)]
        Internal(#[from] anyhow::Error),
    }

    let with_context = anyhow::Error::new(query(io(io::ErrorKind::ConnectionRefused)))
        .context("cannot load the user")
        .context("sign-in failed");
    assert!(is_outage(with_context.as_ref()));

    // `transparent` skips the DbErr itself in the chain: what it held must still count.
    let acquire = Surface::from(anyhow::Error::new(DbErr::ConnectionAcquire(
        ConnAcquireErr::Timeout,
    )));
    assert!(is_outage(&acquire));
    let io_error = Surface::from(anyhow::Error::new(query(io(io::ErrorKind::BrokenPipe))));
    assert!(is_outage(&io_error));

    let bug = Surface::from(anyhow::anyhow!("the login was not started"));
    assert!(!is_outage(&bug));
}

#[test]
fn an_io_error_outside_the_database_is_not_an_outage() {
    // A key file that cannot be read is not the database going away.
    let e = anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound)).context("keys/a.pem");
    assert!(!is_outage(e.as_ref()));
}

#[test]
fn sqlstates_of_a_server_going_away_are_outages() {
    for code in [
        "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006",
    ] {
        assert!(is_outage_sqlstate(code), "{code}");
    }
    // unique_violation, serialization_failure, undefined_table, query_canceled,
    // database_dropped, and malformed codes.
    for code in [
        "23505", "40001", "42P01", "57014", "57P04", "08", "", "080000",
    ] {
        assert!(!is_outage_sqlstate(code), "{code}");
    }
}

#[test]
fn sqlite_codes_of_an_unreachable_file_are_outages() {
    // BUSY, BUSY_RECOVERY, BUSY_SNAPSHOT, IOERR, IOERR_READ, CANTOPEN, CANTOPEN_ISDIR.
    for code in [5, 261, 517, 10, 266, 14, 526] {
        assert!(is_outage_sqlite_code(code), "{code}");
    }
    // ERROR, READONLY, READONLY_DIRECTORY, CONSTRAINT, CONSTRAINT_UNIQUE, CORRUPT.
    for code in [1, 8, 1544, 19, 2067, 11] {
        assert!(!is_outage_sqlite_code(code), "{code}");
    }
}

#[cfg(feature = "rusqlite")]
#[test]
fn rusqlite_errors_are_classified_by_their_sqlite_code() {
    let failure = |code: i32| {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("m".into()))
    };
    // IOERR_FSYNC behind a context: an outage. CONSTRAINT_FOREIGNKEY: the request's fault.
    let fsync = anyhow::Error::new(failure(1034)).context("commit");
    assert!(is_outage(fsync.as_ref()));
    assert!(!is_outage(&failure(787)));
    assert!(!is_outage(&rusqlite::Error::QueryReturnedNoRows));
}

async fn sqlite(url: &str, busy_timeout: Duration, query_only: bool) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            let o = o.busy_timeout(busy_timeout);
            if query_only {
                o.pragma("query_only", "ON")
            } else {
                o
            }
        });
    Database::connect(options).await.unwrap()
}

#[tokio::test]
async fn real_sqlite_errors_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let holder = sqlite(&url, Duration::from_secs(5), false).await;
    holder
        .execute_unprepared("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    holder
        .execute_unprepared("INSERT INTO t VALUES (1)")
        .await
        .unwrap();

    let duplicate = holder
        .execute_unprepared("INSERT INTO t VALUES (1)")
        .await
        .unwrap_err();
    assert!(!is_outage(&duplicate), "{duplicate:?}");
    let syntax = holder.execute_unprepared("INSERT INTO").await.unwrap_err();
    assert!(!is_outage(&syntax), "{syntax:?}");
    let reader = sqlite(&url, Duration::from_secs(5), true).await;
    let readonly = reader
        .execute_unprepared("INSERT INTO t VALUES (2)")
        .await
        .unwrap_err();
    assert!(!is_outage(&readonly), "{readonly:?}");

    // Another connection holds the write lock past the busy timeout.
    let txn = holder.begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    let waiter = sqlite(&url, Duration::ZERO, false).await;
    let busy = waiter
        .execute_unprepared("INSERT INTO t VALUES (4)")
        .await
        .unwrap_err();
    assert!(is_outage(&busy), "{busy:?}");
    txn.rollback().await.unwrap();

    let missing = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("gone").join("t.db").display()
    );
    let cannot_open = Database::connect(missing).await.unwrap_err();
    assert!(is_outage(&cannot_open), "{cannot_open:?}");
}
