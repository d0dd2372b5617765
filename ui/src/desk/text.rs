//! How states and durations read on screen.

use agentdesk_client::{ChannelState, InteractionState, NextState};
use plugin_api::Media;

/// A channel state as the agent reads it.
pub fn channel_state(state: &ChannelState) -> String {
    match state {
        ChannelState::LoggedOff => "Logged off".into(),
        ChannelState::Ready => "Ready".into(),
        ChannelState::NotReady { reason } => format!("Not Ready ({reason})"),
        ChannelState::AfterCallWork { then, .. } => match then {
            NextState::Ready => "After Call Work, then Ready".into(),
            NextState::NotReady { reason } => format!("After Call Work, then Not Ready ({reason})"),
        },
        ChannelState::Pending { reason } => format!("Pending Not Ready ({reason})"),
    }
}

/// An interaction state as the agent reads it.
pub fn interaction_state(state: &InteractionState) -> &'static str {
    match state {
        InteractionState::Queued => "queued",
        InteractionState::Offered { .. } => "offered",
        InteractionState::Active => "active",
        InteractionState::Ended => "ended: mark done",
        InteractionState::InWorkbin { .. } => "in workbin",
        _ => "closed",
    }
}

/// A channel plugin's latest `channel-status` in words ("" when it reported none).
pub fn channel_health(status: Option<&plugin_api::ChannelStatus>) -> String {
    match status {
        None => String::new(),
        Some(s) if s.healthy => format!("ok: {}", s.detail),
        Some(s) => format!("trouble: {}", s.detail),
    }
}

/// A duration in milliseconds as `h:mm:ss` or `m:ss`.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A short label for a medium.
pub fn media(media: Media) -> &'static str {
    match media {
        Media::Call => "call",
        Media::Conversation => "conversation",
        Media::Email => "email",
        Media::Document => "document",
        Media::Cobrowse => "co-browse",
        _ => "interaction",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_clock_times() {
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(61_999), "1:01");
        assert_eq!(duration(3_725_000), "1:02:05");
    }

    #[test]
    fn pending_and_acw_say_what_comes_next() {
        let pending = ChannelState::Pending {
            reason: "Break".into(),
        };
        assert_eq!(channel_state(&pending), "Pending Not Ready (Break)");
        let acw = ChannelState::AfterCallWork {
            ends_at: Some(5),
            min_until: None,
            then: NextState::Ready,
        };
        assert_eq!(channel_state(&acw), "After Call Work, then Ready");
    }
}
