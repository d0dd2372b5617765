//! Requests from the far end (RFC 3261 §13-15 as a UAS): a new call rings and is offered to the
//! core; ACK, CANCEL, BYE, re-INVITE and NOTIFY act on the call they name. What the core then
//! decides is in `features`; answers to our own requests are in `outbound`.

use super::dialog::{Call, CallKind, Dialog, State, our_direction};
use super::transaction::ServerKey;
use super::{CHANNEL, Ua, field, now_stamp, with_scheme};
use crate::sdp::{self, Codec, Direction, Session};
use crate::settings::ForwardMode;
use crate::sip::{self, Message, SipUri};
use plugin_api::{
    Address, ChannelKind, ChannelStatus, Contact, EndReason, Event, InteractionId,
    Media as MediaKind, MediaState, Offer, Route,
};
use std::net::SocketAddr;

impl Ua {
    /// A new call's interaction id and number.
    pub(super) fn mint_call_id(&mut self) -> (String, u64) {
        self.next += 1;
        let n = self.next;
        (format!("call-{}-{n}", now_stamp()), n)
    }

    pub(super) fn on_invite(&mut self, invite: Message, from: SocketAddr) {
        if invite
            .call_id()
            .is_some_and(|c| self.by_call_id.contains_key(c))
        {
            // Same Call-ID, another branch: a loop or a fork we already serve.
            self.reply(&invite, 482, from);
            return;
        }
        // No body: a late offer; ours goes in the 200 OK and the answer comes in the ACK.
        let session = if invite.body.is_empty() {
            None
        } else {
            match Session::parse(&String::from_utf8_lossy(&invite.body)) {
                Ok(s) => Some(s),
                Err(e) => {
                    let response = Message::response(&invite, 488, Some(&sip::token()))
                        .with("Warning", format!("399 agentdesk \"{e}\""));
                    self.respond(&invite, response, from);
                    return;
                }
            }
        };
        let chosen = match &session {
            Some(session) => sdp::choose(&session.codecs, &self.codecs),
            None => Ok(self.codecs[0]),
        };
        let codec = match chosen {
            Ok(c) => c,
            Err(e) => {
                let response = Message::response(&invite, 488, Some(&sip::token()))
                    .with("Warning", format!("304 agentdesk \"{e}\""));
                self.respond(&invite, response, from);
                return;
            }
        };
        let user = invite
            .uri()
            .and_then(SipUri::parse)
            .and_then(|u| u.user)
            .unwrap_or_default();
        // Forwarding pushed by the core: answer for the agent without ringing them.
        if let Some(to) = self.forwards.get(&user).cloned() {
            match (self.settings.forwarding, self.extension_of_address(&to)) {
                (ForwardMode::Reroute, Some(extension)) => {
                    self.ring(invite, from, session, codec, Route::extension(extension));
                }
                _ => {
                    self.redirect(&invite, &to, from);
                }
            }
            return;
        }
        let route = if self.settings.agent_of_extension(&user).is_some() {
            Route::extension(user)
        } else {
            Route::queue(self.settings.queue.clone())
        };
        self.ring(invite, from, session, codec, route);
    }

    /// A colleague's extension that an address names, if it is one of ours.
    pub(super) fn extension_of_address(&self, address: &Address) -> Option<String> {
        let user = if address.kind == Address::SIP {
            SipUri::parse(&with_scheme(&address.value))?.user?
        } else {
            address.value.clone()
        };
        self.settings
            .agent_of_extension(&user)
            .map(|_| user.to_string())
    }

    pub(super) fn redirect(&mut self, invite: &Message, to: &Address, from: SocketAddr) {
        let uri = self
            .address_uri(to)
            .unwrap_or_else(|_| with_scheme(&to.value));
        let response =
            Message::response(invite, 302, Some(&sip::token())).with("Contact", format!("<{uri}>"));
        self.respond(invite, response, from);
    }

    /// Offers an inbound call to the core and rings.
    pub(super) fn ring(
        &mut self,
        invite: Message,
        from: SocketAddr,
        session: Option<Session>,
        codec: Codec,
        route: Route,
    ) {
        let (id, n) = self.mint_call_id();
        let local_tag = sip::token();
        let from_value = invite.header("From").unwrap_or_default().to_string();
        let caller_uri = sip::uri_of(&from_value).to_string();
        let display = sip::display_name_of(&from_value);
        let mut addresses = vec![Address::new(Address::SIP, caller_uri.clone())];
        if let Some(user) = SipUri::parse(&caller_uri).and_then(|u| u.user)
            && user
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit())
            && !user.is_empty()
        {
            addresses.push(Address::phone(user));
        }
        let contact = Contact {
            display_name: display.clone(),
            addresses,
        };
        let dialog = Dialog::answering(&invite, local_tag.clone(), from);
        let mut call = Call::new(
            id.clone(),
            n,
            CallKind::Customer,
            State::Ringing,
            dialog,
            from,
            codec,
        );
        call.telephone_event = session.as_ref().and_then(|s| s.telephone_event);
        call.remote_sdp = session;
        call.sdp_version = 1;
        call.invite = Some(invite.clone());
        self.by_call_id
            .insert(call.dialog.call_id.clone(), id.clone());
        self.calls.insert(id.clone(), call);
        self.respond(&invite, Message::response(&invite, 100, None), from);
        let ringing =
            Message::response(&invite, 180, Some(&local_tag)).with("Contact", self.contact());
        self.respond(&invite, ringing, from);
        let dialled = sip::uri_of(invite.header("To").unwrap_or_default()).to_string();
        self.emit(Event::Offer(Offer {
            interaction: InteractionId::new(&id),
            external_id: invite.call_id().unwrap_or_default().to_string(),
            channel: ChannelKind::new(CHANNEL),
            media: MediaKind::Call,
            route,
            contact,
            subject: Some(format!(
                "Call from {}",
                display.unwrap_or_else(|| caller_uri.clone())
            )),
            case_data: vec![
                field("from", "From", &caller_uri),
                field("to", "Dialled", &dialled),
            ],
            actions: vec![],
            priority: 0,
        }));
        self.state_changed(&id, MediaState::Ringing);
    }

    pub(super) fn on_ack(&mut self, ack: &Message) {
        let Some(id) = self.dialog_of(ack) else {
            return; // an ACK for a non-2xx final answer, absorbed by its transaction
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.unacked = None;
        if call.remote_sdp.is_some() || call.leg_started || call.state != State::Connected {
            return;
        }
        // The answer to our offer in a 200 OK to a late-offer INVITE.
        let answer = Session::parse(&String::from_utf8_lossy(&ack.body)).ok();
        let codec = answer
            .as_ref()
            .and_then(|a| sdp::choose(&a.codecs, &self.codecs).ok());
        let (Some(answer), Some(codec)) = (answer, codec) else {
            self.hang_up(&id);
            self.finish(
                &id,
                Some((EndReason::Failed, "no usable SDP answer in the ACK")),
            );
            return;
        };
        call.codec = codec;
        call.telephone_event = answer.telephone_event;
        call.remote_hold = !answer.direction.receives();
        call.remote_sdp = Some(answer);
        if let Err(e) = self.start_media(&id) {
            self.hang_up(&id);
            self.finish_with(
                &id,
                Some((EndReason::Failed, format!("cannot start audio: {e}"))),
            );
        }
    }

    pub(super) fn on_cancel(&mut self, cancel: Message, from: SocketAddr) {
        let id = cancel
            .call_id()
            .and_then(|c| self.by_call_id.get(c))
            .cloned();
        let ringing = id.as_ref().and_then(|id| {
            let call = self.calls.get(id)?;
            let invite = call.invite.as_ref()?;
            // The CANCEL names its INVITE by the INVITE's transaction key (RFC 3261 §9.2).
            let names_it =
                ServerKey::of(&cancel).map(|k| k.with_method("INVITE")) == ServerKey::of(invite);
            (call.state == State::Ringing && names_it).then(|| invite.clone())
        });
        let (Some(id), Some(invite)) = (id, ringing) else {
            self.reply(&cancel, 481, from);
            return;
        };
        self.reply(&cancel, 200, from);
        let local_tag = self.calls.get(&id).map(|c| c.dialog.local_tag.clone());
        let terminated = Message::response(&invite, 487, local_tag.as_deref());
        let to = self.calls.get(&id).map_or(from, |c| c.source);
        self.respond(&invite, terminated, to);
        self.finish(
            &id,
            Some((EndReason::ContactLeft, "the caller hung up while ringing")),
        );
    }

    pub(super) fn on_bye(&mut self, bye: Message, from: SocketAddr) {
        let Some(id) = self.dialog_of(&bye) else {
            self.reply(&bye, 481, from);
            return;
        };
        if !self.in_order(&id, &bye, from) {
            return;
        }
        self.reply(&bye, 200, from);
        // A BYE in the early dialog (while ringing) also ends the INVITE.
        if let Some(call) = self.calls.get(&id)
            && call.state == State::Ringing
            && let Some(invite) = call.invite.clone()
        {
            let (tag, to) = (call.dialog.local_tag.clone(), call.source);
            let response = Message::response(&invite, 487, Some(&tag));
            self.respond(&invite, response, to);
        }
        let transferred = self.calls.get(&id).is_some_and(|c| c.transfer.is_some());
        let reason = if transferred {
            (EndReason::TransferredAway, "transferred")
        } else {
            (EndReason::ContactLeft, "the far end hung up")
        };
        self.finish(&id, Some(reason));
    }

    pub(super) fn on_reinvite(&mut self, invite: Message, from: SocketAddr) {
        let Some(id) = self.dialog_of(&invite) else {
            self.reply(&invite, 481, from);
            return;
        };
        if !self.in_order(&id, &invite, from) {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.reinvite.is_some() || call.state != State::Connected {
            self.reply(&invite, 491, from);
            return;
        }
        let session = match Session::parse(&String::from_utf8_lossy(&invite.body)) {
            Ok(s) => s,
            Err(_) if invite.body.is_empty() => {
                // An offer-less re-INVITE: offer our current session again.
                let call = &self.calls[&id];
                Session {
                    rtp: call.remote_sdp.as_ref().map_or(from, |s| s.rtp),
                    codecs: vec![call.codec],
                    telephone_event: call.telephone_event,
                    direction: Direction::SendRecv,
                }
            }
            Err(_) => {
                self.reply(&invite, 488, from);
                return;
            }
        };
        let held = !session.direction.receives() || session.rtp.ip().is_unspecified();
        let (was_held, local_hold) = {
            let call = &self.calls[&id];
            (call.remote_hold, call.local_hold)
        };
        let ours = our_direction(session.direction, local_hold);
        if let Some(call) = self.calls.get_mut(&id) {
            call.remote_hold = held;
            call.remote_sdp = Some(session);
            call.sdp_version += 1;
            call.note_hold();
        }
        let body = self.local_sdp(&id, ours);
        let local_tag = self.calls[&id].dialog.local_tag.clone();
        let response = Message::response(&invite, 200, Some(&local_tag))
            .with("Contact", self.contact())
            .with_body("application/sdp", body.into_bytes());
        self.send_2xx(&id, &invite, response, from);
        self.apply_media(&id);
        if held != was_held {
            self.state_changed(
                &id,
                if held || local_hold {
                    MediaState::Held
                } else {
                    MediaState::Connected
                },
            );
        }
    }

    /// Sends a 2xx to an INVITE and retransmits it until the ACK (RFC 3261 §13.3.1.4).
    pub(super) fn send_2xx(
        &mut self,
        id: &str,
        invite: &Message,
        response: Message,
        to: SocketAddr,
    ) {
        let bytes = response.to_bytes();
        self.respond(invite, response, to);
        if let Some(call) = self.calls.get_mut(id) {
            call.unacked = Some(super::unacked(bytes, to));
        }
    }

    pub(super) fn on_notify(&mut self, notify: Message, from: SocketAddr) {
        let Some(id) = self.dialog_of(&notify) else {
            self.reply(&notify, 481, from);
            return;
        };
        self.reply(&notify, 200, from);
        let is_refer = notify
            .header("Event")
            .is_some_and(|e| e.trim().starts_with("refer"));
        if !is_refer {
            return;
        }
        let frag = String::from_utf8_lossy(&notify.body).to_string();
        let code: Option<u16> = frag
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        match code {
            Some(c) if (200..300).contains(&c) => self.transfer_done(&id),
            Some(c) if c >= 300 => self.transfer_failed(&id, &format!("the target answered {c}")),
            _ => {}
        }
    }

    pub(super) fn transfer_done(&mut self, id: &str) {
        let Some(transfer) = self.calls.get(id).and_then(|c| c.transfer.clone()) else {
            return;
        };
        self.hang_up(id);
        self.finish(id, Some((EndReason::TransferredAway, "transferred")));
        if let Some(consultation) = transfer.consultation {
            self.hang_up(&consultation);
            self.finish(
                &consultation,
                Some((EndReason::TransferredAway, "the customer was handed over")),
            );
        }
    }

    pub(super) fn transfer_failed(&mut self, id: &str, why: &str) {
        if let Some(call) = self.calls.get_mut(id) {
            call.transfer = None;
            call.transfers = call.transfers.saturating_sub(1);
        }
        self.emit(Event::ChannelStatus(ChannelStatus {
            healthy: true,
            detail: format!("transfer of {id} failed: {why}; the call stays with the agent"),
        }));
    }
}
