//! sea-orm entities of the posts database.

pub mod post;
