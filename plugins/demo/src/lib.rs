//! The demo channel: a simulated customer on a conversation channel, for trying the desktop and
//! testing the host without any outside system. It answers every agent message with an echo.

use plugin_api::{
    Address, CaseField, ChannelKind, ChannelPlugin, Command, Contact, CustomAction, EndReason,
    Ended, Event, Host, HostHello, InteractionId, Media, MessageContent, MessageReceived, Offer,
    Party, PluginConfig, PluginDescriptor, PluginError, PluginHello, Reply, Route,
    store::StateFile, unsupported,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The channel kind this plugin serves.
pub const CHANNEL: &str = "demo";
/// The custom action that makes the simulated customer start a conversation.
pub const NEW_CONVERSATION: &str = "new-conversation";

/// Settings from `[plugins.settings."agentdesk.demo"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The queue offers go to.
    pub queue: String,
    /// What the simulated customer says first.
    pub opening: String,
    /// Conversations offered as soon as the channel starts.
    pub offer_at_start: u32,
    /// Messages the customer of the first conversation offered at start has already written
    /// (a long transcript, for load measurements).
    pub messages_at_start: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            queue: "default".into(),
            opening: "Hello, I need help with my order.".into(),
            offer_at_start: 0,
            messages_at_start: 0,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Durable {
    conversations_started: u64,
}

/// The plugin instance.
pub struct Demo {
    host: Host,
    settings: Settings,
    state: StateFile,
    durable: Durable,
    open: BTreeMap<InteractionId, u32>,
    consultations: u64,
}

impl Demo {
    fn customer() -> Party {
        Party {
            id: "customer".into(),
            role: Party::CUSTOMER.into(),
            display_name: "Demo Customer".into(),
            address: Some(Address::email("customer@example.com")),
        }
    }

    fn offer_conversation(&mut self) -> Result<InteractionId, PluginError> {
        self.durable.conversations_started += 1;
        self.state
            .save(&self.durable)
            .map_err(|e| PluginError::failed(format!("cannot save demo state: {e}")))?;
        let n = self.durable.conversations_started;
        let interaction = InteractionId::new(format!("demo-{n}"));
        self.open.insert(interaction.clone(), 0);
        self.host.emit(Offer {
            interaction: interaction.clone(),
            external_id: format!("demo-{n}"),
            channel: ChannelKind::new(CHANNEL),
            media: Media::Conversation,
            route: Route::queue(self.settings.queue.clone()),
            contact: Contact {
                display_name: Some("Demo Customer".into()),
                addresses: vec![
                    Address::email("customer@example.com"),
                    Address::phone("+15550100"),
                ],
            },
            subject: Some(format!("Demo conversation {n}")),
            case_data: vec![CaseField {
                key: "order".into(),
                label: Some("Order".into()),
                value: format!("A-{n:05}"),
            }],
            actions: vec![],
            priority: 0,
        })?;
        Ok(interaction)
    }

    fn customer_says(
        &mut self,
        interaction: &InteractionId,
        text: String,
    ) -> Result<(), PluginError> {
        let count = self
            .open
            .get_mut(interaction)
            .ok_or_else(|| not_found(interaction))?;
        *count += 1;
        let message = MessageContent {
            id: format!("{interaction}-c{count}"),
            text,
            attachments: vec![],
        };
        self.host.emit(MessageReceived {
            interaction: interaction.clone(),
            from: Self::customer(),
            message,
        })
    }
}

fn not_found(interaction: &InteractionId) -> PluginError {
    PluginError::new(
        plugin_api::ErrorCode::NOT_FOUND,
        format!("no demo interaction `{interaction}`"),
    )
}

impl ChannelPlugin for Demo {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: "agentdesk.demo".into(),
            name: "Demo conversations".into(),
            vendor: "agentdesk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new(CHANNEL)],
            description: "A simulated customer who answers every message, for trying agentdesk."
                .into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        let state = StateFile::new(&host.data_dir(), "demo-state.json");
        let durable = state
            .load()
            .map_err(|e| PluginError::failed(format!("cannot read demo state: {e}")))?;
        Ok(Demo {
            host,
            settings,
            state,
            durable,
            open: BTreeMap::new(),
            consultations: 0,
        })
    }

    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError> {
        self.host
            .info(&format!("demo channel starting for {}", hello.host));
        let mut first = None;
        for _ in 0..self.settings.offer_at_start {
            let interaction = self.offer_conversation()?;
            first.get_or_insert(interaction);
        }
        if let Some(first) = first {
            for n in 1..=self.settings.messages_at_start {
                self.customer_says(&first, format!("Earlier message {n} about my order"))?;
            }
        }
        Ok(PluginHello {
            commands: [
                "accept",
                "reject",
                "end",
                "send-message",
                "mark-done",
                "invoke-action",
                "consult",
                "conference",
            ]
            .map(String::from)
            .to_vec(),
            events: ["offer", "message-received", "ended"]
                .map(String::from)
                .to_vec(),
            media: vec![Media::Conversation],
            actions: vec![CustomAction {
                id: NEW_CONVERSATION.into(),
                label: "Simulate a new customer".into(),
                enabled: true,
            }],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        match command {
            Command::InvokeAction(a) if a.action == NEW_CONVERSATION => {
                let interaction = self.offer_conversation()?;
                Ok(Reply::Created(plugin_api::Created { interaction }))
            }
            Command::Accept(accept) => {
                let opening = self.settings.opening.clone();
                self.customer_says(
                    &accept.interaction,
                    format!("Hi {}! {opening}", accept.agent.display_name),
                )?;
                Ok(Reply::done())
            }
            Command::SendMessage(send) => {
                let reply = format!("You said: {}", send.message.text);
                self.customer_says(&send.interaction, reply)?;
                Ok(Reply::done())
            }
            Command::End(end) => {
                self.open
                    .remove(&end.interaction)
                    .ok_or_else(|| not_found(&end.interaction))?;
                self.host.emit(Event::Ended(Ended {
                    interaction: end.interaction,
                    reason: EndReason::AgentEnded,
                    detail: String::new(),
                }))?;
                Ok(Reply::done())
            }
            Command::Reject(reject) => {
                self.open.remove(&reject.interaction);
                Ok(Reply::done())
            }
            Command::MarkDone(_) => Ok(Reply::done()),
            // A consultation between agents: the simulated customer sees nothing of it.
            Command::Consult(consult) => {
                self.consultations += 1;
                let n = self.consultations;
                let interaction =
                    InteractionId::new(format!("{}-consult-{n}", consult.interaction));
                Ok(Reply::Created(plugin_api::Created { interaction }))
            }
            Command::Conference(_) => Ok(Reply::done()),
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.host.info("demo channel stopped");
        Ok(())
    }
}

plugin_api::export_plugin!(Demo);
