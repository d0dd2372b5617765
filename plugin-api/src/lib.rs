//! # plugin-api: the contract between the agentdesk host and its channel plugins
//!
//! A channel plugin is a `cdylib` that depends on this crate (and on `abi_stable = "=0.11.3"`),
//! implements [`ChannelPlugin`] and exports it with [`export_plugin!`]. The host loads it with
//! abi_stable, which refuses a library built against another major version of this crate or with
//! a different layout of the types below, before any of its code is called.
//!
//! ## The compatibility promise (1.x)
//! - The typed ABI surface — [`PluginRoot`], the [`Plugin`] and [`HostServices`] traits,
//!   [`Envelope`], [`PluginError`], [`ErrorCode`], [`LogLevel`] — is frozen for all of 1.x.
//! - A plugin built against 1.0 keeps loading and working in every later 1.x host. A plugin built
//!   against a later 1.x loads in an earlier 1.x host, with the features that host lacks off.
//! - The contact-centre vocabulary ([`Command`], [`Event`], [`Reply`] and their payloads) grows
//!   as data: new message kinds and new optional fields. A kind a receiver does not know decodes
//!   to `Unknown` and is answered "unsupported" ([`ErrorCode::UNSUPPORTED`]), never a crash.
//! - At `start` both sides say which kinds they know ([`HostHello`], [`PluginHello`]).
//!
//! ## Rules for plugin code
//! - Panics are caught at every entry point and become [`ErrorCode::PANICKED`]; the host then
//!   quarantines the plugin. Panics on the plugin's own threads are the plugin's to handle.
//! - Every call has a deadline: never block in `handle`; do I/O on your own threads.
//! - A plugin cannot draw UI: it describes media, actions and case data, and the host renders.

#![deny(missing_docs)]

pub mod abi;
pub mod codec;
pub mod emit;
pub mod plugin;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vocabulary;

pub use abi::{
    Envelope, ErrorCode, HostServices, HostServices_TO, HostServicesBox, LogLevel, Plugin,
    Plugin_TO, PluginBox, PluginError, PluginRoot, PluginRoot_Ref,
};
pub use codec::{CodecError, Message, UnknownMessage};
pub use emit::OrderedEmitter;
pub use plugin::{ChannelPlugin, Host, unsupported};
pub use vocabulary::commands::*;
pub use vocabulary::conversation::*;
pub use vocabulary::events::*;
pub use vocabulary::session::*;
pub use vocabulary::types::*;

/// Re-exported so the host and plugins use the one abi_stable this crate was built with.
pub use abi_stable;

/// The plugin-api version this code was compiled from (the plugin ABI version).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
