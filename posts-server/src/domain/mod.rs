//! Domain types: request input is parsed into these at the edge, so code that takes one
//! never re-checks it.

mod cursor;
mod post_body;
mod post_id;
mod post_title;
mod scope;

pub use cursor::{Cursor, CursorError, PageLimit, PageLimitError};
pub use post_body::{PostBody, PostBodyError};
pub use post_id::PostId;
pub use post_title::{PostTitle, PostTitleError};
pub use scope::Scope;
