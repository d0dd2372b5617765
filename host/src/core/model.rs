//! The core's state: agents with a state per channel, interactions, queues. Plain data with the
//! few derived facts the rules need; every change to it is made by `engine::Core::apply`.

use plugin_api::{Address, ChannelKind, Contact, InteractionId, Media, Route, WrapUpCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds on the core's clock (wall-clock ms since the UNIX epoch in production; any
/// origin in tests). The core never reads a clock itself: time is always passed in.
pub type Millis = u64;

/// The core's own id for an interaction (assigned in arrival order, never reused).
pub type InteractionKey = u64;

/// The medium of an interaction the core (or a scenario) creates on a channel kind without being
/// told one: calls for voice, emails for email, documents for workitems, conversations otherwise.
pub fn default_media(channel: &str) -> Media {
    match channel {
        ChannelKind::VOICE => Media::Call,
        ChannelKind::EMAIL => Media::Email,
        ChannelKind::WORKITEM => Media::Document,
        _ => Media::Conversation,
    }
}

/// What an agent's channel shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ChannelState {
    /// Not logged on to this channel.
    LoggedOff,
    /// Takes offers.
    Ready,
    /// Takes no offers, for a reason.
    NotReady {
        /// The reason code (from configuration, or a system reason).
        reason: String,
    },
    /// After-call work.
    AfterCallWork {
        /// When it ends by itself; `None` while extended indefinitely or waiting for Mark Done.
        ends_at: Option<Millis>,
        /// It cannot end before this (minimum policy).
        min_until: Option<Millis>,
        /// Where the channel goes afterwards.
        then: NextState,
    },
    /// Not Ready chosen while handling work: the channel takes no offers and becomes Not Ready
    /// when its work (and ACW) ends.
    Pending {
        /// The Not Ready reason that will apply.
        reason: String,
    },
}

impl ChannelState {
    /// The label time-in-state is kept under: `ready`, `not-ready:<reason>`, `after-call-work`,
    /// `pending:<reason>`; `None` while logged off (no time is counted).
    pub fn label(&self) -> Option<String> {
        match self {
            ChannelState::LoggedOff => None,
            ChannelState::Ready => Some("ready".into()),
            ChannelState::NotReady { reason } => Some(format!("not-ready:{reason}")),
            ChannelState::AfterCallWork { .. } => Some("after-call-work".into()),
            ChannelState::Pending { reason } => Some(format!("pending:{reason}")),
        }
    }
}

/// The state a channel goes to after ACW or pending work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "kebab-case")]
pub enum NextState {
    /// Ready.
    Ready,
    /// Not Ready with a reason.
    NotReady {
        /// The reason.
        reason: String,
    },
}

impl NextState {
    /// As a channel state.
    pub fn into_state(self) -> ChannelState {
        match self {
            NextState::Ready => ChannelState::Ready,
            NextState::NotReady { reason } => ChannelState::NotReady { reason },
        }
    }
}

/// One channel of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentChannel {
    /// What it shows.
    pub state: ChannelState,
    /// When it entered that state.
    pub since: Millis,
    /// Interactions occupying capacity (offered, active, ended but not yet marked done).
    pub load: u32,
    /// When it last became Ready or got an offer, and how many offers it got at that instant:
    /// the longest-idle agent has the smallest key (an offer in the same millisecond still counts).
    pub idle_key: (Millis, u32),
    /// The key under which this channel is listed among its channel's available agents (an index
    /// the core maintains; `None` while not eligible for offers).
    pub(crate) listed_as: Option<(Millis, u32)>,
}

/// An agent served by this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Login id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Phone extension, if any.
    pub extension: Option<String>,
    /// Assigned channels and their state.
    pub channels: BTreeMap<String, AgentChannel>,
    /// Whether a desktop is logged in for this agent (only then is it routable).
    pub logged_in: bool,
    /// Do Not Disturb: no offers on any channel.
    pub dnd: bool,
    /// Where the agent's calls are forwarded, if anywhere.
    pub forward_to: Option<Address>,
    /// Channels answered automatically.
    pub auto_answer: BTreeSet<String>,
}

/// Where an interaction is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum InteractionState {
    /// Waiting in its queue.
    Queued,
    /// Ringing at an agent until `deadline`.
    Offered {
        /// The agent.
        agent: String,
        /// When the offer times out.
        deadline: Millis,
    },
    /// Being handled.
    Active,
    /// Ended; stays in the agent's list until Mark Done.
    Ended,
    /// Set aside in the owner's workbin (frees capacity).
    InWorkbin {
        /// The workbin.
        workbin: String,
    },
    /// Marked done: closed.
    Done,
    /// The contact left while it was queued or ringing.
    Abandoned,
    /// Refused by the core (nobody can take it).
    Rejected {
        /// Why.
        reason: String,
    },
    /// Sent outside the host (forwarded to an outside number).
    Forwarded,
}

impl InteractionState {
    /// Whether it occupies its owner's capacity.
    pub fn occupies(&self) -> bool {
        matches!(
            self,
            InteractionState::Offered { .. } | InteractionState::Active | InteractionState::Ended
        )
    }

    /// Whether it is finished for the core (nothing more will happen to it).
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            InteractionState::Done
                | InteractionState::Abandoned
                | InteractionState::Rejected { .. }
                | InteractionState::Forwarded
        )
    }
}

/// An interaction known to the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    /// The core's key.
    pub key: InteractionKey,
    /// The plugin that owns the media.
    pub plugin: String,
    /// The plugin's id for it.
    pub plugin_interaction: InteractionId,
    /// The id in the outside world (for de-duplication).
    pub external_id: String,
    /// Channel kind.
    pub channel: String,
    /// Medium.
    pub media: Media,
    /// Where it was sent.
    pub route: Route,
    /// Who it is from.
    pub contact: Contact,
    /// Subject or title.
    pub subject: Option<String>,
    /// Higher first.
    pub priority: i32,
    /// Queue order: arrival sequence (kept when an offer goes back to the queue, so it returns to
    /// the head).
    pub queue_seq: u64,
    /// Where it is.
    pub state: InteractionState,
    /// The agent it belongs to (offered, active, ended, in workbin).
    pub owner: Option<String>,
    /// Agents who declined or missed it, or transferred it away: others are preferred, and they
    /// get it again only after the channel's re-offer cool-down (see `core::reoffer`).
    pub passed_over: BTreeMap<String, PassedOver>,
    /// On hold.
    pub held: bool,
    /// A request the channel has not answered yet (the state changes only on its answer).
    pub pending: Option<ChannelRequest>,
    /// When it arrived, was accepted, ended.
    pub arrived_at: Millis,
    /// When the current owner accepted it.
    pub accepted_at: Option<Millis>,
    /// When it ended.
    pub ended_at: Option<Millis>,
    /// The wrap-up code given at Mark Done.
    pub wrap_up: Option<WrapUpCode>,
    /// For a consultation: what it is about and who asked (the owner is the consulted colleague).
    pub consult: Option<Consultation>,
    /// Colleagues conferenced in: they take part and it takes a place on their channel.
    pub conference: BTreeSet<String>,
    /// Interactions started from this one with the same contact, or that it was started from.
    pub linked: BTreeSet<InteractionKey>,
}

/// A command that changes the core's state only once the channel confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelRequest {
    /// Put on hold.
    Hold,
    /// Take off hold.
    Resume,
}

impl ChannelRequest {
    /// The plugin command kind that carries it out.
    pub fn kind(self) -> &'static str {
        match self {
            ChannelRequest::Hold => "hold",
            ChannelRequest::Resume => "resume",
        }
    }

    /// The request a plugin command kind answers, if it is one the core waits for.
    pub fn of_kind(kind: &str) -> Option<Self> {
        match kind {
            "hold" => Some(ChannelRequest::Hold),
            "resume" => Some(ChannelRequest::Resume),
            _ => None,
        }
    }
}

/// Why and when an agent let an interaction go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    /// When.
    pub at: Millis,
    /// How.
    pub how: PassedHow,
}

/// How an agent let an interaction go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PassedHow {
    /// Declined the offer.
    Declined,
    /// Let the offer ring out.
    Missed,
    /// Transferred it to a queue (never straight back: only after the cool-down).
    TransferredAway,
}

/// A private exchange with a colleague about an interaction; the contact takes no part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consultation {
    /// The interaction consulted about.
    pub about: InteractionKey,
    /// The agent who asked.
    pub by: String,
}

impl Interaction {
    /// Whether the medium is live (a call, a chat, a co-browse): it must end before Mark Done.
    pub fn is_live(&self) -> bool {
        matches!(
            self.media,
            Media::Call | Media::Conversation | Media::Cobrowse
        )
    }
}
