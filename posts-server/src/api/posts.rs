//! `/posts`: thin handlers that parse input into domain types and call `crate::posts`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_edge::Text;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::auth::{Caller, ReadPosts, WritePosts};
use crate::domain::{Cursor, PageLimit, PostBody, PostId, PostTitle, Scope};
use crate::entities::post;
use crate::error::ApiError;
use crate::posts::{self, NewPost, PostChanges};
use crate::state::AppState;

/// A post.
#[derive(Debug, Object)]
#[oai(rename = "Post")]
pub struct PostResource {
    /// The post's id (a UUID).
    id: String,
    /// Who wrote it: the `sub` of the token that created it.
    author_id: String,
    /// The title.
    title: String,
    /// The body.
    body: String,
    /// When it was created (RFC 3339, UTC).
    created_at: DateTime<Utc>,
    /// When it last changed (RFC 3339, UTC).
    updated_at: DateTime<Utc>,
}

impl From<post::Model> for PostResource {
    fn from(model: post::Model) -> Self {
        Self {
            id: model.id,
            author_id: model.author_id,
            title: model.title,
            body: model.body,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A new post.
#[derive(Debug, Object)]
#[oai(rename = "NewPost", deny_unknown_fields)]
pub struct NewPostRequest {
    /// 1–200 characters, no control characters.
    title: Text,
    /// 1–100,000 characters.
    body: Text,
}

/// A change to a post: a title, a body, or both.
#[derive(Debug, Object)]
#[oai(rename = "PostChanges", deny_unknown_fields)]
pub struct PostChangesRequest {
    /// 1–200 characters, no control characters.
    title: Option<Text>,
    /// 1–100,000 characters.
    body: Option<Text>,
}

/// One page of posts, newest first.
#[derive(Debug, Object)]
pub struct PostPage {
    /// The posts of this page.
    items: Vec<PostResource>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Answer to a create.
#[derive(Debug, ApiResponse)]
pub enum CreatedPost {
    /// The post was stored.
    #[oai(status = 201)]
    Created(
        Json<PostResource>,
        /// Where the new post lives.
        #[oai(header = "Location")]
        String,
    ),
}

/// Answer to a delete.
#[derive(Debug, ApiResponse)]
pub enum DeletedPost {
    /// The post is gone.
    #[oai(status = 204)]
    Deleted,
}

/// The `/posts` routes.
pub struct PostsApi;

#[OpenApi(prefix_path = "/posts", tag = "ApiTags::Posts")]
impl PostsApi {
    /// Create a post
    ///
    /// The caller becomes its author.
    #[oai(path = "/", method = "post", operation_id = "create_post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::PostsWrite")] caller: Caller<WritePosts>,
        body: Json<NewPostRequest>,
    ) -> Result<CreatedPost, ApiError> {
        let Json(NewPostRequest { title, body }) = body;
        let new = NewPost {
            title: PostTitle::parse(title.0).map_err(|e| ApiError::unprocessable(e.to_string()))?,
            body: PostBody::parse(body.0).map_err(|e| ApiError::unprocessable(e.to_string()))?,
        };
        let post = posts::create(&state.writer, caller.subject(), new).await?;
        let location = format!("/posts/{}", post.id);
        Ok(CreatedPost::Created(Json(post.into()), location))
    }

    /// List posts
    ///
    /// Newest first. Follow `next_cursor` for the next page; `author` keeps only the posts
    /// of one author.
    #[oai(path = "/", method = "get", operation_id = "list_posts")]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::PostsRead")] _caller: Caller<ReadPosts>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only posts by this author id.
        #[oai(validator(min_length = 1, max_length = 255))]
        author: Query<Option<String>>,
    ) -> Result<Json<PostPage>, ApiError> {
        page(&state, author.0.as_deref(), limit.0, cursor.0.as_deref()).await
    }

    /// List my posts
    ///
    /// The caller's own posts, newest first, paged like `GET /posts`.
    #[oai(path = "/me", method = "get", operation_id = "list_my_posts")]
    async fn list_mine(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::PostsRead")] caller: Caller<ReadPosts>,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<PostPage>, ApiError> {
        page(&state, Some(caller.subject()), limit.0, cursor.0.as_deref()).await
    }

    /// Get a post
    #[oai(path = "/:id", method = "get", operation_id = "get_post")]
    async fn get(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::PostsRead")] _caller: Caller<ReadPosts>,
        /// The post's id.
        id: Path<String>,
    ) -> Result<Json<PostResource>, ApiError> {
        let id = PostId::parse(&id.0).ok_or_else(ApiError::post_not_found)?;
        let post = posts::find(&state.db, id)
            .await?
            .ok_or_else(ApiError::post_not_found)?;
        Ok(Json(post.into()))
    }

    /// Change a post
    ///
    /// Send a title, a body, or both. Only the author may change a post.
    #[oai(path = "/:id", method = "patch", operation_id = "update_post")]
    async fn update(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::PostsWrite")] caller: Caller<WritePosts>,
        /// The post's id.
        id: Path<String>,
        body: Json<PostChangesRequest>,
    ) -> Result<Json<PostResource>, ApiError> {
        let id = PostId::parse(&id.0).ok_or_else(ApiError::post_not_found)?;
        let Json(PostChangesRequest { title, body }) = body;
        let title = title
            .map(|text| PostTitle::parse(text.0))
            .transpose()
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
        let body = body
            .map(|text| PostBody::parse(text.0))
            .transpose()
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
        let changes =
            PostChanges::new(title, body).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        let post = posts::update(&state.writer, id, caller.subject(), changes).await?;
        Ok(Json(post.into()))
    }

    /// Delete a post
    ///
    /// Only the author may delete a post.
    #[oai(path = "/:id", method = "delete", operation_id = "delete_post")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::PostsWrite")] caller: Caller<WritePosts>,
        /// The post's id.
        id: Path<String>,
    ) -> Result<DeletedPost, ApiError> {
        let id = PostId::parse(&id.0).ok_or_else(ApiError::post_not_found)?;
        posts::delete(&state.writer, id, caller.subject()).await?;
        Ok(DeletedPost::Deleted)
    }
}

async fn page(
    state: &AppState,
    author: Option<&str>,
    limit: Option<u64>,
    cursor: Option<&str>,
) -> Result<Json<PostPage>, ApiError> {
    let limit = PageLimit::parse(limit).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let after = cursor
        .map(Cursor::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // No author id holds a NUL (ids are token subjects), and PostgreSQL refuses NUL in
    // text parameters: such a filter simply matches nothing.
    if author.is_some_and(|a| a.contains('\0')) {
        return Ok(Json(PostPage {
            items: Vec::new(),
            next_cursor: None,
        }));
    }
    let page = posts::list(&state.db, author, limit, after).await?;
    Ok(Json(PostPage {
        items: page.items.into_iter().map(PostResource::from).collect(),
        next_cursor: page.next.map(|cursor| cursor.encode()),
    }))
}
