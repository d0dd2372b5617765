//! Messenger's standard messaging window: replies within 24 hours of the customer's last
//! message; a human agent's reply up to 7 days with the `HUMAN_AGENT` tag (when Meta granted it
//! and the admin enabled it); nothing after. Pure time arithmetic on milliseconds.

/// 24 hours.
pub const STANDARD_MS: u64 = 24 * 3600 * 1000;
/// 7 days.
pub const HUMAN_AGENT_MS: u64 = 7 * 24 * 3600 * 1000;

/// What a reply may be now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyWindow {
    /// Within 24 hours: `messaging_type: RESPONSE`.
    Standard {
        /// When the 24 hours end.
        closes_at_ms: u64,
    },
    /// Between 24 hours and 7 days, tag enabled: `MESSAGE_TAG` + `HUMAN_AGENT`.
    HumanAgent {
        /// When the 7 days end.
        closes_at_ms: u64,
    },
    /// No reply is allowed.
    Closed {
        /// When it closed.
        closed_at_ms: u64,
    },
}

impl ReplyWindow {
    /// The window for a customer who last wrote at `last_customer_ms`.
    pub fn at(last_customer_ms: u64, now_ms: u64, human_agent_tag: bool) -> Self {
        let standard = last_customer_ms.saturating_add(STANDARD_MS);
        let human = last_customer_ms.saturating_add(HUMAN_AGENT_MS);
        if now_ms < standard {
            ReplyWindow::Standard {
                closes_at_ms: standard,
            }
        } else if human_agent_tag && now_ms < human {
            ReplyWindow::HumanAgent {
                closes_at_ms: human,
            }
        } else {
            ReplyWindow::Closed {
                closed_at_ms: if human_agent_tag { human } else { standard },
            }
        }
    }

    /// `messaging_type` and `tag` of a reply sent now, or `None` when none may be sent.
    pub fn messaging(&self) -> Option<(&'static str, Option<&'static str>)> {
        match self {
            ReplyWindow::Standard { .. } => Some(("RESPONSE", None)),
            ReplyWindow::HumanAgent { .. } => Some(("MESSAGE_TAG", Some("HUMAN_AGENT"))),
            ReplyWindow::Closed { .. } => None,
        }
    }

    /// What the agent reads, e.g. "open, closes in 3 h 10 min".
    pub fn describe(&self, now_ms: u64) -> String {
        match *self {
            ReplyWindow::Standard { closes_at_ms } => {
                format!(
                    "open, closes in {}",
                    span(closes_at_ms.saturating_sub(now_ms))
                )
            }
            ReplyWindow::HumanAgent { closes_at_ms } => format!(
                "24 hours passed: human agent replies only, until {} from now",
                span(closes_at_ms.saturating_sub(now_ms))
            ),
            ReplyWindow::Closed { closed_at_ms } => format!(
                "closed {} ago: Messenger allows no reply until the customer writes again",
                span(now_ms.saturating_sub(closed_at_ms))
            ),
        }
    }
}

/// "3 h 10 min", "2 d 4 h", "45 min", "under a minute".
pub fn span(ms: u64) -> String {
    let minutes = ms / 60_000;
    let (days, hours, mins) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    match (days, hours, mins) {
        (0, 0, 0) => "under a minute".into(),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600 * 1000;

    #[test]
    fn a_reply_within_24_hours_is_a_response_and_shows_the_time_left() {
        let window = ReplyWindow::at(0, 20 * HOUR + 50 * 60_000, false);
        assert_eq!(window.messaging(), Some(("RESPONSE", None)));
        assert_eq!(
            window.describe(20 * HOUR + 50 * 60_000),
            "open, closes in 3 h 10 min"
        );
    }

    #[test]
    fn after_24_hours_only_the_human_agent_tag_and_only_when_enabled() {
        let now = 30 * HOUR;
        assert_eq!(
            ReplyWindow::at(0, now, true).messaging(),
            Some(("MESSAGE_TAG", Some("HUMAN_AGENT")))
        );
        assert_eq!(ReplyWindow::at(0, now, false).messaging(), None);
        assert_eq!(ReplyWindow::at(0, 7 * 24 * HOUR, true).messaging(), None);
        assert_eq!(
            ReplyWindow::at(0, now, false).describe(now),
            "closed 6 h 0 min ago: Messenger allows no reply until the customer writes again"
        );
    }
}
