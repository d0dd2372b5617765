//! The messages of a plugin's life cycle: its descriptor, its configuration and the capability
//! handshake at start. They decide what each side may send the other.

use super::types::{ChannelKind, CustomAction, Media};
use crate::codec::message_kind;
use serde::{Deserialize, Serialize};

/// Static facts about a plugin, answered by `describe` without starting anything. The host checks
/// them against the manifest read before loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDescriptor {
    /// A stable, unique id such as `acme.sms`: lowercase letters, digits, `.`, `-`, `_`.
    pub id: String,
    /// The name to show.
    pub name: String,
    /// Who made it.
    pub vendor: String,
    /// The plugin's own semver version.
    pub version: String,
    /// The plugin-api version it was built against. Filled in by [`crate::export_plugin!`].
    #[serde(default)]
    pub api_version: String,
    /// The channels it serves.
    pub channels: Vec<ChannelKind>,
    /// One sentence about what it does.
    #[serde(default)]
    pub description: String,
}

/// The instance's configuration: the plugin's section of the admin file, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginConfig {
    /// The plugin id the section belongs to.
    pub plugin_id: String,
    /// The settings (an empty object when the admin gave none).
    #[serde(default)]
    pub settings: serde_json::Value,
}

impl PluginConfig {
    /// Deserializes the settings into the plugin's own settings type; a missing section is `{}`,
    /// so give your type `#[serde(default)]` to have defaults.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::PluginError> {
        let value = if self.settings.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            self.settings.clone()
        };
        serde_json::from_value(value).map_err(|e| {
            crate::PluginError::new(
                crate::ErrorCode::CONFIG,
                format!("settings of plugin `{}`: {e}", self.plugin_id),
            )
        })
    }
}

/// The host's side of the handshake, passed to `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHello {
    /// The plugin-api version the host was built against.
    pub api_version: String,
    /// The host product and version, for logs.
    #[serde(default)]
    pub host: String,
    /// Every command kind the host may send.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Every event kind the host understands; others are dropped (and logged once).
    #[serde(default)]
    pub events: Vec<String>,
}

impl HostHello {
    /// Whether the host understands this event kind; use it to turn off features a newer plugin
    /// has and an older host cannot show.
    pub fn understands_event(&self, kind: &str) -> bool {
        self.events.iter().any(|k| k == kind)
    }
}

/// The plugin's side of the handshake, answered by `start`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginHello {
    /// Every command kind this instance handles. The host never sends others; if one arrives
    /// anyway, the plugin-api wrapper answers "unsupported".
    #[serde(default)]
    pub commands: Vec<String>,
    /// Every event kind this instance may emit.
    #[serde(default)]
    pub events: Vec<String>,
    /// The media its interactions use.
    #[serde(default)]
    pub media: Vec<Media>,
    /// Channel-wide custom actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CustomAction>,
    /// (1.4) Channels of this plugin whose interactions are never saved (internal IM): the host
    /// keeps their messages in memory only, journals no subject for them, lists them in no
    /// history or contact record and never queues them for later (an offer the target cannot
    /// take now is rejected at once). A 1.0–1.3 host ignores this field: a plugin that relies on
    /// it checks the host's `api_version`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_saved: Vec<ChannelKind>,
}

impl PluginHello {
    /// Whether the plugin declared this command kind.
    pub fn supports(&self, kind: &str) -> bool {
        self.commands.iter().any(|k| k == kind)
    }

    /// Whether this plugin declared `channel` never saved (1.4).
    pub fn never_saves(&self, channel: &str) -> bool {
        self.never_saved.iter().any(|c| c.as_str() == channel)
    }
}

message_kind! {
    PluginDescriptor => "plugin-descriptor",
    PluginConfig => "plugin-config",
    HostHello => "host-hello",
    PluginHello => "plugin-hello",
}
