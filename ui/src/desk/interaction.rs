//! The Interactions tab: the list of open interactions, the selected one's view fitted to its
//! medium (conversation, email, call, document, co-browse), and what can be done from it: party
//! actions, consult / conference / transfer, hold, end, Mark Done with a wrap-up code, workbin,
//! the plugin's custom actions and case data, the contact's history.

use super::inflight::{After, Spot};
use super::transcript::outbound;
use super::{Desk, text};
use agentdesk_client::{AgentCommand, Interact, InteractionState, InteractionView};
use eframe::egui;
use plugin_api::{Address, ChannelKind, Media, MediaState, Route};

/// Transcript rows are one line high (long messages are cut, the whole text is on hover), so the
/// list is virtualised: only visible rows are laid out, however long the transcript.
/// Lines fetched per query when a transcript grows.
const PAGE: usize = 2_000;

impl Desk {
    pub(super) fn work(&mut self, ui: &mut egui::Ui) {
        let list: Vec<InteractionView> = self.snap.interactions.clone();
        egui::Panel::left("interaction-list")
            .resizable(true)
            .default_size(220.0)
            .show(ui, |ui| self.work_list(ui, &list));
        let Some(i) = self
            .selected
            .and_then(|k| list.iter().find(|i| i.key == k))
            .cloned()
        else {
            ui.centered_and_justified(|ui| ui.label("No interaction open"));
            return;
        };
        egui::Panel::top("interaction-tabs").show(ui, |ui| self.work_tabs(ui, &list, i.key));
        egui::Panel::right("contact-history")
            .resizable(true)
            .default_size(220.0)
            .show(ui, |ui| self.contact_history(ui, &i));
        egui::Panel::top("interaction-head").show(ui, |ui| self.head(ui, &i));
        egui::Panel::bottom("interaction-actions").show(ui, |ui| self.actions(ui, &i));
        match i.media {
            Media::Call => self.call(ui, &i),
            Media::Email => self.email(ui, &i),
            Media::Document => self.document(ui, &i),
            Media::Cobrowse => self.cobrowse(ui, &i),
            _ => self.conversation(ui, &i),
        }
    }

    /// Fetches the transcript lines the snapshot says exist and the view has not got yet, one
    /// page at a time; lines come in a later frame.
    pub(super) fn refresh_transcript(&mut self, i: &InteractionView) {
        let view = self.views.entry(i.key).or_default();
        if let Some(coming) = &mut view.lines_coming {
            match coming.poll() {
                None => return,
                Some(Ok(lines)) => {
                    view.lines.extend(lines);
                    // What was there when the desk first looked counts as seen.
                    view.seen.get_or_insert(view.lines.len());
                }
                Some(Err(e)) => self.error = Some(format!("transcript of #{}: {e}", i.key)),
            }
            view.lines_coming = None;
            return;
        }
        let have = view.lines.len();
        if have < i.detail.lines {
            view.lines_coming = Some(self.client.live_lines(i.key, have, PAGE));
        }
    }

    fn head(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(format!("#{} {} with {}", i.key, i.channel, contact_name(i)));
            ui.label(text::interaction_state(&i.state));
            if i.never_saved {
                ui.strong("not saved").on_hover_text(
                    "Internal IM is never saved: it lives only on the screens that show it, \
                     history never lists it, and it closes if the hub restarts.",
                );
            }
            if i.held {
                ui.strong("on hold");
            }
            if let Some(about) = i.consult_about {
                ui.label(format!("consultation about #{about}"));
            }
            if !i.conference.is_empty() {
                ui.label(format!("conference with {}", i.conference.join(", ")));
            }
            for linked in &i.linked {
                ui.label(format!("linked with #{linked}"));
            }
        });
        if let Some(subject) = &i.subject {
            ui.label(format!("Subject: {subject}"));
        }
        if let Some(notice) = &i.detail.notice {
            ui.colored_label(ui.visuals().error_fg_color, notice);
        }
        if !i.detail.case_data.is_empty() {
            super::links::case_data_grid(ui, i.key, &i.detail.case_data);
        }
    }

    fn actions(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let key = i.key;
        let spot = Spot::Interaction(key);
        let mine = i.owner.as_deref() == Some(self.snap.agent.as_str());
        let active = i.state == InteractionState::Active;
        self.spot_status(ui, &spot);
        ui.horizontal_wrapped(|ui| {
            // Party actions: every number and address of the contact starts the other channel.
            ui.menu_button("Party actions", |ui| {
                if i.contact.addresses.is_empty() {
                    ui.label("no number or address known");
                }
                for address in i.contact.addresses.clone() {
                    if let Some((verb, channel)) = outbound(&address)
                        && ui.button(format!("{verb} {}", address.value)).clicked()
                    {
                        self.start_outbound(channel, address, key);
                        ui.close();
                    }
                }
            });
            // Only what the interaction's channel plugin declared is offered.
            let (hold, hold_kind) = if i.held {
                ("Resume", "resume")
            } else {
                ("Hold", "hold")
            };
            if active && mine && i.supports(hold_kind) && ui.button(hold).clicked() {
                let command = if i.held {
                    AgentCommand::Resume { key }
                } else {
                    AgentCommand::Hold { key }
                };
                self.send(spot.clone(), hold, command, After::Nothing);
            }
            if active && mine && ui.button("End").on_hover_text("F4").clicked() {
                self.send(
                    spot.clone(),
                    "End",
                    AgentCommand::End { key },
                    After::Nothing,
                );
            }
            if matches!(i.media, Media::Email | Media::Document)
                && active
                && mine
                && i.supports("put-in-workbin")
                && ui.button("Put in workbin").clicked()
            {
                let command = AgentCommand::Park {
                    key,
                    workbin: "default".into(),
                };
                self.send(spot.clone(), "Put in workbin", command, After::Nothing);
            }
            if matches!(i.state, InteractionState::InWorkbin { .. })
                && ui.button("Take from workbin").clicked()
            {
                let command = AgentCommand::Unpark { key };
                self.send(spot.clone(), "Take from workbin", command, After::Nothing);
            }
            if active && mine && i.consult_about.is_none() {
                self.consult_controls(ui, i);
            }
            if let Some(about) = i.consult_about
                && !mine
            {
                // The agent who asked for this consultation decides what becomes of it.
                if i.supports("conference") && ui.button("Conference in").clicked() {
                    let command = AgentCommand::Conference { consultation: key };
                    self.send(spot.clone(), "Conference in", command, After::Open(about));
                }
                if i.supports("transfer") && ui.button("Transfer to colleague").clicked() {
                    let command = AgentCommand::TransferAfterConsultation { consultation: key };
                    self.send(
                        spot.clone(),
                        "Transfer to colleague",
                        command,
                        After::Nothing,
                    );
                }
                if ui.button("End consultation").clicked() {
                    let command = AgentCommand::EndConsultation { consultation: key };
                    self.send(spot.clone(), "End consultation", command, After::Nothing);
                }
            }
            if !mine && i.conference.contains(&self.snap.agent) && ui.button("Leave").clicked() {
                let command = AgentCommand::LeaveConference { key };
                self.send(spot.clone(), "Leave", command, After::Nothing);
            }
            for action in i.detail.actions.clone() {
                if ui
                    .add_enabled(action.enabled, egui::Button::new(&action.label))
                    .clicked()
                {
                    let act = Interact::Action(action.id.clone());
                    self.act(spot.clone(), &action.label, key, act);
                }
            }
            if i.state == InteractionState::Ended && mine {
                self.mark_done_controls(ui, key);
            }
        });
    }

    fn consult_controls(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let key = i.key;
        let me = self.snap.agent.clone();
        let colleagues: Vec<(String, String)> = self
            .client
            .info()
            .agents
            .iter()
            .filter(|(id, _)| *id != me)
            .cloned()
            .collect();
        let view = self.views.entry(key).or_default();
        let chosen = view.colleague.clone();
        egui::ComboBox::new(("colleague", key), "Colleague")
            .selected_text(
                chosen
                    .as_ref()
                    .and_then(|c| colleagues.iter().find(|(id, _)| id == c))
                    .map_or("none".to_string(), |(_, name)| name.clone()),
            )
            .show_ui(ui, |ui| {
                for (id, name) in &colleagues {
                    ui.selectable_value(&mut view.colleague, Some(id.clone()), name);
                }
            });
        if i.supports("consult")
            && ui
                .add_enabled(chosen.is_some(), egui::Button::new("Consult"))
                .clicked()
            && let Some(colleague) = chosen.clone()
        {
            let command = AgentCommand::Consult { key, colleague };
            self.send(Spot::Interaction(key), "Consult", command, After::Nothing);
        }
        // An IM with the colleague about this interaction: they see its subject and case data,
        // the customer sees nothing of it.
        let has_im = self
            .snap
            .channels
            .iter()
            .any(|c| c.channel == ChannelKind::IM);
        if has_im
            && i.channel != ChannelKind::IM
            && ui
                .add_enabled(chosen.is_some(), egui::Button::new("Consult by IM"))
                .clicked()
            && let Some(colleague) = chosen.clone()
        {
            let command = AgentCommand::StartOutbound {
                channel: ChannelKind::IM.into(),
                to: Address::new(Address::AGENT, colleague),
                from: Some(key),
            };
            self.send(
                Spot::Interaction(key),
                "Consult by IM",
                command,
                After::Nothing,
            );
        }
        let label = ui.label("Transfer to");
        let view = self.views.entry(key).or_default();
        ui.add(
            egui::TextEdit::singleline(&mut view.transfer_to)
                .hint_text("queue, agent or number")
                .desired_width(100.0),
        )
        .labelled_by(label.id);
        let to = view.transfer_to.trim().to_string();
        if ui
            .add_enabled(!to.is_empty(), egui::Button::new("Blind transfer"))
            .clicked()
        {
            let route = if self.client.info().agents.iter().any(|(id, _)| *id == to) {
                Route::agent(to)
            } else if is_dialable(&to) {
                // An agent's extension is routed inside; any other number or SIP address is
                // dialled out by the channel (calls only).
                Route::extension(to)
            } else {
                Route::queue(to)
            };
            let command = AgentCommand::Transfer { key, to: route };
            self.send(
                Spot::Interaction(key),
                "Blind transfer",
                command,
                After::Nothing,
            );
        }
    }

    fn mark_done_controls(&mut self, ui: &mut egui::Ui, key: u64) {
        let codes = self.client.info().wrap_up_codes.clone();
        let required = self.client.info().wrap_up_required;
        let view = self.views.entry(key).or_default();
        if !codes.is_empty() {
            let label = if required {
                "Wrap-up code (required)"
            } else {
                "Wrap-up code"
            };
            egui::ComboBox::new(("wrap-up", key), label)
                .selected_text(view.wrap_up.clone().unwrap_or_else(|| "none".into()))
                .show_ui(ui, |ui| {
                    for (code, label) in &codes {
                        let text = if label.is_empty() { code } else { label };
                        ui.selectable_value(&mut view.wrap_up, Some(code.clone()), text);
                    }
                });
        }
        let wrap_up = view.wrap_up.clone();
        if ui
            .add_enabled(
                !required || wrap_up.is_some(),
                egui::Button::new("Mark Done"),
            )
            .on_hover_text("F9")
            .clicked()
        {
            let command = AgentCommand::MarkDone {
                key,
                wrap_up,
                next: None,
            };
            self.send(Spot::Interaction(key), "Mark Done", command, After::Nothing);
        }
    }

    pub(super) fn start_outbound(&mut self, channel: &str, to: Address, from: u64) {
        let what = format!("{channel} {}", to.value);
        let command = AgentCommand::StartOutbound {
            channel: channel.into(),
            to,
            from: Some(from),
        };
        self.send(Spot::Interaction(from), &what, command, After::Nothing);
    }

    /// A transcript (virtualised rows) with links on numbers and addresses, and a composer.
    fn conversation(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let key = i.key;
        let rules = i.detail.rules.as_ref();
        let writable = i.state == InteractionState::Active
            && i.supports("send-message")
            && rules.is_none_or(|r| r.can_reply);
        // Typing is sent only to a channel that declared it.
        let tells_typing = i.supports("set-typing");
        egui::Panel::bottom(("composer", key)).show(ui, |ui| {
            if !i.detail.typing.is_empty() {
                ui.label(format!("{} typing", i.detail.typing.join(", ")));
            }
            super::limits::notice(ui, rules);
            super::limits::receipt(ui, i.detail.receipt.as_ref());
            let id = ui.make_persistent_id(("composer", key));
            // Enter sends, Shift+Enter starts a new line: take a plain Enter before the text
            // field sees it. While the composer lists standard responses (`/`), Enter takes the
            // first one instead.
            let mut entered = writable
                && ui.memory(|m| m.has_focus(id))
                && ui.input_mut(|input| {
                    let before = input.events.len();
                    input.events.retain(|e| {
                        !matches!(
                            e,
                            egui::Event::Key { key: egui::Key::Enter, pressed: true, modifiers, .. }
                                if !modifiers.shift
                        )
                    });
                    input.events.len() != before
                });
            if self.response_picker(ui, i, entered) {
                entered = false;
            }
            let filled = self.unfilled_notice(ui, key);
            ui.horizontal(|ui| {
                let label = ui.label("Message");
                let view = self.views.entry(key).or_default();
                ui.add_enabled(
                    writable,
                    egui::TextEdit::multiline(&mut view.composer)
                        .id(id)
                        .hint_text(
                            "Type a message (Enter sends, Shift+Enter new line, / responses)",
                        )
                        .desired_rows(2)
                        .desired_width(ui.available_width() - 130.0),
                )
                .labelled_by(label.id);
                let fits = super::limits::counter(ui, rules, &view.composer) && filled;
                let typing = !view.composer.is_empty();
                let typing_changed = typing != view.typing_sent;
                let clicked = ui
                    .add_enabled(writable && fits, egui::Button::new("Send"))
                    .clicked();
                if typing_changed && tells_typing {
                    view.typing_sent = typing;
                    let act = Interact::Typing(typing);
                    self.act(Spot::Composer(key), "Typing", key, act);
                }
                if (clicked || entered) && fits {
                    self.send_composed(key);
                }
            });
            self.spot_status(ui, &Spot::Composer(key));
        });
        self.transcript(ui, key);
    }

    fn send_composed(&mut self, key: u64) {
        let view = self.views.entry(key).or_default();
        let text = view.composer.trim().to_string();
        if text.is_empty() {
            return;
        }
        let id = self.client.next_id();
        let answer = self.client.send_message(id, key, &text);
        let after = After::ClearComposer(key, text);
        self.track(Spot::Composer(key), "Send", answer, after);
    }

    fn email(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        ui.label(format!(
            "From: {}",
            i.contact
                .addresses
                .iter()
                .find(|a| a.kind == Address::EMAIL)
                .map_or(contact_name(i), |a| a.value.clone())
        ));
        let attachments: Vec<String> = self
            .views
            .get(&i.key)
            .into_iter()
            .flat_map(|v| &v.lines)
            .flat_map(|l| &l.attachments)
            .map(|a| format!("{} ({})", a.name, a.content_type))
            .collect();
        if !attachments.is_empty() {
            ui.label(format!("Attachments: {}", attachments.join(", ")));
        }
        ui.horizontal(|ui| {
            for (id, label) in [("reply-all", "Reply all"), ("forward", "Forward")] {
                // The email plugin supplies the quoted original for these.
                if i.detail.actions.iter().all(|a| a.id != id) && ui.button(label).clicked() {
                    let act = Interact::Action(id.into());
                    self.act(Spot::Interaction(i.key), label, i.key, act);
                }
            }
        });
        // Replying is writing in the conversation of the email thread.
        self.conversation(ui, i);
    }

    fn call(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let now = self.now();
        let key = i.key;
        let state = match i.detail.media_state {
            // The channel's last media state is stale once the call is over.
            _ if i.ended_at.is_some() => text::interaction_state(&i.state),
            Some(MediaState::Ringing) => "ringing",
            Some(MediaState::Dialing) => "dialing",
            Some(MediaState::Connected) => "connected",
            Some(MediaState::Held) => "held",
            Some(MediaState::Other) | None => text::interaction_state(&i.state),
        };
        ui.heading(format!("Call: {state}"));
        self.cobrowse_code(ui, i);
        if let Some(accepted) = i.accepted_at {
            let until = i.ended_at.unwrap_or(now);
            ui.label(format!(
                "duration {}",
                text::duration(until.saturating_sub(accepted))
            ));
        }
        let live = i.state == InteractionState::Active;
        if !i.supports("send-dtmf") {
            return;
        }
        ui.label("Keypad");
        egui::Grid::new(("keypad", key)).show(ui, |ui| {
            for row in ["123", "456", "789", "*0#"] {
                for digit in row.chars() {
                    if ui
                        .add_enabled(live, egui::Button::new(digit.to_string()))
                        .clicked()
                    {
                        self.views.entry(key).or_default().dtmf.push(digit);
                        let act = Interact::Dtmf(digit.to_string());
                        self.act(Spot::Interaction(key), "Keypad", key, act);
                    }
                }
                ui.end_row();
            }
        });
        if let Some(view) = self.views.get(&key)
            && !view.dtmf.is_empty()
        {
            ui.label(format!("sent: {}", view.dtmf));
        }
    }

    fn cobrowse(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let state = match i.detail.media_state {
            Some(MediaState::Connected) => "session live",
            Some(MediaState::Held) => "session paused",
            _ => text::interaction_state(&i.state),
        };
        ui.heading(format!("Co-browse: {state}"));
        self.transcript(ui, i.key);
    }
}

/// A phone number, an extension or a SIP address (what a blind transfer can dial).
fn is_dialable(to: &str) -> bool {
    to.starts_with("sip:")
        || (to.chars().any(|c| c.is_ascii_digit())
            && to
                .chars()
                .all(|c| c.is_ascii_digit() || " +-()*#.".contains(c)))
}

/// The contact's name, else their first address.
pub(super) fn contact_name(i: &InteractionView) -> String {
    i.contact
        .display_name
        .clone()
        .or_else(|| i.contact.addresses.first().map(|a| a.value.clone()))
        .unwrap_or_else(|| "unknown contact".into())
}
