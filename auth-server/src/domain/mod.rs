//! Validated domain types: request input is parsed into these at the edge, so code that
//! holds one never checks it again.

mod code_challenge;
mod email;
mod full_name;
mod password;
pub mod prompt;
mod redirect_uri;
pub mod scope;

pub use code_challenge::CodeChallenge;
pub use email::Email;
pub use full_name::FullName;
pub use password::Password;
pub use prompt::{Prompt, parse_max_age};
pub use redirect_uri::RedirectUri;
pub use scope::{ScopeError, ScopeSet};
