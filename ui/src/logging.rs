//! The log of every agentdesk process (desk, hub, headless commands): stderr at `AGENTDESK_LOG`'s
//! levels, except the NATS client's trace level.

/// Logs to stderr at `AGENTDESK_LOG`'s levels, except the NATS client's trace level: it writes
/// every message body, internal IM text among them, and nothing may log IM text (tests/im.rs
/// searches a hub's trace log for it).
pub fn init(default_level: &str) {
    use tracing_subscriber::prelude::*;
    let levels = tracing_subscriber::EnvFilter::try_from_env("AGENTDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let no_bodies = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.target().starts_with("async_nats") && *meta.level() == tracing::Level::TRACE)
    });
    let out = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(no_bodies);
    tracing_subscriber::registry().with(levels).with(out).init();
}
