//! Links between interactions of different channels by a session code (plugin-api 1.3, 1.5): an
//! open interaction carries a code (a chat's `link-code`, or the agent types the code the
//! customer reads out on a call: `AgentCommand::LinkCode`); an offer routed `linked` to that code
//! goes to that interaction's owner and both are linked. An offer whose code nothing carries yet
//! waits, queued, until something does or its plugin ends it. The codes themselves are not
//! journaled (they live minutes and are used once); the link is (`InteractionLinked`).

use super::*;

/// The most session codes kept at once (a plugin sending codes in a loop cannot grow the core).
const MAX_LINK_CODES: usize = 10_000;
/// The longest code the core keeps (the co-browse plugin's are 9 digits).
const MAX_CODE_LEN: usize = 64;

impl Core {
    /// Keeps the session code an open interaction of `plugin` carries (plugin-api 1.3).
    pub(super) fn keep_link_code(
        &mut self,
        now: Millis,
        plugin: &str,
        link: &plugin_api::LinkCode,
        out: &mut Vec<Stamped>,
    ) {
        let Some(&key) = self.by_plugin_id.get(plugin, link.interaction.as_str()) else {
            tracing::warn!(plugin, interaction = %link.interaction, "`link-code` for an unknown interaction dropped");
            return;
        };
        if let Err(why) = self.keep_code(key, &link.code) {
            tracing::warn!(plugin, "`link-code` dropped: {why}");
            return;
        }
        self.link_waiting(now, &link.code, out);
    }

    /// The agent typed the code the customer read out, on an interaction of theirs (a call).
    pub(super) fn link_code_by_agent(
        &mut self,
        now: Millis,
        agent_id: &str,
        key: InteractionKey,
        code: &str,
        out: &mut Vec<Stamped>,
    ) -> Result<(), CoreError> {
        let i = self
            .interactions
            .get(&key)
            .ok_or(CoreError::UnknownInteraction { key })?;
        if i.owner.as_deref() != Some(agent_id) {
            return Err(CoreError::NotYours {
                key,
                agent: agent_id.into(),
            });
        }
        if i.state != InteractionState::Active {
            return Err(wrong_state(
                i,
                "a session code goes on an active interaction",
            ));
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        self.keep_code(key, &code)
            .map_err(|why| CoreError::BadCode { why })?;
        self.link_waiting(now, &code, out);
        Ok(())
    }

    fn keep_code(&mut self, key: InteractionKey, code: &str) -> Result<(), String> {
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(format!("a session code has 1 to {MAX_CODE_LEN} characters"));
        }
        if self.link_codes.len() >= MAX_LINK_CODES {
            self.link_codes.retain(|_, k| {
                self.interactions
                    .get(k)
                    .is_some_and(|i| !i.state.is_closed())
            });
        }
        if self.link_codes.len() >= MAX_LINK_CODES {
            return Err(format!("{MAX_LINK_CODES} session codes kept already"));
        }
        self.link_codes.insert(code.to_string(), key);
        Ok(())
    }

    /// The owner of the active interaction carrying `code`, and that interaction.
    pub(super) fn linked_owner(&self, code: &str) -> Option<(String, InteractionKey)> {
        let key = *self.link_codes.get(code)?;
        let i = self.interactions.get(&key)?;
        match (&i.state, &i.owner) {
            (InteractionState::Active, Some(owner)) => Some((owner.clone(), key)),
            _ => None,
        }
    }

    /// An offer waiting for `code` goes to the owner of what now carries it, linked to it.
    fn link_waiting(&mut self, now: Millis, code: &str, out: &mut Vec<Stamped>) {
        let Some((owner, related)) = self.linked_owner(code) else {
            return;
        };
        let waiting = self.interactions.values().find(|i| {
            i.state == InteractionState::Queued
                && i.route.to == Route::LINKED
                && i.route.name == code
        });
        let Some(key) = waiting.map(|i| i.key) else {
            return;
        };
        self.link_codes.remove(code);
        let event = CoreEvent::InteractionLinked {
            key,
            owner,
            related,
        };
        self.emit(now, event, out);
    }
}
