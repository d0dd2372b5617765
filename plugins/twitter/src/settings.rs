//! The X channel's settings: the plugin's section of the admin configuration
//! (`[plugins.settings."agentdesk.twitter"]`). Values, defaults and secret names; no I/O.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Settings from `[plugins.settings."agentdesk.twitter"]`; every key but `account_id` has a
/// default. Secrets are named here and read from the environment or `secrets_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The address the webhook listens on. Loopback: a reverse proxy terminates TLS in front.
    pub bind: String,
    /// The webhook's TCP port; 0 picks a free one (tests), reported in `endpoint.json`.
    pub port: u16,
    /// The numeric user id of the company's X account (`for_user_id`).
    pub account_id: String,
    /// The X API base URL.
    pub api_url: String,
    /// A `NAME=value` file with the secrets below; the environment is used for names it lacks.
    pub secrets_file: Option<PathBuf>,
    /// The variable holding the app's API key (OAuth consumer key).
    pub consumer_key_var: String,
    /// The variable holding the API key secret (OAuth, CRC and webhook signatures).
    pub consumer_secret_var: String,
    /// The variable holding the account's access token.
    pub access_token_var: String,
    /// The variable holding the account's access token secret.
    pub access_token_secret_var: String,
    /// A PEM file of certificate authorities for the X API; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// The queue new conversations are offered to.
    pub queue: String,
    /// The largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long an API call may take before its outcome counts as unknown.
    pub send_timeout_ms: u64,
    /// Attempts for a reply X did not take (429, no connection).
    pub send_attempts: u32,
    /// The first wait between attempts without `x-rate-limit-reset`; it doubles.
    pub retry_first_ms: u64,
    /// The longest wait for a rate limit to reset before the agent is told instead.
    pub max_rate_limit_wait_secs: u64,
    /// Worker threads of the plugin's own runtime.
    pub worker_threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1".into(),
            port: 8791,
            account_id: String::new(),
            api_url: "https://api.x.com".into(),
            secrets_file: None,
            consumer_key_var: "X_CONSUMER_KEY".into(),
            consumer_secret_var: "X_CONSUMER_SECRET".into(),
            access_token_var: "X_ACCESS_TOKEN".into(),
            access_token_secret_var: "X_ACCESS_TOKEN_SECRET".into(),
            ca_file: None,
            queue: "default".into(),
            max_body_bytes: 1024 * 1024,
            send_timeout_ms: 10_000,
            send_attempts: 4,
            retry_first_ms: 1_000,
            max_rate_limit_wait_secs: 900,
            worker_threads: 2,
        }
    }
}

impl Settings {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.account_id.is_empty() {
            return Err("`account_id` is required".into());
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err(format!("`api_url` is not a URL: {}", self.api_url));
        }
        if self.send_attempts == 0 {
            return Err("`send_attempts` must be positive".into());
        }
        Ok(())
    }
    /// See `send_timeout_ms`.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}
