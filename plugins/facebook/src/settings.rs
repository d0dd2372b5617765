//! The Messenger channel's settings: the plugin's section of the admin configuration
//! (`[plugins.settings."agentdesk.facebook"]`). Values, defaults and secret names; no I/O.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Settings from `[plugins.settings."agentdesk.facebook"]`; every key but `page_id` and `app_id`
/// has a default. Secrets are named here and read from the environment or `secrets_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The address the webhook listens on. Loopback: a reverse proxy terminates TLS in front.
    pub bind: String,
    /// The webhook's TCP port; 0 picks a free one (tests), reported in `endpoint.json`.
    pub port: u16,
    /// The Facebook Page's id.
    pub page_id: String,
    /// The Meta app's id: echoes carrying it are our own sends.
    pub app_id: String,
    /// The Graph API base URL, with its version.
    pub graph_url: String,
    /// A `NAME=value` file with the secrets below; the environment is used for names it lacks.
    pub secrets_file: Option<PathBuf>,
    /// The variable holding the app secret (webhook signatures).
    pub app_secret_var: String,
    /// The variable holding the Page access token (Send API).
    pub page_token_var: String,
    /// The variable holding the verify token of the subscription handshake.
    pub verify_token_var: String,
    /// A PEM file of certificate authorities for the Graph API; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// The queue new conversations are offered to.
    pub queue: String,
    /// Whether a human agent may reply between 24 hours and 7 days after the customer's last
    /// message, with the `HUMAN_AGENT` tag. Meta must have granted the Page this permission.
    pub human_agent_tag: bool,
    /// The largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a Send API call may take before its outcome counts as unknown.
    pub send_timeout_ms: u64,
    /// After an unknown outcome, how long to wait for the message's echo before telling the agent.
    pub echo_wait_ms: u64,
    /// Send attempts for a message the platform did not take (rate limit, no connection).
    pub send_attempts: u32,
    /// The first wait between attempts; it doubles each time.
    pub retry_first_ms: u64,
    /// Send API calls per second (Meta allows about 300 per Page for text).
    pub sends_per_second: f64,
    /// The largest reply, in characters (Messenger allows 2,000).
    pub max_message_chars: usize,
    /// Worker threads of the plugin's own runtime.
    pub worker_threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1".into(),
            port: 8790,
            page_id: String::new(),
            app_id: String::new(),
            graph_url: "https://graph.facebook.com/v21.0".into(),
            secrets_file: None,
            app_secret_var: "FACEBOOK_APP_SECRET".into(),
            page_token_var: "FACEBOOK_PAGE_TOKEN".into(),
            verify_token_var: "FACEBOOK_VERIFY_TOKEN".into(),
            ca_file: None,
            queue: "default".into(),
            human_agent_tag: false,
            max_body_bytes: 1024 * 1024,
            send_timeout_ms: 10_000,
            echo_wait_ms: 20_000,
            send_attempts: 5,
            retry_first_ms: 1_000,
            sends_per_second: 250.0,
            max_message_chars: 2_000,
            worker_threads: 2,
        }
    }
}

impl Settings {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.page_id.is_empty() {
            return Err("`page_id` is required".into());
        }
        if self.app_id.is_empty() {
            return Err("`app_id` is required".into());
        }
        if !(self.graph_url.starts_with("https://") || self.graph_url.starts_with("http://")) {
            return Err(format!("`graph_url` is not a URL: {}", self.graph_url));
        }
        if self.send_attempts == 0 || self.sends_per_second <= 0.0 {
            return Err("`send_attempts` and `sends_per_second` must be positive".into());
        }
        Ok(())
    }
    /// See `send_timeout_ms`.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
    /// See `echo_wait_ms`.
    pub fn echo_wait(&self) -> Duration {
        Duration::from_millis(self.echo_wait_ms)
    }
    /// See `retry_first_ms`.
    pub fn retry_first(&self) -> Duration {
        Duration::from_millis(self.retry_first_ms)
    }
}
