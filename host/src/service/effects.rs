//! What the plugins must be told after core events: accept, reject, forward, hold, end, Mark
//! Done, workbin, call forwarding. Pure: turns events into (plugin id, command) pairs.

use crate::core::{Core, CoreEvent, Stamped};
use plugin_api::{
    AgentRef, Command, Conference, Consult, EndReason, ForwardCalls, Target, Transfer, TransferMode,
};

/// The plugin commands that carry out `events` (which `core` has already applied).
/// `voice_plugins` are the running plugins that serve the voice channel (call forwarding).
pub fn plugin_commands(
    core: &Core,
    events: &[Stamped],
    voice_plugins: &[String],
) -> Vec<(String, Command)> {
    let mut out = Vec::new();
    let agent_ref = |id: &str| AgentRef {
        id: id.to_string(),
        display_name: core
            .agent(id)
            .map_or_else(|| id.to_string(), |a| a.name.clone()),
    };
    for stamped in events {
        let about = |key: u64| {
            core.interaction(key)
                .map(|i| (i.plugin.clone(), i.plugin_interaction.clone()))
        };
        let command = match &stamped.event {
            CoreEvent::InteractionAccepted { key, agent } => about(*key).map(|(p, interaction)| {
                (
                    p,
                    Command::Accept(plugin_api::Accept {
                        interaction,
                        agent: agent_ref(agent),
                    }),
                )
            }),
            CoreEvent::InteractionRejected { key, reason } => {
                about(*key).map(|(p, interaction)| {
                    (
                        p,
                        Command::Reject(plugin_api::Reject {
                            interaction,
                            reason: reason.clone(),
                        }),
                    )
                })
            }
            CoreEvent::InteractionForwarded { key, to, .. } => {
                about(*key).map(|(p, interaction)| {
                    let target = Target::Address {
                        address: to.clone(),
                    };
                    (
                        p,
                        Command::Transfer(Transfer {
                            interaction,
                            target,
                            mode: TransferMode::Blind,
                        }),
                    )
                })
            }
            CoreEvent::InteractionHeld { key } => about(*key)
                .map(|(p, interaction)| (p, Command::Hold(plugin_api::Hold { interaction }))),
            CoreEvent::InteractionResumed { key } => about(*key)
                .map(|(p, interaction)| (p, Command::Resume(plugin_api::Resume { interaction }))),
            CoreEvent::InteractionEnded {
                key,
                reason: EndReason::AgentEnded,
            } => about(*key)
                .map(|(p, interaction)| (p, Command::End(plugin_api::End { interaction }))),
            CoreEvent::InteractionDone { key, wrap_up, .. } => {
                about(*key).map(|(p, interaction)| {
                    (
                        p,
                        Command::MarkDone(plugin_api::MarkDone {
                            interaction,
                            wrap_up: wrap_up.clone(),
                        }),
                    )
                })
            }
            CoreEvent::InteractionParked { key, workbin } => about(*key).map(|(p, interaction)| {
                (
                    p,
                    Command::PutInWorkbin(plugin_api::PutInWorkbin {
                        interaction,
                        workbin: workbin.clone(),
                    }),
                )
            }),
            CoreEvent::ConsultationStarted {
                about: of,
                colleague,
                ..
            } => about(*of).map(|(p, interaction)| {
                (
                    p,
                    Command::Consult(Consult {
                        interaction,
                        target: Target::Agent {
                            agent: agent_ref(colleague),
                        },
                    }),
                )
            }),
            CoreEvent::ConferenceStarted {
                about: of,
                consultation,
                ..
            } => {
                let consultation = core
                    .interaction(*consultation)
                    .map(|c| c.plugin_interaction.clone());
                about(*of)
                    .zip(consultation)
                    .map(|((p, interaction), consultation)| {
                        (
                            p,
                            Command::Conference(Conference {
                                interaction,
                                consultation,
                            }),
                        )
                    })
            }
            CoreEvent::TransferredAfterConsultation {
                about: of,
                consultation,
                to,
                ..
            } => {
                let consultation = core
                    .interaction(*consultation)
                    .map(|c| c.plugin_interaction.clone());
                about(*of)
                    .zip(consultation)
                    .map(|((p, interaction), consultation)| {
                        let target = Target::Agent {
                            agent: agent_ref(to),
                        };
                        let mode = TransferMode::Consultative { consultation };
                        (
                            p,
                            Command::Transfer(Transfer {
                                interaction,
                                target,
                                mode,
                            }),
                        )
                    })
            }
            CoreEvent::ForwardingChanged { agent, to } => {
                let extension = core
                    .agent(agent)
                    .and_then(|a| a.extension.clone())
                    .unwrap_or_default();
                for plugin in voice_plugins {
                    let command = Command::ForwardCalls(ForwardCalls {
                        agent: agent_ref(agent),
                        extension: extension.clone(),
                        forward_to: to.clone(),
                    });
                    out.push((plugin.clone(), command));
                }
                None
            }
            _ => None,
        };
        out.extend(command);
    }
    out
}
