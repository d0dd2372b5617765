//! The contact-centre core: agents with a state per channel, interactions, routing, after-call
//! work, time-in-state. Pure and synchronous — no I/O, no clock, no plugin calls: callers pass the
//! time in and carry out the journal events it returns.

mod capability;
pub mod commands;
pub mod engine;
pub mod events;
#[cfg(test)]
mod golden;
mod index;
pub mod model;
#[cfg(test)]
mod never_saved_tests;
pub mod policy;
#[cfg(test)]
mod proptests;
mod reoffer;
#[cfg(test)]
mod roster_tests;
pub mod stats;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use commands::{AgentCommand, CoreError};
pub use engine::{Core, RosterChange};
pub use events::{CoreEvent, Stamped};
pub use model::{ChannelState, InteractionKey, InteractionState, Millis, NextState};
pub use policy::{DISCONNECTED, Policy};
