//! Process isolation: a plugin the admin marks `isolation = "process"` runs in a child process,
//! `agentdesk plugin-runner`, that loads its library and speaks the plugin envelopes in frames.
//! `frame` holds the protocol; `keeper` and `worker` the runner's own two processes; `connection`
//! one runner process as the host sees it and `parent` the plugin across restarts.

pub mod connection;
pub mod frame;
pub mod keeper;
pub mod parent;
pub mod worker;

pub use keeper::{SUBCOMMAND, main as run_plugin_runner};
pub use parent::{RemotePlugin, Runner, RunnerReport, RunnerSpec};
