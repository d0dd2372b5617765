//! What the plugins must be told after core events: accept, reject, forward, hold, end, Mark
//! Done, workbin, call forwarding. Pure: turns events into (plugin id, command) pairs.

use crate::core::{Core, CoreEvent, Stamped};
use plugin_api::{
    About, AgentRef, Command, Compose, Conference, Consult, Dial, EndReason, ForwardCalls,
    LeaveConference, Media, Target, Transfer, TransferMode,
};

/// A command for a plugin; `link` names the interaction whose plugin id is the `created` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginCommand {
    /// The plugin.
    pub plugin: String,
    /// The command.
    pub command: Command,
    /// The core's interaction the reply's `created` id belongs to.
    pub link: Option<u64>,
    /// The core's interaction the command acts on, whose people hear of a failure.
    pub about: Option<u64>,
}

/// The plugin commands that carry out `events` (which `core` has already applied). Which plugin
/// gets what follows the plugins' hellos (`Policy::capabilities`), never a channel's name.
pub fn plugin_commands(core: &Core, events: &[Stamped]) -> Vec<PluginCommand> {
    let mut out: Vec<PluginCommand> = Vec::new();
    for stamped in events {
        let link = match &stamped.event {
            CoreEvent::OutboundStarted { key, .. } | CoreEvent::ConsultationStarted { key, .. } => {
                Some(*key)
            }
            _ => None,
        };
        let about = stamped.event.concerns().0.first().copied();
        for (plugin, command) in commands_for(core, stamped) {
            out.push(PluginCommand {
                plugin,
                command,
                link,
                about,
            });
        }
    }
    out
}

/// The commands one event implies (several for call forwarding: one per plugin that declared
/// `forward-calls`).
fn commands_for(core: &Core, stamped: &Stamped) -> Vec<(String, Command)> {
    let mut out = Vec::new();
    let agent_ref = |id: &str| AgentRef {
        id: id.to_string(),
        display_name: core
            .agent(id)
            .map_or_else(|| id.to_string(), |a| a.name.clone()),
    };
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
        CoreEvent::InteractionRejected { key, reason, code } => {
            about(*key).map(|(p, interaction)| {
                (
                    p,
                    Command::Reject(plugin_api::Reject {
                        interaction,
                        reason: reason.clone(),
                        code: *code,
                    }),
                )
            })
        }
        CoreEvent::InteractionForwarded { key, to, .. }
        | CoreEvent::TransferOutRequested { key, to, .. } => about(*key).map(|(p, interaction)| {
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
        }),
        // Asked for, not yet done: the plugin's answer confirms or refuses it (`core::confirm`).
        CoreEvent::HoldRequested { key, hold, .. } => about(*key).map(|(p, interaction)| {
            let command = if *hold {
                Command::Hold(plugin_api::Hold { interaction })
            } else {
                Command::Resume(plugin_api::Resume { interaction })
            };
            (p, command)
        }),
        CoreEvent::InteractionEnded {
            key,
            reason: EndReason::AgentEnded,
        } => about(*key).map(|(p, interaction)| (p, Command::End(plugin_api::End { interaction }))),
        CoreEvent::InteractionDone { key, wrap_up, .. } => about(*key).map(|(p, interaction)| {
            (
                p,
                Command::MarkDone(plugin_api::MarkDone {
                    interaction,
                    wrap_up: wrap_up.clone(),
                }),
            )
        }),
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
        // The consultation ends without a conference or transfer: the plugin closes its side
        // (hangs up the consultation call, forgets the consultation chat).
        // A consultation the plugin never created (it refused `consult`) has nothing to close.
        CoreEvent::ConsultationEnded { consultation } => about(*consultation)
            .filter(|(_, interaction)| !interaction.as_str().starts_with("consult:"))
            .map(|(p, interaction)| (p, Command::End(plugin_api::End { interaction }))),
        CoreEvent::ConferenceStarted {
            about: of,
            consultation,
            ..
        } => {
            let consultation = about(*consultation).map(|(_, id)| id);
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
            let consultation = about(*consultation).map(|(_, id)| id);
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
        CoreEvent::OutboundStarted {
            plugin,
            media,
            agent,
            to,
            contact,
            related,
            ..
        } => {
            let from = related.and_then(|r| core.interaction(r));
            // What it was started from is about (1.5): the subject here; the service adds the
            // case data it keeps (`Service::send_to_plugin`).
            let about = from.map(|r| About {
                subject: r.subject.clone(),
                case_data: vec![],
            });
            let related = from.map(|r| r.plugin_interaction.clone());
            // A call is dialled, anything else composed, by a plugin that declared the command.
            let dials = core.policy().supports(plugin, "dial")
                && (*media == Media::Call || !core.policy().supports(plugin, "compose"));
            let command = if dials {
                Command::Dial(Dial {
                    to: to.clone(),
                    agent: agent_ref(agent),
                    contact: Some(contact.clone()),
                    related,
                })
            } else {
                Command::Compose(Compose {
                    to: vec![to.clone()],
                    agent: agent_ref(agent),
                    subject: String::new(),
                    body: String::new(),
                    attachments: vec![],
                    related,
                    about,
                })
            };
            Some((plugin.clone(), command))
        }
        // Told only to a plugin that declared it (1.5): it may tell the customer or the others.
        CoreEvent::ConferenceLeft { about: key, agent } => about(*key)
            .filter(|(p, _)| core.policy().supports(p, "leave-conference"))
            .map(|(p, interaction)| {
                let agent = agent_ref(agent);
                (
                    p,
                    Command::LeaveConference(LeaveConference { interaction, agent }),
                )
            }),
        CoreEvent::ForwardingChanged { agent, to } => {
            let extension = core
                .agent(agent)
                .and_then(|a| a.extension.clone())
                .unwrap_or_default();
            let forwarders = core
                .policy()
                .capabilities
                .iter()
                .filter(|(_, kinds)| kinds.contains("forward-calls"))
                .map(|(plugin, _)| plugin);
            for plugin in forwarders {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdminConfig;
    use crate::core::{AgentCommand, Policy};
    use plugin_api::{Address, ChannelKind, Contact, Event, InteractionId, Media, Offer, Route};

    #[test]
    fn a_party_action_becomes_a_dial_naming_the_chat_and_asks_for_the_created_id() {
        let config = AdminConfig::parse(
            "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\", \"voice\"]\n",
            "t",
        )
        .expect("config");
        let mut policy = Policy::from_config(&config, &[]);
        policy.channel_plugins.insert("voice".into(), "sip".into());
        let mut core = Core::new(policy, 0);
        for command in [
            AgentCommand::LogIn,
            AgentCommand::LogOnChannel {
                channel: "chat".into(),
            },
            AgentCommand::SetReady {
                channel: "chat".into(),
            },
            AgentCommand::LogOnChannel {
                channel: "voice".into(),
            },
        ] {
            core.execute(0, "ann", command).expect("set-up");
        }
        let offer = Event::Offer(Offer {
            interaction: InteractionId::new("web-1"),
            external_id: "web-1".into(),
            channel: ChannelKind::new("chat"),
            media: Media::Conversation,
            route: Route::queue("default"),
            contact: Contact {
                display_name: Some("Jo".into()),
                addresses: vec![],
            },
            subject: None,
            case_data: vec![],
            actions: vec![],
            priority: 0,
        });
        core.on_plugin_event(0, "web", &offer);
        let chat = core
            .interaction_by_plugin_id("web", &InteractionId::new("web-1"))
            .map(|i| i.key)
            .expect("chat");
        core.execute(0, "ann", AgentCommand::Accept { key: chat })
            .expect("accept");
        let to = Address::phone("+15550100");
        let events = core
            .execute(
                0,
                "ann",
                AgentCommand::StartOutbound {
                    channel: "voice".into(),
                    to: to.clone(),
                    from: Some(chat),
                },
            )
            .expect("dial");
        let commands = plugin_commands(&core, &events);
        assert_eq!(commands.len(), 1, "{commands:?}");
        let PluginCommand {
            plugin,
            command: Command::Dial(dial),
            link,
            about,
        } = &commands[0]
        else {
            panic!("{commands:?}")
        };
        assert_eq!(plugin, "sip");
        assert_eq!(dial.to, to);
        assert_eq!(dial.related, Some(InteractionId::new("web-1")));
        assert_eq!(
            dial.contact
                .as_ref()
                .and_then(|c| c.display_name.clone())
                .as_deref(),
            Some("Jo")
        );
        assert!(
            link.is_some(),
            "the plugin's created id must be linked back"
        );
        assert_eq!(about, link, "a failed dial is told to the call's agent");
    }
}
