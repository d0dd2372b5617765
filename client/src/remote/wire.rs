//! What the client interface sends over NATS, and where: JSON bodies with a version, on subjects
//! named after the agent. The hub takes the acting agent from the subject — which NATS lets only
//! that agent's user publish on — never from the body.
//!
//! | subject | who publishes | what |
//! | --- | --- | --- |
//! | `ad.v1.hub.agents` | any desktop (request) | who may log in |
//! | `ad.v1.hub.plugins` | any desktop (request) | the plugin table |
//! | `ad.v1.hub.team` | a supervisor's connection (request) | every agent's state, every queue |
//! | `ad.v1.hub.reload` | the hub's own key (`agentdesk hub reload`, request) | re-read the admin file |
//! | `ad.v1.agent.<agent>.req` | the agent's desktop (request) | a [`Request`]; the reply is a [`Reply`] |
//! | `ad.v1.agent.<agent>.snap` | the hub | the agent's [`AgentSnapshot`] after every change |

use crate::reload::ReloadReport;
use crate::{
    AgentCommand, AgentSnapshot, ClientError, CommandId, DeskInfo, HistoryEntry, Interact,
    LiveLine, Millis, PluginTable, Presence, TeamView, TranscriptLine,
};
use plugin_api::AttachmentRef;
use serde::{Deserialize, Serialize};

/// The version of this encoding. A hub answers a body of another version with
/// `unsupported-version`, naming both.
pub const VERSION: u32 = 1;

/// The largest body either side accepts: half of NATS's own default limit (1 MiB), so a body over
/// it reaches the hub and is refused with a code rather than lost at the server.
pub const MAX_BODY: usize = 512 * 1024;

/// The largest piece of a file one answer carries: base64 makes it 4/3 bigger, still well
/// under [`MAX_BODY`].
pub const FILE_CHUNK: u64 = 256 * 1024;

/// The subject for the login picker (who may log in).
pub const AGENTS: &str = "ad.v1.hub.agents";

/// The subject for the plugin table before anyone logs in.
pub const PLUGINS: &str = "ad.v1.hub.plugins";

/// The subject for the team view (supervisors' keys only).
pub const TEAM: &str = "ad.v1.hub.team";

/// The inbox prefix of a connection asking for the team view.
pub const TEAM_INBOX: &str = "_INBOX_team";

/// The subject that makes the hub re-read the admin file (the hub's own key only).
pub const RELOAD: &str = "ad.v1.hub.reload";

/// The inbox prefix of `agentdesk hub reload` (connected with the hub's key).
pub const HUB_INBOX: &str = "_INBOX_hub";

/// Agent ids that can be a subject token: letters, digits, `-` and `_` (no `.`, `*`, `>`).
pub fn valid_agent(agent: &str) -> bool {
    !agent.is_empty()
        && agent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where `agent`'s desktop sends its requests.
pub fn requests(agent: &str) -> String {
    format!("ad.v1.agent.{agent}.req")
}

/// Where the hub publishes `agent`'s snapshots.
pub fn snapshots(agent: &str) -> String {
    format!("ad.v1.agent.{agent}.snap")
}

/// The inbox prefix of `agent`'s desktop: answers to it come on `<prefix>.…`, a subject only
/// that agent's NATS user may subscribe to.
pub fn inbox_prefix(agent: &str) -> String {
    format!("_INBOX_{agent}")
}

/// Every agent's request subject (the hub's subscription).
pub const ALL_REQUESTS: &str = "ad.v1.agent.*.req";

/// The agent a request subject names.
pub fn agent_of(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix("ad.v1.agent.")?;
    let agent = rest.strip_suffix(".req")?;
    valid_agent(agent).then_some(agent)
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`VERSION`].
    pub v: u32,
    /// What is asked.
    pub request: Request,
}

/// What a desktop asks of the hub (as the agent its subject names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Request {
    /// Who may log in (on [`AGENTS`]).
    Agents,
    /// Log in; the answer is the desk's static information.
    Login {
        /// The command id.
        id: CommandId,
    },
    /// The agent's current snapshot.
    Snapshot,
    /// The desktop is there (sent every half second; answered `done`).
    Heartbeat,
    /// The hub's clock.
    Now,
    /// A routing command.
    Command {
        /// Its id.
        id: CommandId,
        /// The command.
        command: AgentCommand,
    },
    /// A message in an interaction.
    Message {
        /// Its id.
        id: CommandId,
        /// The interaction.
        key: u64,
        /// The text.
        text: String,
    },
    /// DTMF, typing or a custom action.
    Interact {
        /// Its id.
        id: CommandId,
        /// The interaction.
        key: u64,
        /// What.
        act: Interact,
    },
    /// A page of a live transcript.
    LiveLines {
        /// The interaction.
        key: u64,
        /// Lines to skip.
        offset: usize,
        /// Lines to return.
        limit: usize,
    },
    /// The contact's other interactions.
    ContactHistory {
        /// The interaction.
        key: u64,
        /// At most this many.
        limit: usize,
    },
    /// The interactions the agent handled last.
    Recent {
        /// Which.
        filter: crate::HistoryFilter,
        /// At most this many.
        limit: usize,
    },
    /// A history search.
    Search {
        /// Words.
        text: Option<String>,
        /// At most this many.
        limit: usize,
    },
    /// A page of a stored transcript.
    Transcript {
        /// The interaction.
        key: u64,
        /// Lines to skip.
        offset: usize,
        /// Lines to return.
        limit: usize,
    },
    /// A piece of a file an interaction carries (only for those taking part in it).
    File {
        /// The interaction.
        key: u64,
        /// The file.
        attachment: AttachmentRef,
        /// Where the piece starts.
        offset: u64,
        /// At most this many bytes ([`FILE_CHUNK`] at most).
        limit: u64,
    },
    /// The plugin table.
    Plugins,
    /// The team view (on [`TEAM`]).
    Team,
    /// Re-read the admin file (on [`RELOAD`]).
    Reload,
    /// Every colleague's presence (the Team Communicator).
    Presence,
}

/// An answer's body: `{"ok": ...}` or `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// Done.
    Ok(Answer),
    /// Refused or failed.
    Error(ClientError),
}

/// What a request is answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "value", rename_all = "kebab-case")]
pub enum Answer {
    /// A command was carried out.
    Done,
    /// The desk's static information and the hub's clock (after a login).
    Welcome {
        /// The admin's rules the desk shows.
        info: DeskInfo,
        /// The hub's clock.
        now: Millis,
    },
    /// A snapshot, if the agent is known.
    Snapshot(Box<AgentSnapshot>),
    /// The hub's clock.
    Now(Millis),
    /// Live transcript lines.
    LiveLines(Vec<LiveLine>),
    /// History entries.
    Entries(Vec<HistoryEntry>),
    /// Stored transcript lines.
    Lines(Vec<TranscriptLine>),
    /// A piece of a file: its bytes (base64) and the file's whole size.
    File {
        /// The bytes, base64.
        data: String,
        /// The file's size.
        total: u64,
    },
    /// The plugin table.
    Plugins(PluginTable),
    /// Who may log in.
    Agents(Vec<(String, String)>),
    /// The team view.
    Team(Box<TeamView>),
    /// What a reload changed.
    Reloaded(ReloadReport),
    /// Every agent's presence.
    Presence(Vec<Presence>),
}

/// Encodes a body.
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|e| ClientError::failed("encode", e.to_string()))
}

/// Decodes a body, refusing one over [`MAX_BODY`].
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ClientError> {
    if bytes.len() > MAX_BODY {
        return Err(ClientError::failed(
            "too-large",
            format!("a body of {} bytes (at most {MAX_BODY})", bytes.len()),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ClientError::failed("malformed", e.to_string()))
}

/// Decodes a request body: its version first, so an older or newer desktop is told plainly.
pub fn decode_request(bytes: &[u8]) -> Result<Request, ClientError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    let versioned: Versioned = decode(bytes)?;
    if versioned.v != VERSION {
        return Err(ClientError::failed(
            "unsupported-version",
            format!(
                "this hub speaks client version {VERSION}; the desktop sent version {}",
                versioned.v
            ),
        ));
    }
    decode::<Envelope>(bytes).map(|e| e.request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_the_agent_and_nothing_else() {
        assert_eq!(agent_of(&requests("ann")), Some("ann"));
        assert_eq!(agent_of("ad.v1.agent.ann.x.req"), None);
        assert_eq!(agent_of("ad.v1.agent.*.req"), None);
        assert!(!valid_agent("ann.bob") && !valid_agent(">") && !valid_agent(""));
    }

    #[test]
    fn a_request_of_another_version_or_shape_is_refused_with_a_code() {
        let ok = encode(&Envelope {
            v: VERSION,
            request: Request::Snapshot,
        })
        .expect("encode");
        assert_eq!(decode_request(&ok), Ok(Request::Snapshot));
        let old = br#"{"v":0,"request":{"kind":"snapshot"}}"#;
        assert_eq!(
            decode_request(old).map_err(|e| e.code().to_string()),
            Err("unsupported-version".into())
        );
        let unknown = br#"{"v":1,"request":{"kind":"launch-rockets"}}"#;
        assert_eq!(
            decode_request(unknown).map_err(|e| e.code().to_string()),
            Err("malformed".into())
        );
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(
            decode_request(&big).map_err(|e| e.code().to_string()),
            Err("too-large".into())
        );
    }
}
