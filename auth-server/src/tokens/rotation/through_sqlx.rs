//! The batches through sea-orm: on PostgreSQL, and on SQLite for a batch that failed on
//! the writer's handle before its COMMIT (see the parent module for what a batch stores
//! and how its failures are answered).

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait,
    sea_query::{Expr, Query},
};

use super::{Job, Work, answer, drop_abandoned, fail, failed};
use crate::{
    entities::{family_access_tokens, refresh_families, refresh_tokens},
    tokens::codes,
};

/// Commits `batch` through sea-orm and answers each job.
pub(super) async fn commit_and_answer(writer: &DatabaseConnection, batch: &mut Vec<Job>) {
    drop_abandoned(batch);
    if batch.is_empty() {
        return;
    }
    match commit(writer, batch).await {
        Ok(outcomes) => answer(batch, outcomes),
        // A failure of the database, not of one job; possibly of the COMMIT itself, after
        // which nobody can tell whether the batch was stored, so retrying could answer
        // "already used" (reuse!) for tokens or codes this very batch used. Every job
        // fails (500, or 503 in an outage) and its client may try again.
        Err(e) if !e.is::<Conflict>() || batch.len() == 1 => fail(batch, &e),
        Err(e) => {
            // One job broke a constraint before the COMMIT, so nothing was stored:
            // retry each alone, so that it fails alone.
            tracing::warn!(error = ?e, jobs = batch.len(), "token transaction batch failed");
            for job in batch.drain(..) {
                let outcome = match commit(writer, std::slice::from_ref(&job)).await {
                    Ok(outcomes) => Ok(outcomes[0]),
                    Err(e) => {
                        tracing::error!(error = ?e, "token transaction failed");
                        Err(failed(&e))
                    }
                };
                let _ = job.reply.send(outcome);
            }
        }
    }
}

/// A statement of the batch broke a constraint (say, the login was purged meanwhile):
/// one job is at fault, not the database.
#[derive(Debug, thiserror::Error)]
#[error("a token transaction broke a constraint: {0}")]
struct Conflict(sea_orm::DbErr);

fn conflict(e: sea_orm::DbErr) -> anyhow::Error {
    use sea_orm::SqlErr;
    match e.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_) | SqlErr::UniqueConstraintViolation(_)) => {
            Conflict(e).into()
        }
        _ => e.into(),
    }
}

/// One transaction for the whole batch through sea-orm; says for each job whether it won
/// its token or code.
pub(super) async fn commit(
    writer: &DatabaseConnection,
    batch: &[Job],
) -> anyhow::Result<Vec<bool>> {
    let now = Utc::now();
    let txn = writer.begin().await?;
    let presented: HashSet<&str> = batch.iter().filter_map(Job::presented_hash).collect();
    let mut unused: HashSet<String> = HashSet::with_capacity(presented.len());
    if !presented.is_empty() {
        let update = Query::update()
            .table(refresh_tokens::Entity)
            .value(refresh_tokens::Column::UsedAt, Expr::value(now))
            .and_where(refresh_tokens::Column::TokenHash.is_in(presented.iter().copied()))
            .and_where(refresh_tokens::Column::UsedAt.is_null())
            .returning_col(refresh_tokens::Column::TokenHash)
            .to_owned();
        let statement = txn.get_database_backend().build(&update);
        for row in txn.query_all_raw(statement).await? {
            unused.insert(row.try_get::<String>("", "token_hash")?);
        }
    }
    // The first job presenting a token or a code that was unused wins it; any other job
    // presenting the same one in this batch, like any later one, finds it used.
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        outcomes.push(match &job.work {
            Work::Rotation { presented_hash, .. } => unused.remove(presented_hash),
            Work::Login {
                code_hash: Some(code_hash),
                ..
            } => codes::use_once(&txn, code_hash, &job.family_id).await?,
            Work::Login {
                code_hash: None, ..
            } => true,
        });
    }
    let winners = || {
        batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, won)| **won)
            .map(|(job, _)| job)
    };
    // Logins first: their tokens refer to them.
    let families = winners().filter_map(|job| match &job.work {
        Work::Login { family, .. } => Some(refresh_families::ActiveModel::from(family.clone())),
        Work::Rotation { .. } => None,
    });
    // Without rows, sea-orm runs no statement.
    refresh_families::Entity::insert_many(families)
        .exec_without_returning(&txn)
        .await
        .map_err(conflict)?;
    let tokens = winners().filter_map(|job| {
        let (hash, created_at) = match &job.work {
            Work::Rotation { successor_hash, .. } => (successor_hash, now),
            Work::Login {
                family,
                first_token_hash,
                ..
            } => (first_token_hash.as_ref()?, family.created_at),
        };
        Some(refresh_tokens::ActiveModel {
            token_hash: Set(hash.clone()),
            family_id: Set(job.family_id.clone()),
            created_at: Set(created_at),
            used_at: Set(None),
        })
    });
    refresh_tokens::Entity::insert_many(tokens)
        .exec_without_returning(&txn)
        .await
        .map_err(conflict)?;
    let jtis = winners().map(|job| family_access_tokens::ActiveModel {
        jti: Set(job.jti.clone()),
        family_id: Set(job.family_id.clone()),
        expires_at: Set(job.access_expires_at),
    });
    family_access_tokens::Entity::insert_many(jtis)
        .exec_without_returning(&txn)
        .await
        .map_err(conflict)?;
    txn.commit().await?;
    Ok(outcomes)
}
