//! Answers to our own requests (RFC 3261 §13.2 as a UAC: our INVITE, re-INVITEs, digest
//! retries) and what happens when none comes, the call's audio (SDP we send, the media legs), and the end of a call (BYE, CANCEL
//! or a final answer, then the call record to the core). Requests from the far end are in
//! `inbound`.

use super::dialog::{Call, CallKind, State, our_direction, resolve, route_set};
use super::transaction::Purpose;
use super::{Ua, UaError, field};
use crate::digest::Challenge;
use crate::media::LegParams;
use crate::sdp::{self, Codec, Direction, Session};
use crate::sip::{self, Message, SipUri};
use plugin_api::{
    Address, ChannelStatus, EndReason, Ended, Event, InteractionId, MediaState, Party, PartyJoined,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl Ua {
    /// A response: to one of our client transactions, or a retransmitted 2xx to our INVITE.
    pub(super) fn on_response(&mut self, response: Message, from: SocketAddr) {
        let Some(branch) = response.branch().map(String::from) else {
            self.drop_datagram(from, "a response without a Via branch");
            return;
        };
        let code = response.code().unwrap_or(0);
        // A CANCEL shares its INVITE's branch: its answer is not the INVITE's.
        if response.method() == Some("CANCEL") {
            return;
        }
        if !self.client.contains(&branch) {
            // A retransmitted 2xx to our INVITE: ACK again.
            if code / 100 == 2
                && response.method() == Some("INVITE")
                && let Some(call) = response
                    .call_id()
                    .and_then(|c| self.by_call_id.get(c))
                    .and_then(|id| self.calls.get(id))
                && let Some(ack) = call.ack.clone()
            {
                let peer = call.dialog.peer;
                self.send_to(&ack, peer);
            } else if code >= 200 {
                self.drop_datagram(from, &format!("a {code} for no transaction of ours"));
            }
            return;
        }
        if code < 200 {
            // Said again now: the core may not have known the call's id when it was dialled.
            if let Some(Purpose::Invite(id)) = self.client.provisional(&branch).cloned()
                && code > 100
            {
                self.state_changed(&id, MediaState::Dialing);
            }
            return;
        }
        let Some(tx) = self.client.finished(&branch) else {
            return;
        };
        match tx.purpose {
            Purpose::Invite(id) => self.invite_answered(&id, &response, tx.to),
            Purpose::ReInvite(id) => self.reinvite_answered(&id, &response, tx.to),
            Purpose::Refer(id) => {
                if code >= 300 {
                    self.transfer_failed(&id, &format!("REFER answered {code}"));
                }
            }
            Purpose::Register => self.register_answered(&response),
            Purpose::Bye => {}
        }
    }

    /// A request of ours got no final answer in time (Timers B, F, C).
    pub(super) fn client_timed_out(&mut self, purpose: Purpose, rang: bool, now: Instant) {
        match purpose {
            Purpose::Invite(id) => {
                if rang {
                    self.hang_up(&id); // rang too long: CANCEL
                }
                self.finish(&id, Some((EndReason::Failed, "no answer from the far end")))
            }
            Purpose::ReInvite(id) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.reinvite = None;
                }
            }
            Purpose::Refer(id) => self.transfer_failed(&id, "REFER timed out"),
            Purpose::Register => {
                if let Some(r) = self.registration.as_mut() {
                    r.next = Some(now + Duration::from_secs(30));
                    let detail = format!("registrar {} does not answer", r.uri);
                    self.emit(Event::ChannelStatus(ChannelStatus {
                        healthy: false,
                        detail,
                    }));
                }
            }
            Purpose::Bye => {}
        }
    }

    pub(super) fn ack_for(&self, call: &Call, response: &Message, branch: Option<&str>) -> Message {
        let uri = if branch.is_some() {
            call.invite
                .as_ref()
                .and_then(|i| i.uri())
                .unwrap_or(&call.dialog.remote_target)
                .to_string()
        } else {
            call.dialog.remote_target.clone()
        };
        let via = match branch {
            Some(branch) => self.via(branch),
            None => self.new_via(),
        };
        let cseq = response.cseq().map_or(call.dialog.local_cseq, |(n, _)| n);
        let mut ack = Message::request("ACK", &uri)
            .with("Via", via)
            .with("Max-Forwards", "70")
            .with("From", call.dialog.local.clone())
            .with(
                "To",
                response
                    .header("To")
                    .map_or_else(|| call.dialog.remote.clone(), String::from),
            )
            .with("Call-ID", call.dialog.call_id.clone())
            .with("CSeq", format!("{cseq} ACK"));
        // The ACK of a 2xx is a request of the dialog (§13.2.2.4); a non-2xx's follows its
        // INVITE (§17.1.1.3).
        if branch.is_none() {
            call.dialog.add_route(&mut ack);
        }
        ack
    }

    pub(super) fn invite_answered(&mut self, id: &str, response: &Message, to: SocketAddr) {
        let code = response.code().unwrap_or(0);
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if code >= 300 {
            let branch = call
                .invite
                .as_ref()
                .and_then(|i| i.branch())
                .map(String::from);
            let ack = self.ack_for(call, response, branch.as_deref());
            self.send_to(&ack.to_bytes(), to);
            if matches!(code, 401 | 407) && self.retry_with_credentials(id, response) {
                return;
            }
            let cancelled = code == 487;
            let detail = format!("{code} {}", sip::reason(code));
            let reason = if cancelled {
                (EndReason::AgentEnded, "cancelled before answer".to_string())
            } else {
                (EndReason::Failed, format!("the far end answered {detail}"))
            };
            self.finish_with(id, Some((reason.0, reason.1)));
            return;
        }
        // 2xx: the dialog is established.
        let remote_target = response
            .header("Contact")
            .map(|c| sip::uri_of(c).to_string())
            .unwrap_or_else(|| call.dialog.remote_target.clone());
        let route = route_set(response, true);
        let peer = if self.settings.outbound_proxy.is_some() {
            call.dialog.peer
        } else {
            let next_hop = route
                .first()
                .map(|r| sip::uri_of(r).to_string())
                .unwrap_or_else(|| remote_target.clone());
            SipUri::parse(&next_hop)
                .and_then(|u| resolve(&u.host, u.port.unwrap_or(5060)))
                .unwrap_or(call.dialog.peer)
        };
        let session = Session::parse(&String::from_utf8_lossy(&response.body));
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.dialog.remote = response
            .header("To")
            .map_or_else(|| call.dialog.remote.clone(), String::from);
        call.dialog.remote_tag = response.to_tag().map(String::from);
        call.dialog.remote_target = remote_target;
        call.dialog.peer = peer;
        call.dialog.route = route;
        let session = match session {
            Ok(s) => s,
            Err(_) => {
                let ack = self.ack_for(&self.calls[id], response, None);
                self.send_to(&ack.to_bytes(), peer);
                self.hang_up(id);
                self.finish(id, Some((EndReason::Failed, "no usable SDP answer")));
                return;
            }
        };
        let codec = sdp::choose(&session.codecs, &self.codecs).unwrap_or(Codec::Pcmu);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.codec = codec;
        call.telephone_event = session
            .telephone_event
            .and(Some(self.settings.dtmf_payload_type));
        call.remote_hold = !session.direction.receives();
        call.remote_sdp = Some(session);
        call.state = State::Connected;
        let ack = self.ack_for(&self.calls[id], response, None).to_bytes();
        self.send_to(&ack, peer);
        if let Some(call) = self.calls.get_mut(id) {
            call.ack = Some(ack);
        }
        if let Err(e) = self.start_media(id) {
            self.hang_up(id);
            self.finish_with(
                id,
                Some((EndReason::Failed, format!("cannot start audio: {e}"))),
            );
            return;
        }
        self.state_changed(id, MediaState::Connected);
        let (kind, remote, agent) = {
            let c = &self.calls[id];
            (c.kind.clone(), c.dialog.remote.clone(), c.agent.clone())
        };
        let role = match kind {
            CallKind::Customer => {
                // A call the agent dialled is bridged to their endpoint once answered.
                if let Some(agent) = agent {
                    self.rebridge(id, &agent);
                }
                Party::CUSTOMER
            }
            CallKind::Consultation { .. } => Party::COLLEAGUE,
            CallKind::Endpoint { .. } => return,
        };
        self.emit(Event::PartyJoined(PartyJoined {
            interaction: InteractionId::new(id),
            party: Party {
                id: sip::uri_of(&remote).to_string(),
                role: role.into(),
                display_name: sip::display_name_of(&remote)
                    .unwrap_or_else(|| sip::uri_of(&remote).to_string()),
                address: Some(Address::new(Address::SIP, sip::uri_of(&remote))),
            },
        }));
    }

    /// Sends our INVITE again with digest credentials (the registrar's) after a 401/407, once.
    pub(super) fn retry_with_credentials(&mut self, id: &str, response: &Message) -> bool {
        let code = response.code().unwrap_or(0);
        let (challenge_header, answer_header) = if code == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let Some(challenge) = response.header(challenge_header).and_then(Challenge::parse) else {
            return false;
        };
        let Some((username, password)) = self.registration.as_ref().and_then(|r| r.credentials())
        else {
            return false;
        };
        let via = self.new_via();
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        let Some(mut invite) = call.invite.clone() else {
            return false;
        };
        if invite.header(answer_header).is_some() {
            return false; // our credentials were refused already
        }
        let uri = invite.uri().unwrap_or_default().to_string();
        call.dialog.local_cseq += 1;
        invite.set("Via", via);
        invite.set("CSeq", format!("{} INVITE", call.dialog.local_cseq));
        let answer = challenge.answer("INVITE", &uri, &username, &password, 1, &sip::token());
        invite.headers.push((answer_header.to_string(), answer));
        call.invite = Some(invite.clone());
        let peer = call.dialog.peer;
        self.send_request(invite, peer, Purpose::Invite(id.into()));
        true
    }

    pub(super) fn reinvite_answered(&mut self, id: &str, response: &Message, to: SocketAddr) {
        let code = response.code().unwrap_or(0);
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let ack = self.ack_for(call, response, None);
        if code >= 300 {
            // Non-2xx ACKs reuse the INVITE's branch; a new one is harmless for our peers'
            // transaction matching only when it is a 2xx, so keep the original here.
            let branch = response.branch().map(String::from);
            let ack = self.ack_for(call, response, branch.as_deref());
            self.send_to(&ack.to_bytes(), to);
            if let Some(call) = self.calls.get_mut(id) {
                let wanted = call.reinvite.take();
                if wanted == Some(call.local_hold) {
                    call.local_hold = !call.local_hold;
                    call.note_hold();
                }
            }
            return;
        }
        self.send_to(&ack.to_bytes(), to);
        let session = Session::parse(&String::from_utf8_lossy(&response.body)).ok();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.ack = Some(ack.to_bytes());
        call.reinvite = None;
        if let Some(session) = session {
            call.remote_sdp = Some(session);
        }
        let held = call.local_hold || call.remote_hold;
        self.apply_media(id);
        self.state_changed(
            id,
            if held {
                MediaState::Held
            } else {
                MediaState::Connected
            },
        );
    }

    // ----- media ----------------------------------------------------------------------------

    pub(super) fn local_sdp(&mut self, id: &str, direction: Direction) -> String {
        let Some(call) = self.calls.get_mut(id) else {
            return String::new();
        };
        // An answer (or a later offer) names the negotiated codec; a first offer all of ours.
        let negotiated = call.remote_sdp.is_some();
        let session = Session {
            rtp: call.rtp,
            codecs: if negotiated {
                vec![call.codec]
            } else {
                self.codecs.clone()
            },
            telephone_event: if negotiated {
                call.telephone_event
            } else {
                Some(self.settings.dtmf_payload_type)
            },
            direction,
        };
        call.sdp_version += 1;
        session.render(call.n, call.sdp_version)
    }

    pub(super) fn leg_params(call: &Call) -> Option<LegParams> {
        let remote = call.remote_sdp.as_ref()?;
        let ours = our_direction(remote.direction, call.local_hold);
        Some(LegParams {
            remote: remote.rtp,
            codec: call.codec,
            telephone_event: call.telephone_event,
            send: ours.sends() && remote.direction.receives() && remote.rtp.port() != 0,
            receive: ours.receives() && remote.direction.sends(),
        })
    }

    pub(super) fn start_media(&mut self, id: &str) -> Result<(), UaError> {
        let Some(call) = self.calls.get_mut(id) else {
            return Ok(());
        };
        if call.remote_sdp.is_none() {
            return Ok(()); // a late offer: media starts when the ACK brings the answer
        }
        let Some(socket) = call.socket.take() else {
            return Ok(());
        };
        if let CallKind::Endpoint { about, .. } = &call.kind {
            // The agent's voice in the room of the call it carries; no room, no recording.
            let (n, params, about) = (call.n, Self::leg_params(call), about.clone());
            let Some(room) = self.calls.get(&about).map(|c| c.n) else {
                return Err(UaError::UnknownCall(about));
            };
            if let Some(params) = params {
                self.media.add_leg(n, room, socket, params)?;
                self.media.attach_voice(room, n);
            }
            if let Some(call) = self.calls.get_mut(id) {
                call.leg_started = true;
            }
            return Ok(());
        }
        let recording = if self.settings.record {
            let dir = self
                .settings
                .path_in(&self.data_dir, &self.settings.recordings);
            Some(dir.join(format!("{}.wav", call.id)))
        } else {
            None
        };
        call.recording = recording.clone();
        let (n, params) = (call.n, Self::leg_params(call));
        self.media.open_room(n, recording)?;
        if let Some(params) = params {
            self.media.add_leg(n, n, socket, params)?;
        }
        if let Some(voice) = self.voice_leg_of(id) {
            self.media.attach_voice(n, voice);
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.leg_started = true;
        }
        Ok(())
    }

    pub(super) fn apply_media(&mut self, id: &str) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if let Some(params) = Self::leg_params(call) {
            self.media.update_leg(call.n, params);
        }
        let agent_here = !call.local_hold && !call.parked;
        self.media.set_agent(call.n, agent_here);
    }

    // ----- ending ---------------------------------------------------------------------------

    /// Sends BYE (connected), CANCEL (dialing) or a final answer (ringing).
    pub(super) fn hang_up(&mut self, id: &str) {
        let via = self.new_via();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match call.state {
            State::Connected => {
                let bye = call.dialog.request("BYE", via);
                let peer = call.dialog.peer;
                self.send_request(bye, peer, Purpose::Bye);
            }
            State::Dialing => {
                let Some(invite) = call.invite.clone() else {
                    return;
                };
                let cancel = Message::request("CANCEL", invite.uri().unwrap_or_default())
                    .with("Via", invite.header("Via").unwrap_or_default())
                    .with("Max-Forwards", "70")
                    .with("From", invite.header("From").unwrap_or_default())
                    .with("To", invite.header("To").unwrap_or_default())
                    .with("Call-ID", call.dialog.call_id.clone())
                    .with(
                        "CSeq",
                        format!("{} CANCEL", invite.cseq().map_or(1, |(n, _)| n)),
                    );
                let peer = call.dialog.peer;
                // The CANCEL has the INVITE's branch: key its transaction apart.
                let bytes = cancel.to_bytes();
                self.send_to(&bytes, peer);
            }
            State::Ringing => {
                if let Some(invite) = call.invite.clone() {
                    let tag = call.dialog.local_tag.clone();
                    let to = call.source;
                    let response = Message::response(&invite, 480, Some(&tag));
                    self.respond(&invite, response, to);
                }
            }
        }
    }

    pub(super) fn finish(&mut self, id: &str, reason: Option<(EndReason, &str)>) {
        self.finish_with(id, reason.map(|(r, d)| (r, d.to_string())));
    }

    /// Forgets a call: its media stops, its record goes to the core as case data, and the core
    /// hears `ended` when the end did not come from it.
    pub(super) fn finish_with(&mut self, id: &str, reason: Option<(EndReason, String)>) {
        // A dialing call that is cancelled stays until the 487 arrives.
        let Some(mut call) = self.calls.remove(id) else {
            return;
        };
        if call.state == State::Dialing
            && reason.is_none()
            && let Some(invite) = &call.invite
            && let Some(branch) = invite.branch()
            && self.client.contains(branch)
        {
            self.calls.insert(id.to_string(), call);
            return;
        }
        self.by_call_id.remove(&call.dialog.call_id);
        let rtp = if call.leg_started {
            let stats = self.media.stats(call.n);
            self.media.remove_leg(call.n);
            self.media.close_room(call.n);
            stats
        } else {
            None
        };
        if let CallKind::Endpoint { about, agent } = &call.kind {
            self.endpoint_ended(id, call.n, about, agent, reason.as_ref());
            return; // internal: no call record
        }
        if let Some(leg) = call.bridge.take() {
            self.drop_endpoint(&leg);
        }
        call.note_hold();
        if let Some(since) = call.hold_since.take() {
            call.held_total += since.elapsed();
        }
        if let Some(other) = &call.conference_with
            && let Some(partner) = self.calls.get_mut(other)
        {
            partner.conference_with = None;
            let party = Party {
                id: sip::uri_of(&call.dialog.remote).to_string(),
                role: Party::COLLEAGUE.into(),
                display_name: sip::display_name_of(&call.dialog.remote)
                    .unwrap_or_else(|| sip::uri_of(&call.dialog.remote).to_string()),
                address: Some(Address::new(Address::SIP, sip::uri_of(&call.dialog.remote))),
            };
            let partner_id = partner.id.clone();
            self.emit(Event::PartyLeft(plugin_api::PartyLeft {
                interaction: InteractionId::new(&partner_id),
                party,
            }));
        }
        // The customer's call ends a conference for everyone: the colleague's leg (a
        // consultation the core already merged into this call) is hung up, not left orphaned.
        if !matches!(call.kind, CallKind::Consultation { .. })
            && let Some(other) = call.conference_with.take()
            && self.calls.contains_key(&other)
        {
            self.hang_up(&other);
            self.finish(&other, None);
        }
        // A consultation that ends without a conference gives the agent back to the customer.
        if let CallKind::Consultation { about } = &call.kind
            && let Some(customer) = self.calls.get_mut(about)
            && customer.parked
        {
            customer.parked = false;
            customer.note_hold();
            let about = about.clone();
            self.apply_media(&about);
            if self.calls.get(&about).is_some_and(|c| !c.local_hold) {
                self.state_changed(&about, MediaState::Connected);
            }
        }
        let mut record = vec![
            field(
                "duration_secs",
                "Duration (s)",
                &call.started.elapsed().as_secs().to_string(),
            ),
            field(
                "hold_secs",
                "On hold (s)",
                &call.held_total.as_secs().to_string(),
            ),
            field("transfers", "Transfers", &call.transfers.to_string()),
        ];
        if let Some(rtp) = rtp {
            record.push(field(
                "rtp_received",
                "RTP packets received",
                &rtp.packets_in.to_string(),
            ));
            record.push(field(
                "rtp_sent",
                "RTP packets sent",
                &rtp.packets_out.to_string(),
            ));
            record.push(field(
                "rtp_concealed",
                "Audio frames lost or late",
                &rtp.lost.to_string(),
            ));
        }
        if !call.dtmf_in.is_empty() {
            record.push(field("dtmf", "Digits pressed", &call.dtmf_in));
        }
        if let Some(path) = &call.recording {
            record.push(field("recording", "Recording", &path.display().to_string()));
        }
        self.emit(Event::CaseDataChanged(plugin_api::CaseDataChanged {
            interaction: InteractionId::new(id),
            case_data: record,
        }));
        if let Some((reason, detail)) = reason {
            self.emit(Event::Ended(Ended {
                interaction: InteractionId::new(id),
                reason,
                detail,
            }));
        }
    }
}
