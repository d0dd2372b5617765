//! How a process opens its NATS connection: desktops, `agentdesk team` and the hub authenticate
//! the same way (user and password or an nkey seed; TLS required when a CA is given) and give the
//! servers the same time to answer.

use std::path::Path;
use std::time::Duration;

/// How long the first connection may take before the caller is told the servers did not answer.
pub const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// The credentials and trust of one NATS connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatsLogin<'a> {
    /// NATS user and password, if the server asks for them.
    pub user_password: Option<&'a (String, String)>,
    /// An nkey seed (`SU…`), if the server authenticates by nkey.
    pub nkey_seed: Option<&'a str>,
    /// The CA certificate (PEM) the server's certificate must chain to: TLS is then required.
    pub ca_file: Option<&'a Path>,
}

/// Connects to `url` as `name` (shown in the server's connection list), retrying the first
/// connection until [`FIRST_CONNECT`] has passed; replies come under `inbox_prefix` when given.
/// The error says why, for the caller's own error type.
pub fn connect(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    url: &str,
    login: NatsLogin<'_>,
    inbox_prefix: Option<&str>,
) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    if let Some((user, password)) = login.user_password {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(seed) = login.nkey_seed {
        options = options.nkey(seed.to_owned());
    }
    if let Some(ca) = login.ca_file {
        options = options
            .add_root_certificates(ca.to_path_buf())
            .require_tls(true);
    }
    let url = url.to_owned();
    runtime
        .block_on(async { tokio::time::timeout(FIRST_CONNECT, options.connect(url)).await })
        .map_err(|_| format!("no answer within {} s", FIRST_CONNECT.as_secs()))?
        .map_err(|e| e.to_string())
}
