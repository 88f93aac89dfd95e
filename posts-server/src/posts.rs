//! Posts: queries and the authorship rule (only the author may change or delete a post).

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, RuntimeErr, sqlx,
};

use crate::domain::{Cursor, PageLimit, PostBody, PostId, PostTitle};
use crate::entities::post;
use crate::inserts::Inserter;
use crate::page_reads::{self, Param, SqliteReaders};

/// A post to create, already validated.
#[derive(Debug, Clone)]
pub struct NewPost {
    /// The title.
    pub title: PostTitle,
    /// The body.
    pub body: PostBody,
}

/// A change to a post: a new title, a new body, or both, never neither.
#[derive(Debug, Clone)]
pub struct PostChanges {
    title: Option<PostTitle>,
    body: Option<PostBody>,
}

/// A change that changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("send a title, a body, or both")]
pub struct NoChanges;

impl PostChanges {
    /// Refuses an empty change, so an update always touches the row.
    pub fn new(title: Option<PostTitle>, body: Option<PostBody>) -> Result<Self, NoChanges> {
        if title.is_none() && body.is_none() {
            return Err(NoChanges);
        }
        Ok(Self { title, body })
    }
}

/// One page of posts, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    /// The posts of this page.
    pub items: Vec<post::Model>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Why a change to a post failed.
#[derive(Debug, thiserror::Error)]
pub enum PostsError {
    /// No post has this id (or it was deleted meanwhile).
    #[error("no such post")]
    NotFound,
    /// The caller did not write this post.
    #[error("only the author may change this post")]
    NotAuthor,
    /// The database failed.
    #[error("database error")]
    Database(#[from] DbErr),
}

// Microseconds: what PostgreSQL stores, so a cursor built from a returned post compares
// equal to the stored row on both databases.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Stores a new post written by `author`, committed together with the posts that arrive
/// meanwhile (see [`Inserter`]); returns once it is on disk.
#[tracing::instrument(skip_all, fields(author = %author))]
pub async fn create(inserter: &Inserter, author: &str, new: NewPost) -> Result<post::Model, DbErr> {
    let now = now();
    let model = post::Model {
        id: PostId::new().to_string(),
        author_id: author.to_owned(),
        title: new.title.into_inner(),
        body: new.body.into_inner(),
        created_at: now,
        updated_at: now,
    };
    inserter.insert(model.clone()).await?;
    Ok(model)
}

/// The post with this id, if any.
#[tracing::instrument(skip_all, fields(post_id = %id))]
pub async fn find(db: &DatabaseConnection, id: PostId) -> Result<Option<post::Model>, DbErr> {
    post::Entity::find_by_id(id.to_string()).one(db).await
}

/// One page of posts, newest first, optionally by one author, strictly after `after`.
///
/// Keyset pagination over `(created_at, id)`: a post inserted while a client pages is newer
/// than every cursor it holds, so pages never repeat or skip a post that existed when the
/// client started.
///
/// This is the hottest query of the service (`GET /posts/me` on every page view), so it
/// bypasses the ORM: one of four fixed statements, prepared once per connection and
/// decoded straight into models. On an SQLite file it runs first on `sync_readers`, on the
/// calling thread; whatever goes wrong there, the page is read through sqlx, as on
/// PostgreSQL (see [`crate::page_reads`]). BENCHMARKS.md has the figures.
#[tracing::instrument(level = "debug", skip_all, fields(author = ?author, limit = limit.get()))]
pub async fn list(
    db: &DatabaseConnection,
    sync_readers: Option<&SqliteReaders>,
    author: Option<&str>,
    limit: PageLimit,
    after: Option<Cursor>,
) -> Result<Page, DbErr> {
    // One extra row tells whether another page exists without a COUNT.
    let fetch = i64::try_from(limit.get() + 1).unwrap_or(i64::MAX);
    let sql = page_statement(author.is_some(), after.is_some());
    let after_id = after.map(|cursor| cursor.id().to_string());
    let params = page_params(
        author,
        after
            .map(|cursor| cursor.created_at())
            .zip(after_id.as_deref()),
        fetch,
    );
    let fast = sync_readers.and_then(|readers| page_reads::posts(readers, sql, &params));
    let mut items = match fast {
        Some(items) => items,
        None => sqlx_page(db, sql, &params).await?,
    };
    let has_more = items.len() as u64 > limit.get();
    items.truncate(limit.get() as usize);
    let next = match (has_more, items.last()) {
        (true, Some(last)) => {
            let id = PostId::parse(&last.id).ok_or_else(|| {
                DbErr::Custom(format!("stored post id {:?} is not a UUID", last.id))
            })?;
            Some(Cursor::after(last.created_at, id))
        }
        _ => None,
    };
    Ok(Page { items, next })
}

/// The rows of the page statement `sql`, through sqlx.
async fn sqlx_page(
    db: &DatabaseConnection,
    sql: &'static str,
    params: &[Param<'_>],
) -> Result<Vec<post::Model>, DbErr> {
    let rows = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let query = bind_page(sqlx::query_as(sql), params);
            query.fetch_all(db.get_sqlite_connection_pool()).await
        }
        DbBackend::Postgres => {
            let query = bind_page(sqlx::query_as(sql), params);
            query.fetch_all(db.get_postgres_connection_pool()).await
        }
        other => return Err(DbErr::Custom(format!("unsupported database {other:?}"))),
    }
    .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, author_id, title, body, created_at, updated_at)| post::Model {
                id,
                author_id,
                title,
                body,
                created_at,
                updated_at,
            },
        )
        .collect())
}

type PostRow = (String, String, String, String, DateTime<Utc>, DateTime<Utc>);

/// The page query for each combination of filters. `$n` placeholders work on both
/// databases (sqlx numbers them for SQLite too). The cursor condition is spelled out rather
/// than as a row-value comparison so that both databases plan it as a range scan on the
/// `(created_at, id)` indexes.
fn page_statement(by_author: bool, after_cursor: bool) -> &'static str {
    macro_rules! page {
        ($where:literal) => {
            concat!(
                "SELECT id, author_id, title, body, created_at, updated_at FROM posts",
                $where,
                " ORDER BY created_at DESC, id DESC LIMIT $1"
            )
        };
    }
    match (by_author, after_cursor) {
        (false, false) => page!(""),
        (true, false) => page!(" WHERE author_id = $2"),
        (false, true) => page!(" WHERE (created_at < $2 OR (created_at = $2 AND id < $3))"),
        (true, true) => {
            page!(" WHERE author_id = $4 AND (created_at < $2 OR (created_at = $2 AND id < $3))")
        }
    }
}

/// The values of [`page_statement`]'s `$1`, `$2`, …: the row count, then the cursor's time
/// and id, then the author. Both paths bind this one list.
fn page_params<'a>(
    author: Option<&'a str>,
    after: Option<(DateTime<Utc>, &'a str)>,
    fetch: i64,
) -> Vec<Param<'a>> {
    let mut params = vec![Param::Integer(fetch)];
    if let Some((created_at, id)) = after {
        params.extend([Param::Time(created_at), Param::Text(id)]);
    }
    if let Some(author) = author {
        params.push(Param::Text(author));
    }
    params
}

/// Binds `params` to a sqlx query, in order.
fn bind_page<'q, D>(
    mut query: sqlx::query::QueryAs<'q, D, PostRow, <D as sqlx::Database>::Arguments>,
    params: &[Param<'q>],
) -> sqlx::query::QueryAs<'q, D, PostRow, <D as sqlx::Database>::Arguments>
where
    D: sqlx::Database,
    i64: sqlx::Encode<'q, D> + sqlx::Type<D>,
    &'q str: sqlx::Encode<'q, D> + sqlx::Type<D>,
    DateTime<Utc>: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    for param in params {
        query = match *param {
            Param::Integer(value) => query.bind(value),
            Param::Text(value) => query.bind(value),
            Param::Time(value) => query.bind(value),
        };
    }
    query
}

/// Applies `changes` to the post if `caller` wrote it.
#[tracing::instrument(skip_all, fields(post_id = %id, caller = %caller))]
pub async fn update(
    db: &DatabaseConnection,
    id: PostId,
    caller: &str,
    changes: PostChanges,
) -> Result<post::Model, PostsError> {
    let mut post = authored_post(db, id, caller).await?;
    // Never before creation, even if the clock stepped back.
    post.updated_at = now().max(post.created_at);
    let mut update =
        post::Entity::update_many().col_expr(post::Column::UpdatedAt, Expr::value(post.updated_at));
    if let Some(title) = changes.title {
        post.title = title.into_inner();
        update = update.col_expr(post::Column::Title, Expr::value(post.title.clone()));
    }
    if let Some(body) = changes.body {
        post.body = body.into_inner();
        update = update.col_expr(post::Column::Body, Expr::value(post.body.clone()));
    }
    // The author condition is repeated in the statement so that the check and the write
    // cannot be separated by a concurrent delete.
    let result = update
        .filter(post::Column::Id.eq(post.id.clone()))
        .filter(post::Column::AuthorId.eq(caller))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(PostsError::NotFound);
    }
    Ok(post)
}

/// Deletes the post if `caller` wrote it.
#[tracing::instrument(skip_all, fields(post_id = %id, caller = %caller))]
pub async fn delete(db: &DatabaseConnection, id: PostId, caller: &str) -> Result<(), PostsError> {
    let post = authored_post(db, id, caller).await?;
    let result = post::Entity::delete_many()
        .filter(post::Column::Id.eq(post.id))
        .filter(post::Column::AuthorId.eq(caller))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(PostsError::NotFound);
    }
    Ok(())
}

async fn authored_post(
    db: &DatabaseConnection,
    id: PostId,
    caller: &str,
) -> Result<post::Model, PostsError> {
    let post = find(db, id).await?.ok_or(PostsError::NotFound)?;
    if post.author_id != caller {
        return Err(PostsError::NotAuthor);
    }
    Ok(post)
}
