//! The co-browse channel's settings: the plugin's section of the admin configuration
//! (`[plugins.settings."agentdesk.cobrowse"]`). Values and defaults only; no I/O.

use serde::Deserialize;
use std::time::Duration;

/// Settings from `[plugins.settings."agentdesk.cobrowse"]`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The address to listen on. Loopback by default: a reverse proxy terminates TLS in front.
    pub bind: String,
    /// The TCP port; 0 picks a free one (tests), reported in `endpoint.json`.
    pub port: u16,
    /// The address agents' browsers reach this server at, for the viewer links (in a team: the
    /// hub's public address, never 127.0.0.1). Empty: `http://<bind>:<port>`.
    pub public_url: String,
    /// Origins (`scheme://host[:port]`) of the company's pages that may start a session (the
    /// pages carrying the co-browse script). `"*"` allows any (development only).
    pub allowed_origins: Vec<String>,
    /// Peer addresses of reverse proxies whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// How long a session code can be used to start co-browsing.
    pub code_ttl_secs: u64,
    /// How long a viewer link can be opened (once).
    pub view_link_ttl_secs: u64,
    /// How long a customer whose connection dropped (a reload, another page of the site) has to
    /// come back before the session ends.
    pub reconnect_grace_secs: u64,
    /// The largest message a customer page may send (a full snapshot of a big page), in bytes.
    pub max_message_bytes: usize,
    /// Messages per second one connection may send, on average (the script sends a batch of
    /// rrweb events at most every 50 ms).
    pub messages_per_second: u32,
    /// How many messages above the average a connection may send in a burst.
    pub message_burst: u32,
    /// Open connections per source address.
    pub max_connections_per_address: u32,
    /// Open connections in total.
    pub max_connections: u32,
    /// Worker threads of the plugin's own runtime.
    pub worker_threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1".into(),
            port: 8792,
            public_url: String::new(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            code_ttl_secs: 300,
            view_link_ttl_secs: 120,
            reconnect_grace_secs: 30,
            max_message_bytes: 4 * 1024 * 1024,
            messages_per_second: 40,
            message_burst: 80,
            max_connections_per_address: 20,
            max_connections: 2000,
            worker_threads: 2,
        }
    }
}

impl Settings {
    /// Refuses values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes < 1024 {
            return Err("`max_message_bytes` must be at least 1024".into());
        }
        if self.messages_per_second == 0 {
            return Err("`messages_per_second` must be at least 1".into());
        }
        if self.max_connections_per_address == 0 || self.max_connections == 0 {
            return Err("connection limits must be at least 1".into());
        }
        if self.code_ttl_secs == 0 || self.view_link_ttl_secs == 0 {
            return Err("`code_ttl_secs` and `view_link_ttl_secs` must be at least 1".into());
        }
        let scheme_ok = ["http://", "https://"]
            .iter()
            .any(|p| self.public_url.starts_with(p));
        if !self.public_url.is_empty() && !scheme_ok {
            return Err("`public_url` must start with http:// or https://".into());
        }
        if self.worker_threads == 0 {
            return Err("`worker_threads` must be at least 1".into());
        }
        Ok(())
    }

    /// How long a code is good for.
    pub fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.code_ttl_secs)
    }

    /// How long a viewer link is good for.
    pub fn view_link_ttl(&self) -> Duration {
        Duration::from_secs(self.view_link_ttl_secs)
    }

    /// How long a dropped customer has to come back.
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(self.reconnect_grace_secs)
    }

    /// Who may open the customer's WebSocket.
    pub fn customer_origins(&self) -> agentdesk_web::http::Origins {
        agentdesk_web::http::Origins {
            allowed_origins: self.allowed_origins.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }

    /// Who may open the viewer's WebSocket: only the viewer page, served from here.
    pub fn viewer_origins(&self) -> agentdesk_web::http::Origins {
        agentdesk_web::http::Origins {
            allowed_origins: Vec::new(),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}
