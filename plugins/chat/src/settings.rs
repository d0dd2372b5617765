//! The web chat's settings: the plugin's section of the admin configuration
//! (`[plugins.settings."agentdesk.chat"]`). Values and defaults only; no I/O.

use serde::Deserialize;
use std::time::Duration;

/// Settings from `[plugins.settings."agentdesk.chat"]`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The address to listen on. Loopback by default: a reverse proxy terminates TLS in front.
    pub bind: String,
    /// The TCP port; 0 picks a free one (tests), reported in `endpoint.json`.
    pub port: u16,
    /// Origins (`scheme://host[:port]`) whose pages may open the chat's WebSocket. Empty: only
    /// the origin the widget itself is served from. `"*"` allows any (development only).
    pub allowed_origins: Vec<String>,
    /// Peer addresses of reverse proxies whose `X-Forwarded-For`, `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` headers are believed. Empty: none are.
    pub trusted_proxies: Vec<String>,
    /// The queue new chats are offered to.
    pub queue: String,
    /// What the customer reads when the chat starts (before an agent joins). Empty: nothing.
    pub greeting: String,
    /// The page title and widget heading.
    pub title: String,
    /// The largest message a customer may send, in bytes of UTF-8.
    pub max_message_bytes: usize,
    /// Messages (including typing notices) per second one connection may send, on average.
    pub messages_per_second: u32,
    /// How many messages above the average a connection may send in a burst.
    pub message_burst: u32,
    /// Open connections per source address (raise it for a load test from loopback).
    pub max_connections_per_address: u32,
    /// Open connections in total.
    pub max_connections: u32,
    /// An active chat with no message for this long gets a warning.
    pub idle_warning_secs: u64,
    /// After the warning, the chat closes when nobody writes for this long.
    pub idle_close_secs: u64,
    /// How long a customer whose connection dropped has to come back before the chat ends (or, if
    /// still queued, is abandoned).
    pub reconnect_grace_secs: u64,
    /// Worker threads of the plugin's own runtime.
    pub worker_threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1".into(),
            port: 8780,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            queue: "default".into(),
            greeting: "Thanks for contacting us. An agent will be with you shortly.".into(),
            title: "Chat with us".into(),
            max_message_bytes: 4000,
            messages_per_second: 5,
            message_burst: 10,
            max_connections_per_address: 20,
            max_connections: 5000,
            idle_warning_secs: 300,
            idle_close_secs: 120,
            reconnect_grace_secs: 60,
            worker_threads: 2,
        }
    }
}

impl Settings {
    /// Who may open the WebSocket (see `agentdesk_web::http`).
    pub fn origins(&self) -> agentdesk_web::http::Origins {
        agentdesk_web::http::Origins {
            allowed_origins: self.allowed_origins.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }

    /// Refuses values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes == 0 {
            return Err("`max_message_bytes` must be at least 1".into());
        }
        if self.messages_per_second == 0 {
            return Err("`messages_per_second` must be at least 1".into());
        }
        if self.max_connections_per_address == 0 || self.max_connections == 0 {
            return Err("connection limits must be at least 1".into());
        }
        if self.idle_warning_secs == 0 || self.idle_close_secs == 0 {
            return Err("idle timeouts must be at least 1 second".into());
        }
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`bind` is not an IP address: `{}`", self.bind));
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(format!(
                    "`allowed_origins`: `{origin}` is not `*` nor an http(s) origin"
                ));
            }
        }
        Ok(())
    }

    /// The idle warning delay.
    pub fn idle_warning(&self) -> Duration {
        Duration::from_secs(self.idle_warning_secs)
    }

    /// The delay from the warning to the close.
    pub fn idle_close(&self) -> Duration {
        Duration::from_secs(self.idle_close_secs)
    }

    /// The reconnection grace.
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(self.reconnect_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_and_validate() {
        let s = Settings::default();
        assert_eq!(s.bind, "127.0.0.1");
        assert_eq!(s.port, 8780);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn a_bad_origin_or_zero_limit_is_refused_by_name() {
        let s = Settings {
            allowed_origins: vec!["example.com".into()],
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("allowed_origins"));
        let s = Settings {
            messages_per_second: 0,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("messages_per_second"));
    }
}
