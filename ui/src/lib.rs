//! # agentdesk-ui: the desktop shell and the `agentdesk` command
//!
//! Rendering and input only: the shell shows what the core reports and sends the core commands
//! through its client interface; it holds no rules of its own.

pub mod app;
pub mod desk;
pub mod logging;
pub mod notify;
pub mod plugin_table;
pub mod ring;
pub mod signals;
pub mod team_table;
