//! The email channel's settings: the plugin's section of the admin configuration
//! (`[plugins.settings."agentdesk.email"]`). Values, defaults and checks only; no I/O.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How a connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Plain TCP (a server on the same machine or a trusted network only).
    None,
    /// TLS from the first byte (IMAPS on 993, SMTPS on 465).
    Tls,
    /// Plain TCP upgraded with STARTTLS before logging in (IMAP 143, submission 587).
    Starttls,
}

/// One watched mailbox folder and the queue its messages are offered to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    /// The IMAP folder name, e.g. `INBOX`.
    pub name: String,
    /// The queue new messages in it are offered to.
    #[serde(default = "default_queue")]
    pub queue: String,
}

fn default_queue() -> String {
    "default".into()
}

/// Settings from `[plugins.settings."agentdesk.email"]`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The IMAP server.
    pub imap_host: String,
    /// Its port.
    pub imap_port: u16,
    /// How the IMAP connection is protected.
    pub imap_security: Security,
    /// The SMTP server replies are sent through.
    pub smtp_host: String,
    /// Its port.
    pub smtp_port: u16,
    /// How the SMTP connection is protected.
    pub smtp_security: Security,
    /// A PEM file of the certificate authorities to trust for TLS; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// The IMAP (and SMTP) login.
    pub account: String,
    /// The environment variable holding the password (never the password itself).
    pub password_env: String,
    /// Log in to SMTP too, when the server offers AUTH.
    pub smtp_auth: bool,
    /// The address replies are sent from.
    pub address: String,
    /// The name shown with it.
    pub display_name: String,
    /// The watched folders.
    pub folders: Vec<Folder>,
    /// Where a copy of each sent message is appended (created when missing).
    pub sent_folder: String,
    /// Seconds between checks when the server does not offer IDLE (and the longest IDLE).
    pub poll_interval_secs: u64,
    /// Use IDLE when the server offers it.
    pub idle: bool,
    /// Seconds between attempts to reach a server that went away.
    pub reconnect_secs: u64,
    /// Added under every reply, forward and new message.
    pub signature: String,
    /// Where auto-replies, bounces and `Auto-Submitted` messages go; empty: they are filed
    /// (recorded, never offered).
    pub automatic_queue: String,
    /// Messages fetched per IMAP command.
    pub fetch_batch: usize,
    /// Worker threads of the plugin's own runtime.
    pub worker_threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            imap_host: "127.0.0.1".into(),
            imap_port: 143,
            imap_security: Security::None,
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_security: Security::None,
            ca_file: None,
            account: "support".into(),
            password_env: "AGENTDESK_EMAIL_PASSWORD".into(),
            smtp_auth: true,
            address: "support@localhost".into(),
            display_name: "Support".into(),
            folders: vec![Folder {
                name: "INBOX".into(),
                queue: default_queue(),
            }],
            sent_folder: "Sent".into(),
            poll_interval_secs: 60,
            idle: true,
            reconnect_secs: 5,
            signature: String::new(),
            automatic_queue: "automatic".into(),
            fetch_batch: 200,
            worker_threads: 2,
        }
    }
}

impl Settings {
    /// Refuses values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.folders.is_empty() {
            return Err("`folders` must name at least one folder".into());
        }
        if self.folders.iter().any(|f| !valid_mailbox(&f.name)) || !valid_mailbox(&self.sent_folder)
        {
            return Err("folder names must be non-empty and free of quotes and line breaks".into());
        }
        if !self.address.contains('@') {
            return Err(format!(
                "`address` is not an email address: `{}`",
                self.address
            ));
        }
        if self.poll_interval_secs == 0 || self.reconnect_secs == 0 {
            return Err("`poll_interval_secs` and `reconnect_secs` must be at least 1".into());
        }
        if self.fetch_batch == 0 {
            return Err("`fetch_batch` must be at least 1".into());
        }
        Ok(())
    }

    /// The password from the configured environment variable (empty when unset).
    pub fn password(&self) -> String {
        std::env::var(&self.password_env).unwrap_or_default()
    }

    /// The polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }

    /// The reconnection delay.
    pub fn reconnect(&self) -> Duration {
        Duration::from_secs(self.reconnect_secs)
    }
}

fn valid_mailbox(name: &str) -> bool {
    !name.is_empty() && !name.contains(['"', '\\', '\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_name_a_password_variable_not_a_password() {
        let s = Settings::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.imap_port, 143);
        assert_eq!(s.password_env, "AGENTDESK_EMAIL_PASSWORD");
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let bad: Result<Settings, _> = serde_json::from_value(serde_json::json!({"password": "x"}));
        assert!(bad.is_err(), "a literal password key is unknown");
        let s = Settings {
            address: "nobody".into(),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("address"));
        let s: Settings = serde_json::from_value(serde_json::json!({
            "imap_security": "tls", "folders": [{"name": "INBOX"}, {"name": "Sales", "queue": "sales"}]
        }))
        .expect("valid");
        assert_eq!(s.imap_security, Security::Tls);
        assert_eq!(s.folders[0].queue, "default");
    }
}
