//! The bridge (a back-to-back user agent): a customer call the plugin answered is carried to
//! the answering agent's own endpoint (the desktop's, or a SIP phone registered for them) on a
//! second dialog of ours, and the media plane relays audio between the two legs. The plugin
//! keeps the customer's leg: hold, DTMF, transfers, the conference and the call record work on
//! it as before. The endpoint leg is internal: the core never hears of it.

use super::Ua;
use super::dialog::{CallKind, State};
use plugin_api::{EndReason, MediaState};

impl Ua {
    /// Bridges a connected call to `agent`'s registered endpoint, hanging up the leg to the
    /// endpoint of whoever had it before. Without a registration the host's own audio (headset
    /// or WAV file) is the agent, as in a single-desk installation.
    pub(super) fn rebridge(&mut self, id: &str, agent: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.agent = Some(agent.to_string());
        if let Some(old) = call.bridge.take() {
            self.drop_endpoint(&old);
        }
        let Some(binding) = self.binding(agent).cloned() else {
            return;
        };
        let kind = CallKind::Endpoint {
            about: id.to_string(),
            agent: agent.to_string(),
        };
        match self.dial_at(&binding.contact, binding.addr, None, kind) {
            Ok(leg) => {
                if let Some(call) = self.calls.get_mut(id) {
                    call.bridge = Some(leg);
                }
            }
            Err(e) => (self.log)(&format!(
                "call {id} not bridged to agent `{agent}`'s endpoint {}: {e}",
                binding.contact
            )),
        }
    }

    /// Hangs up a leg to an endpoint without touching the call it carried.
    pub(super) fn drop_endpoint(&mut self, leg: &str) {
        let Some(call) = self.calls.get_mut(leg) else {
            return;
        };
        if let CallKind::Endpoint { about, .. } = &mut call.kind {
            about.clear(); // what it carried no longer depends on it
        }
        let n = call.n;
        self.media.detach_voice(n);
        self.hang_up(leg);
        self.finish(leg, None);
    }

    /// The endpoint leg `leg` ended: when it still carried a call and the end came from the
    /// endpoint (the agent hung up their phone, or it never answered), that call ends too.
    pub(super) fn endpoint_ended(
        &mut self,
        leg: &str,
        n: u64,
        about: &str,
        agent: &str,
        reason: Option<&(EndReason, String)>,
    ) {
        self.media.detach_voice(n);
        self.internal.remove(leg);
        let carried = self
            .calls
            .get(about)
            .is_some_and(|c| c.bridge.as_deref() == Some(leg));
        if !carried {
            return;
        }
        if let Some(call) = self.calls.get_mut(about) {
            call.bridge = None;
        }
        if let Some((_, detail)) = reason {
            (self.log)(&format!(
                "agent `{agent}`'s endpoint left call {about} ({detail}): the call ends"
            ));
            self.hang_up(about);
            self.finish_with(
                about,
                Some((
                    EndReason::AgentEnded,
                    format!("the agent's phone hung up ({detail})"),
                )),
            );
        }
    }

    /// The endpoint leg that speaks for the agent of `id` (its own bridge, or for a
    /// consultation the bridge of the call consulted about), by media leg number.
    pub(super) fn voice_leg_of(&self, id: &str) -> Option<u64> {
        let call = self.calls.get(id)?;
        let leg = match (&call.bridge, &call.kind) {
            (Some(leg), _) => leg.clone(),
            (None, CallKind::Consultation { about }) => self.calls.get(about)?.bridge.clone()?,
            _ => return None,
        };
        let leg = self.calls.get(&leg)?;
        leg.leg_started.then_some(leg.n)
    }

    /// A transfer after a consultation with a colleague's own endpoint, done here: that
    /// consultation leg becomes the customer call's bridge (no REFER: the customer's leg stays
    /// ours, and the colleague's endpoint takes calls from us only). False when the
    /// consultation is not with an endpoint registered here (the REFER is used then).
    pub(super) fn hand_over(&mut self, id: &str, consultation: &str) -> bool {
        let Some(consult) = self.calls.get(consultation) else {
            return false;
        };
        let (Some(colleague), State::Connected, true) = (
            consult.agent.clone(),
            consult.state,
            consult.leg_started && matches!(consult.kind, CallKind::Consultation { .. }),
        ) else {
            return false;
        };
        let leg = consult.n;
        let Some(room) = self.calls.get(id).map(|c| c.n) else {
            return false;
        };
        let old = self.calls.get_mut(id).and_then(|c| c.bridge.take());
        if let Some(old) = old {
            self.drop_endpoint(&old);
        }
        // Out of the consultation's room (closed: its recording ends) into the customer's.
        self.media.move_leg(leg, room);
        self.media.close_room(leg);
        self.media.attach_voice(room, leg);
        if let Some(c) = self.calls.get_mut(consultation) {
            c.kind = CallKind::Endpoint {
                about: id.to_string(),
                agent: colleague.clone(),
            };
        }
        self.internal.insert(consultation.to_string());
        if let Some(call) = self.calls.get_mut(id) {
            call.agent = Some(colleague);
            call.bridge = Some(consultation.to_string());
            call.parked = false;
            call.transfers += 1;
            call.note_hold();
        }
        self.apply_media(id);
        if self.calls.get(id).is_some_and(|c| !c.local_hold) {
            self.state_changed(id, MediaState::Connected);
        }
        true
    }
}
