//! What the agent sees of a Messenger conversation: the offer, its messages (with attachments),
//! and the case data (reply window, button payload, receipts). Built from stored state only.

use crate::conversations::{Author, Conversation, Line, View};
use crate::window::{ReplyWindow, span};
use plugin_api::{
    Address, CaseDataChanged, CaseField, ChannelKind, Contact, ConversationRules, Event,
    InteractionId, LengthCounting, Media, MessageContent, MessageReceived, Offer, Party, Receipt,
    ReceiptState, Route,
};

/// The longest text message Messenger accepts, in characters.
pub const MAX_TEXT: u32 = 2000;

pub(crate) fn short(mid: &str) -> String {
    mid.chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// The name shown for a customer: their profile name, else "Messenger user …<id>".
pub fn customer_name(psid: &str, c: &Conversation) -> String {
    if let Some(name) = c.name.as_ref().filter(|n| !n.trim().is_empty()) {
        return name.clone();
    }
    let tail: String = short(psid);
    format!("Messenger user …{tail}")
}

pub(crate) fn customer(psid: &str, c: &Conversation) -> Party {
    Party {
        id: format!("customer-{psid}"),
        role: Party::CUSTOMER.into(),
        display_name: customer_name(psid, c),
        address: Some(Address::new(Address::SOCIAL, format!("facebook:{psid}"))),
    }
}

pub(crate) fn offer(psid: &str, c: &Conversation, view: &View<'_>) -> Offer {
    Offer {
        interaction: InteractionId::new(&c.interaction),
        external_id: c.external_id.clone(),
        channel: ChannelKind::new(crate::conversations::CHANNEL),
        media: Media::Conversation,
        route: Route::queue(view.queue),
        contact: Contact {
            display_name: Some(customer_name(psid, c)),
            addresses: vec![Address::new(Address::SOCIAL, format!("facebook:{psid}"))],
        },
        subject: Some(format!("Messenger: {}", customer_name(psid, c))),
        case_data: case_data(psid, c, view),
        actions: vec![],
        priority: 0,
    }
}

pub(crate) fn message(psid: &str, c: &Conversation, line: &Line) -> MessageReceived {
    let from = match line.author {
        Author::Customer => customer(psid, c),
        Author::PageInbox => Party {
            id: "page-inbox".into(),
            role: Party::AGENT.into(),
            display_name: "Page inbox".into(),
            address: None,
        },
    };
    let mut text = line.text.clone();
    for a in line.attachments.iter().filter(|a| a.file.is_none()) {
        // Not downloaded: at least the kind and Meta's link.
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "[{}] {}",
            a.kind,
            a.url.as_deref().unwrap_or("(no link)")
        ));
    }
    MessageReceived {
        interaction: InteractionId::new(&c.interaction),
        from,
        message: MessageContent {
            id: line.mid.clone(),
            text,
            attachments: line
                .attachments
                .iter()
                .filter_map(|a| a.file.clone())
                .collect(),
        },
    }
}

fn field(key: &str, label: &str, value: String) -> CaseField {
    CaseField {
        key: key.into(),
        label: Some(label.into()),
        value,
    }
}

/// The case data the agent sees: who, the reply window, the last button payload, receipts.
pub fn case_data(psid: &str, c: &Conversation, view: &View<'_>) -> Vec<CaseField> {
    let window = ReplyWindow::at(c.last_customer_ms, view.now_ms, view.human_agent_tag);
    let mut fields = vec![
        field("facebook.psid", "Messenger id", psid.to_string()),
        field(
            "facebook.window",
            "Reply window",
            window.describe(view.now_ms),
        ),
    ];
    if let Some(payload) = &c.last_payload {
        fields.push(field("facebook.payload", "Button payload", payload.clone()));
    }
    if c.read_ms > 0 {
        fields.push(field(
            "facebook.receipt",
            "Customer",
            format!("read, {} ago", span(view.now_ms.saturating_sub(c.read_ms))),
        ));
    } else if c.delivered_ms > 0 {
        fields.push(field(
            "facebook.receipt",
            "Customer",
            format!(
                "delivered, {} ago",
                span(view.now_ms.saturating_sub(c.delivered_ms))
            ),
        ));
    }
    fields
}

fn case_data_event(psid: &str, c: &Conversation, view: &View<'_>) -> Event {
    Event::CaseDataChanged(CaseDataChanged {
        interaction: InteractionId::new(&c.interaction),
        case_data: case_data(psid, c, view),
    })
}

/// What a reply may be now (plugin-api 1.2): the window, its end, the length limit.
pub fn rules(c: &Conversation, view: &View<'_>) -> ConversationRules {
    let window = ReplyWindow::at(c.last_customer_ms, view.now_ms, view.human_agent_tag);
    let closes = match window {
        ReplyWindow::Standard { closes_at_ms } | ReplyWindow::HumanAgent { closes_at_ms } => {
            Some(closes_at_ms)
        }
        ReplyWindow::Closed { .. } => None,
    };
    ConversationRules {
        interaction: InteractionId::new(&c.interaction),
        can_reply: window.messaging().is_some(),
        reason: format!("Reply window {}", window.describe(view.now_ms)),
        window_closes_at: closes,
        max_length: Some(MAX_TEXT),
        counting: LengthCounting::Characters,
        public: false,
    }
}

/// The latest receipt (plugin-api 1.2), when the customer's device sent one.
pub fn receipt(c: &Conversation) -> Option<Receipt> {
    let (state, up_to) = if c.read_ms > 0 {
        (ReceiptState::Read, c.read_ms)
    } else if c.delivered_ms > 0 {
        (ReceiptState::Delivered, c.delivered_ms)
    } else {
        return None;
    };
    Some(Receipt {
        interaction: InteractionId::new(&c.interaction),
        state,
        message: None,
        up_to: Some(up_to),
    })
}

/// Everything the agent sees beside the messages: the case data, the reply rules and the latest
/// receipt (the same facts twice until every desk renders the 1.2 events).
pub(crate) fn shown(psid: &str, c: &Conversation, view: &View<'_>) -> Vec<Event> {
    let mut events = vec![
        case_data_event(psid, c, view),
        Event::ConversationRules(rules(c, view)),
    ];
    events.extend(receipt(c).map(Event::Receipt));
    events
}
