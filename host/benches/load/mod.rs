//! What the core benchmarks share: a team of 1,000 chat agents and the chats they get.

use agentdesk_host::AdminConfig;
use agentdesk_host::core::Policy;
use plugin_api::{
    ChannelKind, Contact, EndReason, Ended, Event, InteractionId, Media, Offer, Route,
};

pub const AGENTS: usize = 1_000;

/// The id of agent `n` (`a0000` …).
pub fn agent_id(n: usize) -> String {
    format!("a{n:04}")
}

/// `AGENTS` agents on chat, capacity 10 each, answering automatically.
pub fn policy() -> Policy {
    let mut text = String::from("[channels.chat]\ncapacity = 10\n");
    for n in 0..AGENTS {
        text.push_str(&format!(
            "[[agents]]\nid = \"{}\"\nname = \"Agent {n}\"\nchannels = [\"chat\"]\nauto_answer = [\"chat\"]\n",
            agent_id(n)
        ));
    }
    let config = AdminConfig::parse(&text, "bench").expect("config");
    Policy::from_config(&config, &["chat".to_string()])
}

/// Chat `c-n` arriving in the default queue.
pub fn offer(n: u64) -> Event {
    Event::Offer(Offer {
        interaction: InteractionId::new(format!("c-{n}")),
        external_id: format!("c-{n}"),
        channel: ChannelKind::new("chat"),
        media: Media::Conversation,
        route: Route::queue("default"),
        contact: Contact::default(),
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    })
}

/// The customer of chat `c-n` leaving.
pub fn ended(n: u64) -> Event {
    Event::Ended(Ended {
        interaction: InteractionId::new(format!("c-{n}")),
        reason: EndReason::ContactLeft,
        detail: String::new(),
    })
}

/// This process's peak resident memory (VmHWM) in KiB; 0 where /proc does not say.
pub fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
