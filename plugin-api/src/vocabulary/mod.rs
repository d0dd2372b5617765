//! The contact-centre vocabulary shared by the host and every channel: typed serde messages.
//! Only data lives here; how it crosses the boundary is `abi` and `codec`.

pub mod commands;
pub mod conversation;
pub mod events;
pub mod session;
pub mod types;
pub mod x_weighted;
