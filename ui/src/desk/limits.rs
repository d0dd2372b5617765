//! What a channel allows in a reply now (plugin-api 1.2 `conversation-rules`, as the core passes
//! them on): the composer shows a character counter where the channel limits a reply's length,
//! counted the channel's way, and says when no reply can be sent.

use super::look::{self, Look};
use eframe::egui;
use plugin_api::{ConversationRules, LengthCounting, Receipt, ReceiptState};

/// How long `text` is for the channel, counted as plugin-api counts it for the plugin too
/// (characters, or X's weighted length); `None` for a count this build does not know (the
/// channel judges).
pub fn length(counting: LengthCounting, text: &str) -> Option<usize> {
    match counting {
        LengthCounting::Other => None,
        known => Some(known.length(text)),
    }
}

/// Draws the counter ("12/280", red past the limit) when the channel limits length; whether
/// `text` may be sent.
pub fn counter(ui: &mut egui::Ui, rules: Option<&ConversationRules>, text: &str) -> bool {
    let Some(rules) = rules else {
        return true;
    };
    let Some(max) = rules.max_length.map(|m| m as usize) else {
        return true;
    };
    match length(rules.counting, text) {
        Some(n) if n > max => {
            look::coloured(ui, Look::NotReady, format!("{n}/{max}"))
                .on_hover_text("Too long for this channel: shorten it to send");
            false
        }
        Some(n) => {
            ui.label(format!("{n}/{max}"));
            true
        }
        None => {
            ui.label(format!("limit {max}"))
                .on_hover_text("The channel counts length its own way");
            true
        }
    }
}

/// How far the customer got with our messages (plugin-api 1.2 `receipt`), in words.
pub fn receipt_words(receipt: &Receipt) -> &'static str {
    match receipt.state {
        ReceiptState::Read => "Read by the customer",
        ReceiptState::Delivered => "Delivered to the customer",
        ReceiptState::Other => "The channel reported on delivery",
    }
}

/// Says how far the customer got with our messages, when the channel tells.
pub fn receipt(ui: &mut egui::Ui, receipt: Option<&Receipt>) {
    if let Some(receipt) = receipt {
        ui.weak(receipt_words(receipt));
    }
}

/// Says when the channel takes no reply now, or what its reply window is.
pub fn notice(ui: &mut egui::Ui, rules: Option<&ConversationRules>) {
    let Some(rules) = rules else {
        return;
    };
    if !rules.can_reply {
        let why = if rules.reason.is_empty() {
            "the channel takes no reply now"
        } else {
            rules.reason.as_str()
        };
        look::coloured(ui, Look::NotReady, format!("Replies are closed: {why}"));
    } else if !rules.reason.is_empty() {
        ui.label(&rules.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_counted_the_channels_way() {
        assert_eq!(length(LengthCounting::Characters, "héllo 你好"), Some(8));
        assert_eq!(length(LengthCounting::XWeighted, "héllo 你好"), Some(10));
        assert_eq!(
            length(
                LengthCounting::XWeighted,
                "see https://example.com/a/very/long/path"
            ),
            Some(4 + 23)
        );
        assert_eq!(length(LengthCounting::Other, "abc"), None);
    }
}
