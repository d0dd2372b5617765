//! # agentdesk-ui: the desktop shell and the `agentdesk` command
//!
//! Rendering and input only: the shell shows what the host reports and sends the host commands;
//! it holds no rules of its own.

pub mod plugin_table;
pub mod shell;
