//! Standard responses in the composer: typing `/` and a few letters lists the responses of the
//! interaction's queue whose name, category or text match; choosing one puts its text in the
//! composer, placeholders filled in, for the agent to edit before sending. A placeholder the desk
//! cannot fill stays visible in the text and holds Send back until the agent replaces it: never
//! sent silently empty.

use super::Desk;
use agentdesk_client::{InteractionView, StandardResponse};
use eframe::egui;
use plugin_api::Route;

/// Responses listed at once.
const SHOWN: usize = 8;

/// A response's text with the placeholders it knows filled in; the ones it does not know (as
/// written, braces included), which stay in the text.
pub fn fill(text: &str, contact: Option<&str>, agent: &str) -> (String, Vec<String>) {
    let first = |name: &str| name.split_whitespace().next().unwrap_or(name).to_string();
    let mut out = String::new();
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let whole = &after[..=close];
        let value = match &whole[1..whole.len() - 1] {
            "agent.name" => Some(agent.to_string()),
            "agent.first_name" => Some(first(agent)),
            "contact.name" => contact.map(str::to_string),
            "contact.first_name" => contact.map(first),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                out.push_str(whole);
                if !unknown.iter().any(|u| u == whole) {
                    unknown.push(whole.to_string());
                }
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    (out, unknown)
}

/// Whether `r` is offered for `i` (its queue, or every queue).
fn offered_for(r: &StandardResponse, i: &InteractionView) -> bool {
    r.queues.is_empty()
        || i.route
            .as_ref()
            .is_some_and(|route| route.to == Route::QUEUE && r.queues.contains(&route.name))
}

impl Desk {
    /// Lists the matching responses while the composer of `i` starts with `/`; `pick_first`
    /// (Enter) takes the first. Returns whether the list was shown (Enter then sends nothing).
    pub(super) fn response_picker(
        &mut self,
        ui: &mut egui::Ui,
        i: &InteractionView,
        pick_first: bool,
    ) -> bool {
        let Some(view) = self.views.get(&i.key) else {
            return false;
        };
        let Some(wanted) = view.composer.strip_prefix('/') else {
            return false;
        };
        let wanted = wanted.trim().to_lowercase();
        let matches: Vec<StandardResponse> = self
            .client
            .info()
            .responses
            .iter()
            .filter(|r| offered_for(r, i))
            .filter(|r| {
                wanted.is_empty()
                    || [&r.name, &r.category, &r.text]
                        .iter()
                        .any(|t| t.to_lowercase().contains(&wanted))
            })
            .take(SHOWN)
            .cloned()
            .collect();
        let mut chosen = pick_first.then(|| matches.first().cloned()).flatten();
        ui.group(|ui| {
            if matches.is_empty() {
                ui.label("No standard response matches");
            }
            for r in &matches {
                let label = if r.category.is_empty() {
                    r.name.clone()
                } else {
                    format!("{}: {}", r.category, r.name)
                };
                if ui.button(label).on_hover_text(&r.text).clicked() {
                    chosen = Some(r.clone());
                }
            }
        });
        let Some(r) = chosen else {
            return true;
        };
        let contact = i.contact.display_name.clone();
        let (text, unknown) = fill(&r.text, contact.as_deref(), &self.snap.name);
        let view = self.views.entry(i.key).or_default();
        view.composer = text;
        view.unfilled = unknown;
        true
    }

    /// Says which placeholders are still to fill in the composer of `key`; whether it may be
    /// sent (none left).
    pub(super) fn unfilled_notice(&mut self, ui: &mut egui::Ui, key: u64) -> bool {
        let Some(view) = self.views.get_mut(&key) else {
            return true;
        };
        let composer = &view.composer;
        view.unfilled.retain(|p| composer.contains(p.as_str()));
        if view.unfilled.is_empty() {
            return true;
        }
        super::look::coloured(
            ui,
            super::look::Look::NotReady,
            format!(
                "Fill in {} before sending (the desk does not know it)",
                view.unfilled.join(", ")
            ),
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn known_placeholders_are_filled_and_unknown_ones_stay_visible() {
        let (text, unknown) = fill(
            "Hi {contact.first_name}, I'm {agent.first_name}. Order {order.id} ships {date}.",
            Some("Maria Lopez"),
            "Ann Smith",
        );
        assert_eq!(text, "Hi Maria, I'm Ann. Order {order.id} ships {date}.");
        assert_eq!(unknown, ["{order.id}", "{date}"]);
        let (text, unknown) = fill("Dear {contact.name}", None, "Ann");
        assert_eq!(
            text, "Dear {contact.name}",
            "no contact name: shown, not empty"
        );
        assert_eq!(unknown, ["{contact.name}"]);
        assert_eq!(fill("a { b", None, "Ann").0, "a { b");
    }
}
