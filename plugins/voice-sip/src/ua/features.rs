//! What the core's commands do to calls (the call features): accept, reject, end, hold,
//! DTMF, dial, consult, conference, transfer and forwarding. Built on the dialogs and
//! transactions below; no parsing of what arrives here.

use super::dialog::{Call, CallKind, Dialog, State, Transfer, resolve};
use super::transaction::Purpose;
use super::{ALLOW, Ua, UaError, escape_header, field, reject_status, with_scheme};
use crate::sdp::Direction;
use crate::settings::ForwardMode;
use crate::sip::{self, Message, SipUri};
use plugin_api::Event;
use plugin_api::{Address, InteractionId, MediaState, Party, PartyJoined, Route, Target};
use std::net::{SocketAddr, ToSocketAddrs};

impl Ua {
    // ----- commands from the core -----------------------------------------------------------

    pub(super) fn call(&self, id: &str) -> Result<&Call, UaError> {
        self.calls
            .get(id)
            .ok_or_else(|| UaError::UnknownCall(id.into()))
    }

    /// The core gave the call to `agent`: answer it, and bridge it to the agent's registered
    /// endpoint if they have one. A connected call accepted again (a transfer inside the core)
    /// is bridged to the new agent's endpoint instead.
    pub fn accept(&mut self, id: &str, agent: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state == State::Connected {
            // Only a customer's call moves to the accepting agent's endpoint; a consultation
            // the colleague accepts stays where it was dialled.
            if call.kind == CallKind::Customer && call.agent.as_deref() != Some(agent) {
                self.rebridge(id, agent);
            }
            return Ok(());
        }
        if !call.inbound {
            return Ok(()); // a consultation the colleague takes
        }
        let invite = call
            .invite
            .clone()
            .ok_or(UaError::WrongState(id.into(), "not ringing"))?;
        let to = call.source;
        let socket = self.media.bind_socket()?;
        let rtp = SocketAddr::new(
            self.settings
                .public()
                .parse()
                .unwrap_or(socket.local_addr()?.ip()),
            socket.local_addr()?.port(),
        );
        let direction = call
            .remote_sdp
            .as_ref()
            .map_or(Direction::SendRecv, |s| s.direction.answer_to());
        let te = call.telephone_event;
        if let Some(call) = self.calls.get_mut(id) {
            call.socket = Some(socket);
            call.rtp = rtp;
            call.state = State::Connected;
            call.telephone_event = te;
            call.remote_hold = !direction.sends();
        }
        let body = self.local_sdp(id, direction);
        let tag = self.calls[id].dialog.local_tag.clone();
        let response = Message::response(&invite, 200, Some(&tag))
            .with("Contact", self.contact())
            .with("Allow", ALLOW)
            .with_body("application/sdp", body.into_bytes());
        self.send_2xx(id, &invite, response, to);
        if let Some(call) = self.calls.get_mut(id) {
            call.invite = None;
        }
        self.start_media(id)?;
        self.state_changed(id, MediaState::Connected);
        self.rebridge(id, agent);
        Ok(())
    }

    /// The core declined the offer (no agent, no such extension).
    pub fn reject(&mut self, id: &str, code: plugin_api::RejectCode) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state != State::Ringing {
            return Err(UaError::WrongState(id.into(), call.state.word()));
        }
        if let Some(invite) = call.invite.clone() {
            let (tag, to) = (call.dialog.local_tag.clone(), call.source);
            let code = reject_status(code);
            let response = Message::response(&invite, code, Some(&tag));
            self.respond(&invite, response, to);
        }
        self.finish(id, None);
        Ok(())
    }

    /// The agent ended the call.
    pub fn end(&mut self, id: &str) -> Result<(), UaError> {
        self.call(id)?;
        self.hang_up(id);
        self.finish(id, None);
        Ok(())
    }

    /// Hold (true) or resume (false) with a re-INVITE.
    pub fn hold(&mut self, id: &str, hold: bool) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state != State::Connected {
            return Err(UaError::WrongState(id.into(), call.state.word()));
        }
        if call.local_hold == hold {
            return Ok(());
        }
        if call.reinvite.is_some() {
            return Err(UaError::WrongState(id.into(), "changing hold already"));
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.local_hold = hold;
            call.reinvite = Some(hold);
            call.note_hold();
        }
        let direction = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let body = self.local_sdp(id, direction);
        let (via, contact) = (self.new_via(), self.contact());
        let Some(call) = self.calls.get_mut(id) else {
            return Ok(());
        };
        let invite = call
            .dialog
            .request("INVITE", via)
            .with("Contact", contact)
            .with_body("application/sdp", body.into_bytes());
        let peer = call.dialog.peer;
        self.send_request(invite, peer, Purpose::ReInvite(id.into()));
        // Stop speaking into a held call at once; the answer confirms the directions.
        self.apply_media(id);
        Ok(())
    }

    /// Sends DTMF digits (RFC 4733).
    pub fn dtmf(&mut self, id: &str, digits: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        if call.state != State::Connected || !call.leg_started {
            return Err(UaError::WrongState(id.into(), call.state.word()));
        }
        if call.telephone_event.is_none() {
            return Err(UaError::Unsupported(
                "the far end did not accept telephone events (RFC 4733)",
            ));
        }
        if self.media.send_dtmf(call.n, digits) == 0 {
            return Err(UaError::BadAddress(format!("no DTMF digits in `{digits}`")));
        }
        Ok(())
    }

    /// A DTMF digit arrived from the far end.
    pub fn dtmf_received(&mut self, leg: u64, digit: char) {
        let Some(call) = self.calls.values_mut().find(|c| c.n == leg) else {
            return;
        };
        if let CallKind::Endpoint { about, .. } = &call.kind {
            // Keys pressed on the agent's phone go to the customer.
            let about = about.clone();
            if let Some(customer) = self.calls.get(&about) {
                self.media.send_dtmf(customer.n, &digit.to_string());
            }
            return;
        }
        call.dtmf_in.push(digit);
        let (id, digits) = (call.id.clone(), call.dtmf_in.clone());
        self.emit(Event::CaseDataChanged(plugin_api::CaseDataChanged {
            interaction: InteractionId::new(&id),
            case_data: vec![field("dtmf", "Digits pressed", &digits)],
        }));
    }

    /// The SIP URI an address is called at.
    pub fn address_uri(&self, address: &Address) -> Result<String, UaError> {
        let value = address.value.trim();
        match address.kind.as_str() {
            Address::SIP => {
                let uri = with_scheme(value);
                SipUri::parse(&uri).ok_or_else(|| UaError::BadAddress(value.into()))?;
                Ok(uri)
            }
            Address::PHONE => {
                let digits: String = value
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == '+' || *c == '*' || *c == '#')
                    .collect();
                if digits.is_empty() {
                    return Err(UaError::BadAddress(value.into()));
                }
                Ok(format!("sip:{digits}@{}", self.settings.domain()))
            }
            _ => Err(UaError::BadAddress(format!(
                "a {} address ({value})",
                address.kind
            ))),
        }
    }

    pub(super) fn target_uri(&self, target: &Target) -> Result<String, UaError> {
        match target {
            Target::Agent { agent } => self
                .settings
                .agent_uri(&agent.id)
                .ok_or_else(|| UaError::NoAgentAddress(agent.id.clone())),
            Target::Address { address } => self.address_uri(address),
            Target::Queue { .. } => Err(UaError::Unsupported(
                "queues are served by the core: transfer inside agentdesk instead",
            )),
        }
    }

    /// Places a call; returns its interaction id.
    pub fn dial(
        &mut self,
        uri: &str,
        from_agent: Option<(&str, &str)>,
        kind: CallKind,
    ) -> Result<String, UaError> {
        let target = SipUri::parse(uri).ok_or_else(|| UaError::BadAddress(uri.into()))?;
        let peer = match &self.settings.outbound_proxy {
            Some(proxy) => proxy
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| UaError::BadAddress(proxy.clone()))?,
            None => resolve(&target.host, target.port.unwrap_or(5060))
                .ok_or_else(|| UaError::BadAddress(uri.into()))?,
        };
        self.dial_at(uri, peer, from_agent, kind)
    }

    /// Places a call to `uri`, sending the INVITE to `peer`; returns its interaction id.
    pub(super) fn dial_at(
        &mut self,
        uri: &str,
        peer: SocketAddr,
        from_agent: Option<(&str, &str)>,
        kind: CallKind,
    ) -> Result<String, UaError> {
        let socket = self.media.bind_socket()?;
        let rtp = SocketAddr::new(
            self.settings
                .public()
                .parse()
                .unwrap_or(socket.local_addr()?.ip()),
            socket.local_addr()?.port(),
        );
        let (id, n) = self.mint_call_id();
        let tag = sip::token();
        let call_id = format!("{}@{}", sip::token(), self.settings.public());
        let (user, display) = match from_agent {
            Some((agent, name)) => (
                self.settings
                    .agents
                    .get(agent)
                    .and_then(|l| l.extension.clone())
                    .unwrap_or_else(|| self.settings.user.clone()),
                name.to_string(),
            ),
            None => (self.settings.user.clone(), String::new()),
        };
        let local = if display.is_empty() {
            format!("<sip:{user}@{}>;tag={tag}", self.settings.domain())
        } else {
            format!(
                "\"{}\" <sip:{user}@{}>;tag={tag}",
                display.replace('"', ""),
                self.settings.domain()
            )
        };
        let dialog = Dialog::calling(call_id.clone(), local.clone(), tag, uri, peer);
        let mut call = Call::new(
            id.clone(),
            n,
            kind.clone(),
            State::Dialing,
            dialog,
            peer,
            self.codecs[0],
        );
        call.socket = Some(socket);
        call.rtp = rtp;
        call.agent = from_agent.map(|(agent, _)| agent.to_string());
        if matches!(kind, CallKind::Endpoint { .. }) {
            self.internal.insert(id.clone());
        }
        self.calls.insert(id.clone(), call);
        self.by_call_id.insert(call_id.clone(), id.clone());
        let body = self.local_sdp(&id, Direction::SendRecv);
        let invite = Message::request("INVITE", uri)
            .with("Via", self.new_via())
            .with("Max-Forwards", "70")
            .with("From", local)
            .with("To", format!("<{uri}>"))
            .with("Call-ID", call_id)
            .with("CSeq", "1 INVITE")
            .with("Contact", self.contact())
            .with("Allow", ALLOW)
            .with("User-Agent", "agentdesk")
            .with_body("application/sdp", body.into_bytes());
        if let Some(call) = self.calls.get_mut(&id) {
            call.invite = Some(invite.clone());
        }
        self.send_request(invite, peer, Purpose::Invite(id.clone()));
        self.state_changed(&id, MediaState::Dialing);
        Ok(id)
    }

    /// Starts a consultation call to a colleague about `about` (which goes on hold).
    pub fn consult(&mut self, about: &str, target: &Target) -> Result<String, UaError> {
        let call = self.call(about)?;
        if call.state != State::Connected {
            return Err(UaError::WrongState(about.into(), call.state.word()));
        }
        // A colleague whose own endpoint is registered here is called there, by us.
        let endpoint = match target {
            Target::Agent { agent } => self
                .binding(&agent.id)
                .cloned()
                .map(|b| (agent.id.clone(), b)),
            _ => None,
        };
        let uri = match &endpoint {
            Some((_, binding)) => binding.contact.clone(),
            None => self.target_uri(target)?,
        };
        if let Some(call) = self.calls.get_mut(about) {
            call.parked = true;
            call.note_hold();
        }
        self.apply_media(about);
        self.state_changed(about, MediaState::Held);
        let kind = CallKind::Consultation {
            about: about.into(),
        };
        match endpoint {
            Some((colleague, binding)) => {
                let id = self.dial_at(&uri, binding.addr, None, kind)?;
                if let Some(call) = self.calls.get_mut(&id) {
                    call.agent = Some(colleague);
                }
                Ok(id)
            }
            None => self.dial(&uri, None, kind),
        }
    }

    /// Joins the consulted colleague to the call: the plugin mixes the three parties.
    pub fn conference(&mut self, id: &str, consultation: &str) -> Result<(), UaError> {
        let call = self.call(id)?;
        let consult = self.call(consultation)?;
        if call.state != State::Connected || consult.state != State::Connected {
            return Err(UaError::WrongState(
                consultation.into(),
                "not connected on both legs",
            ));
        }
        let (room, leg) = (call.n, consult.n);
        let colleague = consult.dialog.remote.clone();
        if let Some(call) = self.calls.get_mut(id) {
            call.parked = false;
            call.note_hold();
        }
        self.media.move_leg(leg, room);
        self.apply_media(id);
        if !self.calls[id].local_hold {
            self.state_changed(id, MediaState::Connected);
        }
        if let Some(c) = self.calls.get_mut(id) {
            c.conference_with = Some(consultation.into());
        }
        if let Some(c) = self.calls.get_mut(consultation) {
            c.conference_with = Some(id.into());
        }
        self.emit(Event::PartyJoined(PartyJoined {
            interaction: InteractionId::new(id),
            party: Party {
                id: sip::uri_of(&colleague).to_string(),
                role: Party::COLLEAGUE.into(),
                display_name: sip::display_name_of(&colleague)
                    .unwrap_or_else(|| sip::uri_of(&colleague).to_string()),
                address: Some(Address::new(Address::SIP, sip::uri_of(&colleague))),
            },
        }));
        Ok(())
    }

    /// Transfers a call: a ringing one is redirected (302) or re-offered (forwarding); a
    /// connected one is REFERred, blind or with Replaces after a consultation.
    pub fn transfer(
        &mut self,
        id: &str,
        target: &Target,
        consultation: Option<&str>,
    ) -> Result<(), UaError> {
        let call = self.call(id)?;
        match call.state {
            State::Ringing => {
                let address = match target {
                    Target::Address { address } => address.clone(),
                    other => Address::new(Address::SIP, self.target_uri(other)?),
                };
                let invite = call
                    .invite
                    .clone()
                    .ok_or(UaError::WrongState(id.into(), "ringing without INVITE"))?;
                let from = call.source;
                if self.settings.forwarding == ForwardMode::Reroute
                    && let Some(extension) = self.extension_of_address(&address)
                {
                    // Offer the same call again, to the colleague's extension.
                    let session = call.remote_sdp.clone();
                    let codec = call.codec;
                    let call_id = call.dialog.call_id.clone();
                    self.calls.remove(id);
                    self.by_call_id.remove(&call_id);
                    self.ring(invite, from, session, codec, Route::extension(extension));
                    return Ok(());
                }
                self.redirect(&invite, &address, from);
                self.finish(id, None);
                Ok(())
            }
            State::Dialing => Err(UaError::WrongState(id.into(), "dialing")),
            State::Connected => {
                if let Some(consultation) = consultation
                    && self.hand_over(id, consultation)
                {
                    return Ok(());
                }
                let mut refer_to = self.target_uri(target)?;
                if let Some(consultation) = consultation {
                    let consult = self.call(consultation)?;
                    let (Some(remote_tag), local_tag) = (
                        consult.dialog.remote_tag.clone(),
                        consult.dialog.local_tag.clone(),
                    ) else {
                        return Err(UaError::WrongState(consultation.into(), "not answered"));
                    };
                    let replaces = format!(
                        "{};to-tag={remote_tag};from-tag={local_tag}",
                        consult.dialog.call_id
                    );
                    refer_to = format!(
                        "{}?Replaces={}",
                        sip::uri_of(&consult.dialog.remote_target),
                        escape_header(&replaces)
                    );
                }
                let (via, contact) = (self.new_via(), self.contact());
                let Some(call) = self.calls.get_mut(id) else {
                    return Err(UaError::UnknownCall(id.into()));
                };
                call.transfer = Some(Transfer {
                    consultation: consultation.map(String::from),
                });
                call.transfers += 1;
                let referred_by = sip::uri_of(&call.dialog.local).to_string();
                let refer = call
                    .dialog
                    .request("REFER", via)
                    .with("Refer-To", format!("<{refer_to}>"))
                    .with("Referred-By", format!("<{referred_by}>"))
                    .with("Contact", contact);
                let peer = call.dialog.peer;
                self.send_request(refer, peer, Purpose::Refer(id.into()));
                Ok(())
            }
        }
    }

    /// Call forwarding for an extension, pushed by the core.
    pub fn forward(&mut self, extension: &str, to: Option<Address>) {
        match to {
            Some(to) => {
                self.forwards.insert(extension.to_string(), to);
            }
            None => {
                self.forwards.remove(extension);
            }
        }
    }
}
