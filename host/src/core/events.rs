//! The core's journal entries: every accepted change is one of these, stamped with a sequence
//! number and the time. Current state, time-in-state and history are projections of them.

use super::model::{ChannelState, InteractionKey, Millis};
use plugin_api::{Address, Contact, EndReason, InteractionId, Media, Route, WrapUpCode};
use serde::{Deserialize, Serialize};

/// One journaled change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    /// Position in the journal, from 1, without gaps.
    pub seq: u64,
    /// When it happened on the core's clock.
    pub at: Millis,
    /// What happened.
    pub event: CoreEvent,
}

impl CoreEvent {
    /// Who and what the event concerns: the interactions it is about and the agents it names
    /// (the core adds everyone taking part in those interactions).
    pub fn concerns(&self) -> (Vec<InteractionKey>, Vec<String>) {
        match self {
            CoreEvent::AgentLoggedIn { agent }
            | CoreEvent::AgentLoggedOut { agent }
            | CoreEvent::ChannelStateChanged { agent, .. }
            | CoreEvent::DndChanged { agent, .. }
            | CoreEvent::ForwardingChanged { agent, .. } => (vec![], vec![agent.clone()]),
            CoreEvent::InteractionOffered { key, agent, .. }
            | CoreEvent::InteractionAccepted { key, agent }
            | CoreEvent::InteractionDeclined { key, agent }
            | CoreEvent::OfferMissed { key, agent }
            | CoreEvent::InteractionForwarded { key, agent, .. }
            | CoreEvent::InteractionDone { key, agent, .. }
            | CoreEvent::InteractionTransferred {
                key, from: agent, ..
            }
            | CoreEvent::TransferOutRequested { key, agent, .. }
            | CoreEvent::HoldRequested { key, agent, .. } => (vec![*key], vec![agent.clone()]),
            CoreEvent::InteractionArrived { key, .. }
            | CoreEvent::InteractionRejected { key, .. }
            | CoreEvent::InteractionWithdrawn { key, .. }
            | CoreEvent::HoldRefused { key, .. }
            | CoreEvent::InteractionHeld { key }
            | CoreEvent::InteractionResumed { key }
            | CoreEvent::InteractionEnded { key, .. }
            | CoreEvent::InteractionAbandoned { key }
            | CoreEvent::InteractionParked { key, .. }
            | CoreEvent::InteractionUnparked { key }
            | CoreEvent::ConsultationEnded { consultation: key } => (vec![*key], vec![]),
            CoreEvent::ConsultationStarted {
                key,
                about,
                by,
                colleague,
                ..
            } => (vec![*key, *about], vec![by.clone(), colleague.clone()]),
            CoreEvent::ConferenceStarted {
                about,
                consultation,
                colleague,
            } => (vec![*about, *consultation], vec![colleague.clone()]),
            CoreEvent::TransferredAfterConsultation {
                about,
                consultation,
                from,
                to,
            } => (vec![*about, *consultation], vec![from.clone(), to.clone()]),
            CoreEvent::ConferenceLeft { about, agent } => (vec![*about], vec![agent.clone()]),
            CoreEvent::OutboundStarted {
                key,
                agent,
                related,
                ..
            } => (
                std::iter::once(*key).chain(*related).collect(),
                vec![agent.clone()],
            ),
            CoreEvent::PluginIdLinked { key, .. } => (vec![*key], vec![]),
            CoreEvent::InteractionLinked {
                key,
                owner,
                related,
            } => (vec![*key, *related], vec![owner.clone()]),
            // Everyone's snapshot may change: the core notes the agents itself (`core::roster`).
            CoreEvent::RosterChanged { .. } => (vec![], vec![]),
        }
    }

    /// The kind tag, as written in the journal's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            CoreEvent::AgentLoggedIn { .. } => "agent-logged-in",
            CoreEvent::AgentLoggedOut { .. } => "agent-logged-out",
            CoreEvent::ChannelStateChanged { .. } => "channel-state-changed",
            CoreEvent::DndChanged { .. } => "dnd-changed",
            CoreEvent::ForwardingChanged { .. } => "forwarding-changed",
            CoreEvent::InteractionArrived { .. } => "interaction-arrived",
            CoreEvent::InteractionOffered { .. } => "interaction-offered",
            CoreEvent::InteractionAccepted { .. } => "interaction-accepted",
            CoreEvent::InteractionDeclined { .. } => "interaction-declined",
            CoreEvent::OfferMissed { .. } => "offer-missed",
            CoreEvent::InteractionRejected { .. } => "interaction-rejected",
            CoreEvent::InteractionWithdrawn { .. } => "interaction-withdrawn",
            CoreEvent::InteractionForwarded { .. } => "interaction-forwarded",
            CoreEvent::InteractionHeld { .. } => "interaction-held",
            CoreEvent::HoldRequested { .. } => "hold-requested",
            CoreEvent::HoldRefused { .. } => "hold-refused",
            CoreEvent::InteractionResumed { .. } => "interaction-resumed",
            CoreEvent::InteractionTransferred { .. } => "interaction-transferred",
            CoreEvent::TransferOutRequested { .. } => "transfer-out-requested",
            CoreEvent::InteractionEnded { .. } => "interaction-ended",
            CoreEvent::InteractionAbandoned { .. } => "interaction-abandoned",
            CoreEvent::InteractionDone { .. } => "interaction-done",
            CoreEvent::InteractionParked { .. } => "interaction-parked",
            CoreEvent::InteractionUnparked { .. } => "interaction-unparked",
            CoreEvent::ConsultationStarted { .. } => "consultation-started",
            CoreEvent::ConferenceStarted { .. } => "conference-started",
            CoreEvent::TransferredAfterConsultation { .. } => "transferred-after-consultation",
            CoreEvent::ConsultationEnded { .. } => "consultation-ended",
            CoreEvent::ConferenceLeft { .. } => "conference-left",
            CoreEvent::OutboundStarted { .. } => "outbound-started",
            CoreEvent::PluginIdLinked { .. } => "plugin-id-linked",
            CoreEvent::InteractionLinked { .. } => "interaction-linked",
            CoreEvent::RosterChanged { .. } => "roster-changed",
        }
    }
}

/// What can happen in the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CoreEvent {
    /// A desktop logged in for the agent.
    AgentLoggedIn {
        /// The agent.
        agent: String,
    },
    /// The agent's desktop logged out (all channels go logged off first).
    AgentLoggedOut {
        /// The agent.
        agent: String,
    },
    /// An agent's channel changed state.
    ChannelStateChanged {
        /// The agent.
        agent: String,
        /// The channel.
        channel: String,
        /// The new state.
        state: ChannelState,
    },
    /// Do Not Disturb on or off.
    DndChanged {
        /// The agent.
        agent: String,
        /// On?
        on: bool,
    },
    /// Call forwarding set or cleared.
    ForwardingChanged {
        /// The agent.
        agent: String,
        /// Where to, or `None` for off.
        to: Option<Address>,
    },
    /// An interaction was offered by a plugin and queued.
    InteractionArrived {
        /// The core's key.
        key: InteractionKey,
        /// The plugin.
        plugin: String,
        /// The plugin's id.
        interaction: InteractionId,
        /// The outside id (de-duplication).
        external_id: String,
        /// Channel kind.
        channel: String,
        /// Medium.
        media: Media,
        /// Route.
        route: Route,
        /// Contact.
        contact: Contact,
        /// Subject.
        subject: Option<String>,
        /// Priority.
        priority: i32,
        /// The open interaction it is linked to, both ways: the one carrying the session code
        /// its offer named (`Route::LINKED`, plugin-api 1.3). Absent in rows written before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        related: Option<InteractionKey>,
    },
    /// A `linked` offer that waited found what carries its code (`core::links`): it goes to
    /// that interaction's owner, and both are linked.
    InteractionLinked {
        /// The waiting interaction.
        key: InteractionKey,
        /// Who gets it.
        owner: String,
        /// The interaction carrying the code.
        related: InteractionKey,
    },
    /// Offered to an agent until `deadline`.
    InteractionOffered {
        /// The interaction.
        key: InteractionKey,
        /// The agent.
        agent: String,
        /// When the offer times out.
        deadline: Millis,
    },
    /// The agent accepted (or it was answered automatically).
    InteractionAccepted {
        /// The interaction.
        key: InteractionKey,
        /// The agent.
        agent: String,
    },
    /// The agent declined the offer; it goes back to the head of its queue.
    InteractionDeclined {
        /// The interaction.
        key: InteractionKey,
        /// The agent.
        agent: String,
    },
    /// The offer timed out; it goes back to the head of its queue.
    OfferMissed {
        /// The interaction.
        key: InteractionKey,
        /// The agent who did not answer.
        agent: String,
    },
    /// The core refused the interaction.
    InteractionRejected {
        /// The interaction.
        key: InteractionKey,
        /// Why, in words.
        reason: String,
        /// Why, as the stable code the channel answers by (journals before 1.1 have none).
        #[serde(default)]
        code: plugin_api::RejectCode,
    },
    /// Withdrawn while queued or offered because its channel's plugin can no longer carry it
    /// (quarantined): it leaves the queue or the agent it rang for, closed with the reason.
    InteractionWithdrawn {
        /// The interaction.
        key: InteractionKey,
        /// Why.
        reason: String,
    },
    /// Sent to the target agent's forwarding address instead.
    InteractionForwarded {
        /// The interaction.
        key: InteractionKey,
        /// The agent whose forwarding applied.
        agent: String,
        /// Where to.
        to: Address,
    },
    /// The agent asked for hold (`hold`) or resume; the channel has not answered yet, so nothing
    /// changed. Its answer is `InteractionHeld` / `InteractionResumed` or `HoldRefused`.
    HoldRequested {
        /// The interaction.
        key: InteractionKey,
        /// The agent who asked.
        agent: String,
        /// Hold (true) or resume (false).
        hold: bool,
    },
    /// The channel refused or failed the hold or resume asked for: nothing changed.
    HoldRefused {
        /// The interaction.
        key: InteractionKey,
        /// Hold (true) or resume (false).
        hold: bool,
        /// The channel's reason.
        reason: String,
    },
    /// Put on hold (confirmed by the channel).
    InteractionHeld {
        /// The interaction.
        key: InteractionKey,
    },
    /// Taken off hold (confirmed by the channel).
    InteractionResumed {
        /// The interaction.
        key: InteractionKey,
    },
    /// Transferred blind to a queue or agent: it leaves its owner and is routed again.
    InteractionTransferred {
        /// The interaction.
        key: InteractionKey,
        /// The agent who transferred it.
        from: String,
        /// The new route.
        to: Route,
    },
    /// The owner asked the channel to transfer a live call blind to an outside number or address
    /// (no agent has it as an extension). The call stays the owner's until the channel reports it
    /// ended (`transferred-away`), or keeps it if the transfer fails.
    TransferOutRequested {
        /// The interaction.
        key: InteractionKey,
        /// The agent who transferred it.
        agent: String,
        /// Where to.
        to: Address,
    },
    /// Ended (by the contact, the agent or the channel).
    InteractionEnded {
        /// The interaction.
        key: InteractionKey,
        /// Why.
        reason: EndReason,
    },
    /// The contact left while it was waiting.
    InteractionAbandoned {
        /// The interaction.
        key: InteractionKey,
    },
    /// Marked done by its owner.
    InteractionDone {
        /// The interaction.
        key: InteractionKey,
        /// The agent.
        agent: String,
        /// The wrap-up code.
        wrap_up: Option<WrapUpCode>,
    },
    /// Put in the owner's workbin.
    InteractionParked {
        /// The interaction.
        key: InteractionKey,
        /// The workbin.
        workbin: String,
    },
    /// Taken back from the workbin.
    InteractionUnparked {
        /// The interaction.
        key: InteractionKey,
    },
    /// A consultation was started and offered to the colleague.
    ConsultationStarted {
        /// The consultation's own key.
        key: InteractionKey,
        /// The interaction it is about.
        about: InteractionKey,
        /// The agent who asked.
        by: String,
        /// The colleague.
        colleague: String,
        /// When the offer to the colleague times out.
        deadline: Millis,
    },
    /// The consulted colleague joined the interaction itself (the consultation closes).
    ConferenceStarted {
        /// The interaction.
        about: InteractionKey,
        /// The consultation.
        consultation: InteractionKey,
        /// The colleague.
        colleague: String,
    },
    /// The interaction was handed to the consulted colleague (the consultation closes).
    TransferredAfterConsultation {
        /// The interaction.
        about: InteractionKey,
        /// The consultation.
        consultation: InteractionKey,
        /// The agent who had it.
        from: String,
        /// The colleague who has it now.
        to: String,
    },
    /// A consultation ended (declined, missed, or ended by either side).
    ConsultationEnded {
        /// The consultation.
        consultation: InteractionKey,
    },
    /// A conferenced colleague left.
    ConferenceLeft {
        /// The interaction.
        about: InteractionKey,
        /// The colleague.
        agent: String,
    },
    /// An agent started an outbound interaction (a call, an email) to a contact's address.
    OutboundStarted {
        /// Its key.
        key: InteractionKey,
        /// The plugin that carries it.
        plugin: String,
        /// Channel kind.
        channel: String,
        /// Medium.
        media: Media,
        /// The agent.
        agent: String,
        /// The address.
        to: Address,
        /// The contact.
        contact: Contact,
        /// The interaction it was started from (party action), linked both ways.
        related: Option<InteractionKey>,
    },
    /// The plugin named an interaction the core started (its `created` reply): events from the
    /// plugin about that id now reach it.
    PluginIdLinked {
        /// The interaction.
        key: InteractionKey,
        /// The plugin's id for it.
        interaction: InteractionId,
    },
    /// The team from now on, as the admin configured it (a reload, or a start with a changed
    /// file; a new journal starts with one). A channel taken away from an agent stays theirs
    /// until the work in hand on it is done, without new offers; an agent taken out of the team
    /// stays until theirs is done and cannot log in again.
    RosterChanged {
        /// Every agent of the team.
        agents: Vec<RosterAgent>,
    },
}

/// One agent of the team as the configuration gives it (journaled with [`CoreEvent::RosterChanged`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterAgent {
    /// Login id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Phone extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Assigned channels.
    pub channels: Vec<String>,
    /// Channels answered automatically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_answer: Vec<String>,
}
