//! The voice channel's settings: the plugin's section of the admin configuration
//! (`[plugins.settings."agentdesk.voice"]`). Values and defaults only; no I/O.

use crate::sdp::Codec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// What happens to a new call for an extension whose agent forwards their calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMode {
    /// Answer the INVITE with `302 Moved Temporarily` naming the forwarding target.
    Redirect,
    /// Keep the call and offer it to the core again, routed to the target extension when it is
    /// one of ours (a colleague); other targets are redirected.
    Reroute,
}

/// One agent's telephone identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLine {
    /// The agent's extension: INVITEs for `sip:<extension>@...` are routed to them.
    #[serde(default)]
    pub extension: Option<String>,
    /// Where the agent's phone is reached for consultations and transfers (e.g.
    /// `sip:2002@pbx.example.com`). Without it, `sip:<extension>@<domain>` is used.
    #[serde(default)]
    pub uri: Option<String>,
    /// The digest password the agent's own endpoint (the desktop's, or a SIP phone the admin
    /// assigns) registers with, as the extension, at this channel's registrar. Prefer
    /// `password_env`: the password then stays out of the file.
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable holding that password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl AgentLine {
    /// The endpoint's registration password, if the agent has one (the file's, else the
    /// environment's).
    pub fn endpoint_password(&self) -> Option<String> {
        self.password
            .clone()
            .or_else(|| std::env::var(self.password_env.as_ref()?).ok())
            .filter(|p| !p.is_empty())
    }
}

/// Registration with a registrar (RFC 3261 §10) with digest credentials from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Registrar {
    /// The registrar's URI, e.g. `sip:pbx.example.com:5060`.
    pub uri: String,
    /// The user part of the address of record (default: the `user` setting).
    pub user: Option<String>,
    /// The environment variable holding the authentication user name (default: the AOR user).
    pub username_env: String,
    /// The environment variable holding the password.
    pub password_env: String,
    /// The registration lifetime asked for, in seconds (refreshed at half of what is granted).
    pub expires_secs: u32,
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar {
            uri: String::new(),
            user: None,
            username_env: "AGENTDESK_SIP_USERNAME".into(),
            password_env: "AGENTDESK_SIP_PASSWORD".into(),
            expires_secs: 3600,
        }
    }
}

/// Settings from `[plugins.settings."agentdesk.voice"]`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The address SIP and RTP bind to. Loopback by default.
    pub bind: String,
    /// The SIP UDP port; 0 picks a free one (reported in `endpoint.json`).
    pub port: u16,
    /// The host name or address put in our URIs and SDP (default: `bind`).
    pub public_address: Option<String>,
    /// The SIP domain for numbers and extensions dialled without one (default: the registrar's
    /// host, else `public_address`).
    pub domain: Option<String>,
    /// Send every outbound request to this `host:port` (an outbound proxy / PBX) instead of the
    /// Request-URI's host.
    pub outbound_proxy: Option<String>,
    /// The user part of our own URI (`From` of calls with no agent extension).
    pub user: String,
    /// Codecs in order of preference: `PCMU`, `PCMA`.
    pub codecs: Vec<String>,
    /// The RTP payload type offered for telephone events (DTMF).
    pub dtmf_payload_type: u8,
    /// The queue calls not addressed to a known extension are offered to.
    pub queue: String,
    /// Agents' extensions and phone addresses, by agent id.
    pub agents: BTreeMap<String, AgentLine>,
    /// What to do with calls for a forwarded extension.
    pub forwarding: ForwardMode,
    /// Register with a registrar (off when absent).
    pub registrar: Option<Registrar>,
    /// A WAV file played to the far end as the agent's voice when there is no audio device
    /// (relative paths are under the plugin's data directory). Empty: silence.
    pub play: String,
    /// Record every call (far end left, agent right) as a stereo WAV file.
    pub record: bool,
    /// Where recordings go (relative paths are under the plugin's data directory).
    pub recordings: String,
    /// Frames (20 ms each) the jitter buffer holds before playing.
    pub jitter_frames: usize,
    /// A connected call with no RTP from the far end for this long is ended (peer gone).
    /// 0 turns the check off. Held calls are exempt.
    pub media_timeout_secs: u64,
    /// A ringing call the core has not decided on after this long gets `480` (a safety net;
    /// the core's answer timeout re-routes it much earlier).
    pub max_ring_secs: u64,
    /// Worker threads of the plugin's own runtime.
    pub worker_threads: usize,
    /// The digest realm agents' endpoints register in (the registrar is on when an agent has a
    /// password).
    pub realm: String,
    /// The longest registration granted, in seconds.
    pub max_registration_secs: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1".into(),
            port: 5060,
            public_address: None,
            domain: None,
            outbound_proxy: None,
            user: "agentdesk".into(),
            codecs: vec!["PCMU".into(), "PCMA".into()],
            dtmf_payload_type: 101,
            queue: "default".into(),
            agents: BTreeMap::new(),
            forwarding: ForwardMode::Redirect,
            registrar: None,
            play: String::new(),
            record: true,
            recordings: "recordings".into(),
            jitter_frames: 3,
            media_timeout_secs: 30,
            max_ring_secs: 300,
            worker_threads: 2,
            realm: "agentdesk".into(),
            max_registration_secs: 3600,
        }
    }
}

impl Settings {
    /// Refuses values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`bind` is not an IP address: `{}`", self.bind));
        }
        if self.codecs.is_empty() {
            return Err("`codecs` must name at least one of PCMU, PCMA".into());
        }
        for codec in &self.codecs {
            if Codec::from_name(codec).is_none() {
                return Err(format!("`codecs`: `{codec}` is not PCMU or PCMA"));
            }
        }
        if !(96..=127).contains(&self.dtmf_payload_type) {
            return Err("`dtmf_payload_type` must be a dynamic payload type (96-127)".into());
        }
        if self.jitter_frames == 0 || self.jitter_frames > 50 {
            return Err("`jitter_frames` must be between 1 and 50".into());
        }
        if let Some(r) = &self.registrar
            && !r.uri.starts_with("sip:")
        {
            return Err(format!("`registrar.uri` is not a sip: URI: `{}`", r.uri));
        }
        let mut seen = BTreeMap::new();
        for (agent, line) in &self.agents {
            if let Some(ext) = &line.extension
                && let Some(other) = seen.insert(ext.clone(), agent.clone())
            {
                return Err(format!(
                    "`agents`: extension {ext} belongs to both `{other}` and `{agent}`"
                ));
            }
            if let Some(uri) = &line.uri
                && crate::sip::SipUri::parse(uri).is_none()
            {
                return Err(format!("`agents.{agent}.uri` is not a sip: URI: `{uri}`"));
            }
            if (line.password.is_some() || line.password_env.is_some()) && line.extension.is_none()
            {
                return Err(format!(
                    "`agents.{agent}`: an endpoint password needs an `extension` to register as"
                ));
            }
        }
        Ok(())
    }

    /// The codecs, in order.
    pub fn codec_list(&self) -> Vec<Codec> {
        self.codecs
            .iter()
            .filter_map(|c| Codec::from_name(c))
            .collect()
    }

    /// The address in our URIs and SDP.
    pub fn public(&self) -> String {
        self.public_address
            .clone()
            .unwrap_or_else(|| self.bind.clone())
    }

    /// The domain for bare numbers and extensions.
    pub fn domain(&self) -> String {
        if let Some(d) = &self.domain {
            return d.clone();
        }
        if let Some(host) = self
            .registrar
            .as_ref()
            .and_then(|r| crate::sip::SipUri::parse(&r.uri))
        {
            return host.host;
        }
        self.public()
    }

    /// The agent whose extension this is.
    pub fn agent_of_extension(&self, extension: &str) -> Option<&str> {
        self.agents
            .iter()
            .find(|(_, l)| l.extension.as_deref() == Some(extension))
            .map(|(id, _)| id.as_str())
    }

    /// The agent whose endpoint registers as this extension, with its password.
    pub fn endpoint_of_extension(&self, extension: &str) -> Option<(&str, String)> {
        let agent = self.agent_of_extension(extension)?;
        let password = self.agents.get(agent)?.endpoint_password()?;
        Some((agent, password))
    }

    /// Whether the registrar is on: some agent has an endpoint password.
    pub fn registrar_on(&self) -> bool {
        self.agents
            .values()
            .any(|l| l.password.is_some() || l.password_env.is_some())
    }

    /// Where an agent's phone is reached.
    pub fn agent_uri(&self, agent: &str) -> Option<String> {
        let line = self.agents.get(agent)?;
        line.uri.clone().or_else(|| {
            line.extension
                .as_ref()
                .map(|e| format!("sip:{e}@{}", self.domain()))
        })
    }

    /// The media timeout, if on.
    pub fn media_timeout(&self) -> Option<Duration> {
        (self.media_timeout_secs > 0).then(|| Duration::from_secs(self.media_timeout_secs))
    }

    /// Resolves a setting path against the data directory.
    pub fn path_in(&self, data: &std::path::Path, value: &str) -> PathBuf {
        let path = PathBuf::from(value);
        if path.is_absolute() {
            path
        } else {
            data.join(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_and_validate() {
        let s = Settings::default();
        assert_eq!(s.bind, "127.0.0.1");
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.codec_list(), vec![Codec::Pcmu, Codec::Pcma]);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let s = Settings {
            codecs: vec!["G729".into()],
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("codecs"));
        let mut s = Settings::default();
        for agent in ["ann", "bob"] {
            s.agents.insert(
                agent.into(),
                AgentLine {
                    extension: Some("2001".into()),
                    uri: None,
                    password: None,
                    password_env: None,
                },
            );
        }
        assert!(s.validate().unwrap_err().contains("2001"));
    }

    #[test]
    fn an_agent_is_reached_by_uri_or_by_extension_at_the_domain() {
        let mut s = Settings {
            domain: Some("pbx.example.com".into()),
            ..Settings::default()
        };
        s.agents.insert(
            "ann".into(),
            AgentLine {
                extension: Some("2001".into()),
                uri: None,
                password: None,
                password_env: None,
            },
        );
        assert_eq!(
            s.agent_uri("ann").as_deref(),
            Some("sip:2001@pbx.example.com")
        );
        assert_eq!(s.agent_of_extension("2001"), Some("ann"));
        assert_eq!(s.agent_uri("bob"), None);
    }
}
