//! State at a glance: one colour per state, used the same way wherever a state shows (My
//! Channels, the status bar, the global control, the Team Communicator) and the window title that
//! sums the agent up ("Ready · 2 chats"). Colours and words only; the states are the core's.

use agentdesk_client::{AgentSnapshot, ChannelState, InteractionState, InteractionView};
use eframe::egui;
use plugin_api::Media;

/// The states an agent's channel (or the agent as a whole) can be seen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Look {
    /// Takes offers.
    Ready,
    /// Takes no offers, for a reason.
    NotReady,
    /// After-call work.
    AfterCallWork,
    /// Not Ready chosen while handling work (applies when the work ends).
    Pending,
    /// Not logged on.
    LoggedOff,
    /// Do Not Disturb: no offers on any channel.
    DoNotDisturb,
}

impl Look {
    /// Every look, in the order the agent guide lists them.
    pub const ALL: [Look; 6] = [
        Look::Ready,
        Look::NotReady,
        Look::AfterCallWork,
        Look::Pending,
        Look::LoggedOff,
        Look::DoNotDisturb,
    ];

    /// How a channel state looks.
    pub fn of(state: &ChannelState) -> Look {
        match state {
            ChannelState::LoggedOff => Look::LoggedOff,
            ChannelState::Ready => Look::Ready,
            ChannelState::NotReady { .. } => Look::NotReady,
            ChannelState::AfterCallWork { .. } => Look::AfterCallWork,
            ChannelState::Pending { .. } => Look::Pending,
        }
    }

    /// Its colour: green Ready, red Not Ready, amber after-call work, violet Pending, grey logged
    /// off, magenta Do Not Disturb. Chosen to stay apart in the light and the dark theme.
    pub fn colour(self) -> egui::Color32 {
        match self {
            Look::Ready => egui::Color32::from_rgb(40, 167, 69),
            Look::NotReady => egui::Color32::from_rgb(214, 57, 57),
            Look::AfterCallWork => egui::Color32::from_rgb(230, 145, 20),
            Look::Pending => egui::Color32::from_rgb(140, 100, 220),
            Look::LoggedOff => egui::Color32::from_rgb(128, 128, 128),
            Look::DoNotDisturb => egui::Color32::from_rgb(200, 40, 150),
        }
    }

    /// Its name, as the title and the global control say it.
    pub fn word(self) -> &'static str {
        match self {
            Look::Ready => "Ready",
            Look::NotReady => "Not Ready",
            Look::AfterCallWork => "After Call Work",
            Look::Pending => "Pending",
            Look::LoggedOff => "Logged off",
            Look::DoNotDisturb => "Do Not Disturb",
        }
    }
}

/// How the agent as a whole looks: Do Not Disturb overrides all; else Ready when any channel
/// takes offers, else after-call work, Pending, Not Ready, logged off (first found in that order).
pub fn overall(dnd: bool, channels: impl IntoIterator<Item = Look>) -> Look {
    if dnd {
        return Look::DoNotDisturb;
    }
    let looks: Vec<Look> = channels.into_iter().collect();
    [
        Look::Ready,
        Look::AfterCallWork,
        Look::Pending,
        Look::NotReady,
    ]
    .into_iter()
    .find(|l| looks.contains(l))
    .unwrap_or(Look::LoggedOff)
}

/// How the agent of `snap` looks as a whole.
pub fn agent(snap: &AgentSnapshot) -> Look {
    overall(snap.dnd, snap.channels.iter().map(|c| Look::of(&c.state)))
}

/// What a medium's interactions are called, one and several.
fn nouns(media: Media) -> (&'static str, &'static str) {
    match media {
        Media::Call => ("call", "calls"),
        Media::Conversation => ("chat", "chats"),
        Media::Email => ("email", "emails"),
        Media::Document => ("work item", "work items"),
        Media::Cobrowse => ("co-browse", "co-browses"),
        _ => ("interaction", "interactions"),
    }
}

/// The channel's icon: a short tag in a coloured box (egui's bundled fonts have no pictograms,
/// and a word reads the same for everyone).
pub fn icon(media: Media) -> &'static str {
    match media {
        Media::Call => "CALL",
        Media::Conversation => "CHAT",
        Media::Email => "MAIL",
        Media::Document => "DOC",
        Media::Cobrowse => "WEB",
        _ => "WORK",
    }
}

/// The fill of a channel icon's box.
pub const ICON_FILL: egui::Color32 = egui::Color32::from_rgb(55, 105, 175);

/// Draws a medium's icon.
pub fn media_icon(ui: &mut egui::Ui, media: Media) -> egui::Response {
    let text = egui::RichText::new(icon(media))
        .small()
        .strong()
        .color(egui::Color32::WHITE);
    egui::Frame::new()
        .fill(ICON_FILL)
        .corner_radius(3.0)
        .inner_margin(egui::Margin::symmetric(3, 1))
        .show(ui, |ui| ui.label(text))
        .inner
}

/// The work in hand, by medium: "2 chats · 1 call" (offers ringing are not counted; "" for none).
pub fn work(interactions: &[InteractionView]) -> String {
    let mut counts: Vec<(Media, usize)> = Vec::new();
    for i in interactions {
        if !matches!(i.state, InteractionState::Active | InteractionState::Ended) {
            continue;
        }
        match counts.iter_mut().find(|(m, _)| *m == i.media) {
            Some((_, n)) => *n += 1,
            None => counts.push((i.media, 1)),
        }
    }
    counts
        .iter()
        .map(|(media, n)| {
            let (one, many) = nouns(*media);
            format!("{n} {}", if *n == 1 { one } else { many })
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The window title: the agent's state and work first, so a glance at the task bar tells it
/// ("Ready · 2 chats — Ann · agentdesk").
pub fn title(snap: &AgentSnapshot) -> String {
    let state = agent(snap).word();
    let work = work(&snap.interactions);
    let head = if work.is_empty() {
        state.to_string()
    } else {
        format!("{state} · {work}")
    };
    format!("{head} — {} · agentdesk", snap.name)
}

/// A state in its colour, after a dot of that colour (the words stay for who cannot tell
/// colours).
pub fn chip(ui: &mut egui::Ui, look: Look, words: &str) -> egui::Response {
    let size = ui.text_style_height(&egui::TextStyle::Body);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(size * 0.8, size), egui::Sense::hover());
    ui.painter()
        .circle_filled(rect.center(), size * 0.3, look.colour());
    ui.label(egui::RichText::new(words).color(look.colour()))
}

/// Words in a state's colour (no dot).
pub fn coloured(ui: &mut egui::Ui, look: Look, words: impl Into<String>) -> egui::Response {
    ui.label(egui::RichText::new(words).color(look.colour()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_colour_of_its_own() {
        let colours: std::collections::BTreeSet<[u8; 4]> =
            Look::ALL.iter().map(|l| l.colour().to_array()).collect();
        assert_eq!(colours.len(), Look::ALL.len());
    }

    #[test]
    fn the_agent_is_ready_when_any_channel_is_and_dnd_overrides_everything() {
        assert_eq!(overall(false, [Look::NotReady, Look::Ready]), Look::Ready);
        assert_eq!(
            overall(false, [Look::NotReady, Look::AfterCallWork]),
            Look::AfterCallWork
        );
        assert_eq!(overall(false, [Look::LoggedOff]), Look::LoggedOff);
        assert_eq!(overall(false, []), Look::LoggedOff);
        assert_eq!(overall(true, [Look::Ready]), Look::DoNotDisturb);
    }
}
