//! `agentdesk-test-host CONFIG CHANNEL...` (or `agentdesk-test-host plugin-runner ...`, the runner
//! of isolated plugins in tests): the plugins and the core of a configuration in a
//! process of their own, as the desktop runs them but without a window, for tests that kill the
//! process (`kill -9`) and start it again. Prints `ready` once the plugins and the core run, and
//! stops them cleanly when its standard input closes.

use agentdesk_host::core::Policy;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use std::io::{Read, Write};
use std::sync::Arc;

fn main() {
    // It is the plugin runner of its own isolated plugins too, as `agentdesk` is.
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().map(String::as_str) == Some(agentdesk_host::plugins::runner::SUBCOMMAND) {
        std::process::exit(agentdesk_host::plugins::runner::run_plugin_runner(
            &all[1..],
        ));
    }
    let mut args = std::env::args().skip(1);
    let config = args
        .next()
        .expect("usage: agentdesk-test-host CONFIG CHANNEL...");
    let channels: Vec<String> = args.collect();
    let config = AdminConfig::load(std::path::Path::new(&config)).expect("config");
    let policy = Policy::from_config(&config, &channels);
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    let service = agentdesk_tests::start_core(&config.data_dir(), policy, Some(plugins.clone()));
    println!("ready {}", plugins.running_ids().join(","));
    std::io::stdout().flush().expect("stdout");
    let mut rest = Vec::new();
    // Blocks until the test closes our standard input (or dies).
    if let Err(e) = std::io::stdin().read_to_end(&mut rest) {
        eprintln!("stdin: {e}");
    }
    service.stop();
    match Arc::try_unwrap(plugins) {
        Ok(mut plugins) => plugins.shutdown(),
        Err(_) => eprintln!("the plugin host is still shared; not shut down"),
    }
}
