//! Validated domain types: request input is parsed into these at the edge, so code that
//! holds one never checks it again.

mod email;
mod full_name;
mod password;
pub mod scope;

pub use email::Email;
pub use full_name::FullName;
pub use password::Password;
pub use scope::{ScopeError, ScopeSet};
