//! A working day for tests: a core on a manual clock, with helpers to offer interactions the way
//! a plugin would and to act as agents. Test-only.

use super::*;
use crate::config::AdminConfig;
use plugin_api::{ChannelKind, Contact, EndReason, Ended, Event, InteractionId, Offer, Route};

pub(crate) const CONFIG: &str = r#"
[core]
not_ready_reasons = ["break", "lunch"]
wrap_up_codes = [{ code = "sale", label = "Sale" }, { code = "info", label = "Information" }]

[[core.exclusive]]
busy_on = "voice"
blocks = ["chat"]

[channels.voice]
answer_timeout_secs = 15
acw = { mode = "timed", secs = 30 }

[[agents]]
id = "ann"
name = "Ann"
channels = "all"
extension = "101"

[[agents]]
id = "bob"
name = "Bob"
channels = ["chat", "email"]
"#;

pub(crate) const CHANNELS: [&str; 3] = ["voice", "chat", "email"];

pub(crate) struct Day {
    pub core: Core,
    pub now: Millis,
    pub journal: Vec<Stamped>,
    next_external: u64,
}

impl Day {
    pub fn with_config(extra: &str) -> Self {
        Self::from_config_text(&format!("{CONFIG}\n{extra}"))
    }

    /// A day under exactly this configuration (not added to `CONFIG`).
    pub fn from_config_text(text: &str) -> Self {
        let now = 1_000_000;
        Day {
            core: Core::new(policy_of(text), now),
            now,
            journal: Vec::new(),
            next_external: 0,
        }
    }

    pub fn new() -> Self {
        Self::with_config("")
    }

    pub fn run(&mut self, agent: &str, command: AgentCommand) -> Result<Vec<Stamped>, CoreError> {
        let events = self.core.execute(self.now, agent, command)?;
        self.journal.extend(events.clone());
        Ok(events)
    }

    pub fn ok(&mut self, agent: &str, command: AgentCommand) -> Vec<Stamped> {
        let shown = format!("{command:?}");
        self.run(agent, command)
            .unwrap_or_else(|e| panic!("{agent}: {shown} refused: {e}"))
    }

    /// Logs the agent in and makes the channels Ready.
    pub fn ready(&mut self, agent: &str, channels: &[&str]) {
        self.ok(agent, AgentCommand::LogIn);
        for c in channels {
            self.ok(
                agent,
                AgentCommand::LogOnChannel {
                    channel: c.to_string(),
                },
            );
            self.ok(
                agent,
                AgentCommand::SetReady {
                    channel: c.to_string(),
                },
            );
        }
    }

    pub fn plugin(&mut self, event: Event) -> Vec<Stamped> {
        let events = self.core.on_plugin_event(self.now, "p", &event);
        self.journal.extend(events.clone());
        events
    }

    /// A plugin offers an interaction to a queue; returns its key.
    pub fn offer(&mut self, channel: &str) -> InteractionKey {
        self.offer_routed(channel, Route::queue("default"))
    }

    pub fn offer_routed(&mut self, channel: &str, route: Route) -> InteractionKey {
        self.next_external += 1;
        let id = format!("{channel}-{}", self.next_external);
        let media = super::model::default_media(channel);
        self.plugin(Event::Offer(Offer {
            interaction: InteractionId::new(id.clone()),
            external_id: id.clone(),
            channel: ChannelKind::new(channel),
            media,
            route,
            contact: Contact::default(),
            subject: None,
            case_data: vec![],
            actions: vec![],
            priority: 0,
        }));
        self.core
            .interaction_by_plugin_id("p", &InteractionId::new(id))
            .expect("arrived")
            .key
    }

    /// The plugin reports that the contact left.
    pub fn contact_leaves(&mut self, key: InteractionKey) {
        let interaction = self
            .core
            .interaction(key)
            .expect("known")
            .plugin_interaction
            .clone();
        self.plugin(Event::Ended(Ended {
            interaction,
            reason: EndReason::ContactLeft,
            detail: String::new(),
        }));
    }

    pub fn advance(&mut self, secs: u64) -> Vec<Stamped> {
        self.now += secs * 1000;
        let events = self.core.tick(self.now);
        self.journal.extend(events.clone());
        events
    }

    pub fn state(&self, key: InteractionKey) -> InteractionState {
        self.core.interaction(key).expect("known").state.clone()
    }

    pub fn owner(&self, key: InteractionKey) -> Option<String> {
        self.core.interaction(key).expect("known").owner.clone()
    }

    pub fn channel(&self, agent: &str, channel: &str) -> ChannelState {
        self.core.agent(agent).expect("agent").channels[channel]
            .state
            .clone()
    }

    pub fn offered_to(&self, key: InteractionKey, agent: &str) -> bool {
        matches!(&self.state(key), InteractionState::Offered { agent: a, .. } if a == agent)
    }
}

/// The policy of a test configuration: the channels of `CHANNELS`, and a plugin "p" carrying
/// every channel, so outbound interactions can be started.
pub(crate) fn policy_of(text: &str) -> Policy {
    let config = AdminConfig::parse(text, "test").expect("test config");
    let channels: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
    let mut policy = Policy::from_config(&config, &channels);
    policy.channel_plugins = channels
        .iter()
        .map(|c| (c.clone(), "p".to_string()))
        .collect();
    policy
}

pub(crate) fn not_ready(reason: &str) -> ChannelState {
    ChannelState::NotReady {
        reason: reason.into(),
    }
}

pub(crate) fn cmd_ready(channel: &str) -> AgentCommand {
    AgentCommand::SetReady {
        channel: channel.into(),
    }
}

pub(crate) fn cmd_not_ready(channel: &str, reason: &str) -> AgentCommand {
    AgentCommand::SetNotReady {
        channel: channel.into(),
        reason: reason.into(),
    }
}
