//! The plugin runtime: finding, verifying, opening and supervising channel plugins.
//! No contact-centre rules here; the core decides what to send and what events mean.

pub mod actor;
pub mod discovery;
pub mod host_services;
pub mod loader;
pub mod manifest;
pub mod package;
pub mod policy;
pub mod report;
pub mod runner;
pub mod settings_schema;
pub mod supervisor;

pub use supervisor::{
    NotFound, PluginEvent, PluginHost, PluginReport, PluginStatus, SendError, StartMode,
};
