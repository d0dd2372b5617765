//! What a client sees of one agent: channel states with their times, DND, forwarding, and the
//! agent's interactions. Plain serde data, so a networked client can receive the same thing.

use super::detail::{DetailView, Details};
use crate::core::{ChannelState, Core, InteractionKey, InteractionState, Millis};
use plugin_api::{Address, ChannelStatus, Contact, Media, Route};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One agent's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    /// The agent id.
    pub agent: String,
    /// Display name.
    pub name: String,
    /// Whether a desktop is logged in.
    pub logged_in: bool,
    /// Do Not Disturb.
    pub dnd: bool,
    /// Call forwarding target.
    pub forward_to: Option<Address>,
    /// Each assigned channel.
    pub channels: Vec<ChannelView>,
    /// The agent's open interactions (offered, active, ended awaiting Mark Done, in a workbin).
    pub interactions: Vec<InteractionView>,
    /// The journal position this snapshot reflects.
    pub seq: u64,
    /// The core's clock when it was taken.
    pub at: Millis,
}

/// One channel of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    /// Channel kind.
    pub channel: String,
    /// Its state.
    pub state: ChannelState,
    /// Since when.
    pub since: Millis,
    /// Interactions occupying it.
    pub load: u32,
    /// Its capacity.
    pub capacity: u32,
    /// Why the channel is out of service on this host (its plugin was quarantined), if it is:
    /// it gets no offers meanwhile.
    #[serde(default)]
    pub unavailable: Option<String>,
    /// The latest health its plugin reported (`channel-status`), if any.
    #[serde(default)]
    pub status: Option<ChannelStatus>,
}

/// One interaction as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionView {
    /// The core's key.
    pub key: InteractionKey,
    /// The plugin.
    pub plugin: String,
    /// Channel kind.
    pub channel: String,
    /// Medium.
    pub media: Media,
    /// Where it is.
    pub state: InteractionState,
    /// Who it is from.
    pub contact: Contact,
    /// Subject.
    pub subject: Option<String>,
    /// On hold.
    pub held: bool,
    /// The agent it belongs to (for a consultation: the consulted colleague).
    pub owner: Option<String>,
    /// For a consultation: the interaction it is about.
    pub consult_about: Option<InteractionKey>,
    /// Colleagues conferenced in.
    pub conference: Vec<String>,
    /// Interactions started from it with the same contact, or that it was started from.
    pub linked: Vec<InteractionKey>,
    /// Priority (higher first).
    pub priority: i32,
    /// When it arrived.
    pub arrived_at: Millis,
    /// When it was accepted.
    pub accepted_at: Option<Millis>,
    /// When it ended.
    pub ended_at: Option<Millis>,
    /// What the plugin reported inside it: transcript length, case data, actions, media state.
    pub detail: DetailView,
    /// The command kinds its channel plugin declared (`hold`, `consult`, `set-typing`, ...): the
    /// desk offers only these actions.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Its channel is never saved (internal IM): it lives only in memory, the history never
    /// lists it, and it closes when the host restarts. The desk says "not saved".
    #[serde(default)]
    pub never_saved: bool,
    /// Where it was routed (a queue, an agent, an extension): the offer toast names the queue.
    #[serde(default)]
    pub route: Option<Route>,
}

impl InteractionView {
    /// Whether its channel plugin handles command `kind`.
    pub fn supports(&self, kind: &str) -> bool {
        self.commands.iter().any(|k| k == kind)
    }
}

/// The snapshot of `agent`, or `None` for an unknown agent. It lists the agent's own open
/// interactions, the consultations they asked for, and the interactions they are conferenced into.
/// `statuses` are the latest `channel-status` reports by channel.
pub fn of_agent(
    core: &Core,
    details: &Details,
    statuses: &BTreeMap<String, ChannelStatus>,
    agent: &str,
    now: Millis,
) -> Option<AgentSnapshot> {
    let a = core.agent(agent)?;
    let channels = a
        .channels
        .iter()
        .map(|(channel, ch)| ChannelView {
            channel: channel.clone(),
            state: ch.state.clone(),
            since: ch.since,
            load: ch.load,
            capacity: core.policy().capacity(channel),
            unavailable: core.unavailable(channel).map(str::to_string),
            status: statuses.get(channel).cloned(),
        })
        .collect();
    let interactions = core
        .involving(agent)
        .into_iter()
        .map(|i| InteractionView {
            key: i.key,
            plugin: i.plugin.clone(),
            channel: i.channel.clone(),
            media: i.media,
            state: i.state.clone(),
            contact: i.contact.clone(),
            subject: i.subject.clone(),
            held: i.held,
            owner: i.owner.clone(),
            consult_about: i.consult.as_ref().map(|c| c.about),
            conference: i.conference.iter().cloned().collect(),
            linked: i.linked.iter().copied().collect(),
            priority: i.priority,
            arrived_at: i.arrived_at,
            accepted_at: i.accepted_at,
            ended_at: i.ended_at,
            detail: details.view(i.key),
            commands: core.policy().commands_of(&i.plugin),
            never_saved: core.policy().never_saves(&i.channel),
            route: Some(i.route.clone()),
        })
        .collect();
    Some(AgentSnapshot {
        agent: a.id.clone(),
        name: a.name.clone(),
        logged_in: a.logged_in,
        dnd: a.dnd,
        forward_to: a.forward_to.clone(),
        channels,
        interactions,
        seq: core.last_seq(),
        at: now,
    })
}

/// What colleagues see of an agent (the Team Communicator): whether their desktop is logged in,
/// Do Not Disturb, and each channel's state (Not Ready with its reason, after-call work, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The agent's id.
    pub agent: String,
    /// Their name.
    pub name: String,
    /// Whether a desktop is logged in for them.
    pub logged_in: bool,
    /// Do Not Disturb.
    pub dnd: bool,
    /// Each assigned channel and its state.
    pub channels: Vec<(String, ChannelState)>,
}

/// Every agent's presence, in the configuration's order.
pub fn presence(core: &Core) -> Vec<Presence> {
    core.agents()
        .map(|a| Presence {
            agent: a.id.clone(),
            name: a.name.clone(),
            logged_in: a.logged_in,
            dnd: a.dnd,
            channels: a
                .channels
                .iter()
                .map(|(channel, ch)| (channel.clone(), ch.state.clone()))
                .collect(),
        })
        .collect()
}
