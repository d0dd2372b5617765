//! Links between interactions of different channels (plugin-api 1.3): the session codes open
//! interactions carry (`link-code`), and offers routed by one (`Route::LINKED`). Service memory
//! only, like the live detail: a code lives while its interaction is open and is used once.

use crate::core::{Core, InteractionKey, InteractionState};
use plugin_api::{LinkCode, Offer, Route};
use std::collections::HashMap;

/// The most codes kept at once (a plugin sending codes in a loop cannot grow memory without end).
const MAX_CODES: usize = 10_000;

/// Why an offer naming a code cannot be linked; the core refuses it with `no-such-target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlinked {
    /// No open interaction carries the code (unknown, used already, or its interaction closed).
    UnknownCode,
    /// The interaction carrying it has no agent now (still queued or offered).
    NoOwner,
}

/// The codes open interactions carry (the links made with them are in the live detail).
#[derive(Debug, Default)]
pub struct Links {
    codes: HashMap<String, InteractionKey>,
}

impl Links {
    /// Notes that `key` carries `link.code`. Returns false when it was not kept (too many).
    pub fn record(&mut self, key: InteractionKey, link: &LinkCode) -> bool {
        if self.codes.len() >= MAX_CODES && !self.codes.contains_key(&link.code) {
            return false;
        }
        self.codes.insert(link.code.clone(), key);
        true
    }

    /// For an offer routed by a code: the offer routed to the owner of the interaction carrying
    /// it, and that interaction's key. The code is used up.
    pub fn resolve(
        &mut self,
        core: &Core,
        offer: &Offer,
    ) -> Result<(Offer, InteractionKey), Unlinked> {
        let key = *self
            .codes
            .get(&offer.route.name)
            .ok_or(Unlinked::UnknownCode)?;
        let carrier = core.interaction(key).ok_or(Unlinked::UnknownCode)?;
        if !matches!(carrier.state, InteractionState::Active) {
            return Err(if carrier.state.is_closed() {
                Unlinked::UnknownCode
            } else {
                Unlinked::NoOwner
            });
        }
        let owner = carrier.owner.clone().ok_or(Unlinked::NoOwner)?;
        self.codes.remove(&offer.route.name);
        let mut routed = offer.clone();
        routed.route = Route::agent(owner);
        Ok((routed, key))
    }

    /// Forgets the codes of closed interactions.
    pub fn forget(&mut self, keys: &[InteractionKey]) {
        self.codes.retain(|_, k| !keys.contains(k));
    }
}
