//! # agentdesk-host: the core of agentdesk
//!
//! Headless and usable without the shell: the admin configuration ([`config`]) and the plugin
//! runtime ([`plugins`]) that discovers, verifies, loads and supervises channel plugins.

pub mod config;
pub mod contacts;
pub mod core;
#[cfg(test)]
mod kill9;
pub mod plugins;
pub mod runtime;
pub mod scenario;
pub mod service;
pub mod storage;

pub use config::AdminConfig;
pub use plugins::{NotFound, PluginHost, PluginReport, PluginStatus, StartMode};
