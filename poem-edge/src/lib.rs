//! What every poem server of this workspace puts between the network and its handlers.
//!
//! Both servers had a copy of each piece; a fix to one (the `100 Continue` case of the
//! acceptor, say) must reach both, so they live here once.

#![warn(missing_docs)]

pub mod allow;
pub mod listener;
pub mod text;

pub use allow::AllowHeader;
pub use listener::{HeaderTimeoutAcceptor, HeaderTimeoutIo};
pub use text::Text;
