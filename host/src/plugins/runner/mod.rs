//! Process isolation: a plugin the admin marks `isolation = "process"` runs in a child process,
//! `agentdesk plugin-runner`, that loads its library and speaks the plugin envelopes in frames.
//! `frame` holds the protocol, `child` the runner's own side, `parent` the host's side.

pub mod child;
pub mod frame;
pub mod parent;

pub use child::{SUBCOMMAND, main as run_plugin_runner};
pub use parent::{RemotePlugin, Runner, RunnerReport, RunnerSpec};
