//! Posts: queries and the authorship rule (only the author may change or delete a post).

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::domain::{Cursor, PageLimit, PostBody, PostId, PostTitle};
use crate::entities::post;

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

/// Stores a new post written by `author`.
#[tracing::instrument(skip_all, fields(author = %author))]
pub async fn create(
    db: &DatabaseConnection,
    author: &str,
    new: NewPost,
) -> Result<post::Model, DbErr> {
    let now = now();
    let model = post::Model {
        id: PostId::new().to_string(),
        author_id: author.to_owned(),
        title: new.title.into_inner(),
        body: new.body.into_inner(),
        created_at: now,
        updated_at: now,
    };
    post::Entity::insert(post::ActiveModel {
        id: Set(model.id.clone()),
        author_id: Set(model.author_id.clone()),
        title: Set(model.title.clone()),
        body: Set(model.body.clone()),
        created_at: Set(model.created_at),
        updated_at: Set(model.updated_at),
    })
    .exec_without_returning(db)
    .await?;
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
#[tracing::instrument(skip_all, fields(author = ?author, limit = limit.get()))]
pub async fn list(
    db: &DatabaseConnection,
    author: Option<&str>,
    limit: PageLimit,
    after: Option<Cursor>,
) -> Result<Page, DbErr> {
    let mut query = post::Entity::find();
    if let Some(author) = author {
        query = query.filter(post::Column::AuthorId.eq(author));
    }
    if let Some(cursor) = after {
        // Spelled out rather than as a row-value comparison so that both databases plan
        // it as a range scan on the (created_at, id) indexes.
        query = query.filter(
            Condition::any()
                .add(post::Column::CreatedAt.lt(cursor.created_at()))
                .add(
                    Condition::all()
                        .add(post::Column::CreatedAt.eq(cursor.created_at()))
                        .add(post::Column::Id.lt(cursor.id().to_string())),
                ),
        );
    }
    // One extra row tells whether another page exists without a COUNT.
    let mut items = query
        .order_by_desc(post::Column::CreatedAt)
        .order_by_desc(post::Column::Id)
        .limit(limit.get() + 1)
        .all(db)
        .await?;
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
