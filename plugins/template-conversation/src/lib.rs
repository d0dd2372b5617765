//! A conversation-channel template for agentdesk: a "relay" channel whose customers write through
//! a folder (stand-in for your platform's API or webhook). Replace the folder with your protocol;
//! keep the lifecycle (docs/plugin-guide.md): offer once, customer lines as messages with stable
//! ids, the agent's messages delivered and never echoed, `ended` after `end` or when the customer
//! leaves, typing both ways.
//!
//! The folder: `in/<conversation>-<n>.txt` is the customer's n-th message (n from 1);
//! `in/<conversation>.typing` exists while the customer types; `in/<conversation>.left` means they
//! left. The agent's side is written to `out/<conversation>.txt` (one line per message),
//! `out/<conversation>.typing` and `out/<conversation>.ended`.

use plugin_api::{
    ChannelKind, ChannelPlugin, Command, Contact, EndReason, Ended, Host, HostHello, InteractionId,
    Media, MessageContent, MessageReceived, Offer, OrderedEmitter, Party, PluginConfig,
    PluginDescriptor, PluginError, PluginHello, Reply, Route, Typing, unsupported,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The channel kind.
const CHANNEL: &str = "relay";

/// The plugin's settings: `[plugins.settings."acme.relay"]` in the admin file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// The queue new conversations are offered to.
    queue: String,
    /// The relay folder (relative: under the plugin's data directory).
    folder: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            queue: "relay".into(),
            folder: PathBuf::from("relay"),
        }
    }
}

/// What the watcher knows: conversations offered, customers typing.
#[derive(Debug, Default)]
struct Seen {
    offered: BTreeSet<String>,
    typing: BTreeSet<String>,
    ended: BTreeSet<String>,
}

/// One instance per host.
pub struct Relay {
    host: Host,
    settings: Settings,
    folder: PathBuf,
    running: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    emitter: Option<Arc<OrderedEmitter>>,
    seen: Arc<Mutex<Seen>>,
}

fn customer(conversation: &str) -> Party {
    Party {
        id: "customer".into(),
        role: Party::CUSTOMER.into(),
        display_name: conversation.to_string(),
        address: None,
    }
}

impl Relay {
    fn emitter(&self) -> Result<&OrderedEmitter, PluginError> {
        self.emitter
            .as_deref()
            .ok_or_else(|| PluginError::failed("the relay is not running"))
    }

    /// Writes to the agent's side of a conversation and syncs it: the reply to the host (the
    /// acknowledgement) comes after the text is durable.
    fn write_out(&self, name: &str, text: Option<&str>) -> Result<(), PluginError> {
        let path = self.folder.join("out").join(name);
        let io = |e: std::io::Error| PluginError::failed(format!("{}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if let Some(text) = text {
            writeln!(file, "{text}").map_err(io)?;
        }
        file.sync_data().map_err(io)
    }
}

impl ChannelPlugin for Relay {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: "acme.relay".into(),
            name: "Acme Relay".into(),
            vendor: "Acme".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(), // filled in by export_plugin!
            channels: vec![ChannelKind::new(CHANNEL)],
            description: "Conversations relayed through a folder".into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        let folder = host.data_dir().join(&settings.folder);
        Ok(Relay {
            host,
            settings,
            folder,
            running: Arc::new(AtomicBool::new(false)),
            watcher: None,
            emitter: None,
            seen: Arc::new(Mutex::new(Seen::default())),
        })
    }

    fn start(&mut self, _hello: &HostHello) -> Result<PluginHello, PluginError> {
        for side in ["in", "out"] {
            std::fs::create_dir_all(self.folder.join(side)).map_err(|e| {
                PluginError::new(
                    plugin_api::ErrorCode::UNAVAILABLE,
                    format!("cannot use {}: {e}", self.folder.display()),
                )
            })?;
        }
        // Events go out in order through one thread that waits when the host is busy.
        let emitter = Arc::new(OrderedEmitter::new(self.host.clone(), "acme-relay-emit")?);
        self.running.store(true, Ordering::SeqCst);
        let watch = Watch {
            host: self.host.clone(),
            emitter: emitter.clone(),
            inbox: self.folder.join("in"),
            queue: self.settings.queue.clone(),
            seen: self.seen.clone(),
        };
        let running = self.running.clone();
        let thread = std::thread::Builder::new()
            .name("acme-relay-watch".into())
            .spawn(move || {
                while running.load(Ordering::SeqCst) {
                    watch.scan();
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .map_err(|e| PluginError::failed(format!("cannot start the watcher: {e}")))?;
        self.watcher = Some(thread);
        self.emitter = Some(emitter);
        let kinds = |k: &[&str]| k.iter().map(|s| s.to_string()).collect();
        Ok(PluginHello {
            commands: kinds(&[
                "accept",
                "reject",
                "send-message",
                "set-typing",
                "end",
                "mark-done",
            ]),
            events: kinds(&["offer", "message-received", "typing", "ended"]),
            media: vec![Media::Conversation],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        match command {
            Command::Accept(_) | Command::Reject(_) | Command::MarkDone(_) => Ok(Reply::done()),
            // Delivered to the customer, never echoed back: the host has it already.
            Command::SendMessage(send) => {
                let line = format!("Agent: {}", send.message.text.replace('\n', " "));
                self.write_out(&format!("{}.txt", send.interaction.as_str()), Some(&line))?;
                Ok(Reply::done())
            }
            Command::SetTyping(typing) => {
                let path = self
                    .folder
                    .join("out")
                    .join(format!("{}.typing", typing.interaction.as_str()));
                let done = if typing.typing {
                    std::fs::write(&path, b"")
                } else {
                    std::fs::remove_file(&path).or_else(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    })
                };
                done.map_err(|e| PluginError::failed(format!("{}: {e}", path.display())))?;
                Ok(Reply::done())
            }
            // The lifecycle: close our side, then say it ended.
            Command::End(end) => {
                let conversation = end.interaction.as_str().to_string();
                self.write_out(&format!("{conversation}.ended"), None)?;
                self.seen
                    .lock()
                    .map_err(|_| PluginError::failed("state lock poisoned"))?
                    .ended
                    .insert(conversation);
                self.emitter()?.emit(Ended {
                    interaction: end.interaction,
                    reason: EndReason::AgentEnded,
                    detail: String::new(),
                })?;
                Ok(Reply::done())
            }
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.running.store(false, Ordering::SeqCst);
        if let Some(thread) = self.watcher.take()
            && thread.join().is_err()
        {
            self.host.error("the relay watcher had panicked");
        }
        if let Some(emitter) = self.emitter.take() {
            match Arc::try_unwrap(emitter) {
                Ok(mut emitter) => {
                    let dropped = emitter.stop(Duration::from_secs(1));
                    if dropped > 0 {
                        self.host
                            .warn(&format!("{dropped} events not delivered before stopping"));
                    }
                }
                Err(_) => self.host.warn("the emitter is still shared at stop"),
            }
        }
        Ok(())
    }
}

/// The watcher's side: reads the customer's folder and reports what is new.
struct Watch {
    host: Host,
    emitter: Arc<OrderedEmitter>,
    inbox: PathBuf,
    queue: String,
    seen: Arc<Mutex<Seen>>,
}

impl Watch {
    fn scan(&self) {
        let Ok(mut seen) = self.seen.lock() else {
            self.host
                .error("state lock poisoned; the relay stops reading");
            return;
        };
        let mut messages: BTreeMap<(String, u32), PathBuf> = BTreeMap::new();
        let mut typing = BTreeSet::new();
        let mut left = BTreeSet::new();
        let entries = match std::fs::read_dir(&self.inbox) {
            Ok(entries) => entries,
            Err(e) => {
                self.host
                    .warn(&format!("cannot read {}: {e}", self.inbox.display()));
                return;
            }
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(".txt")
                && let Some((conversation, n)) = stem.rsplit_once('-')
                && let Ok(n) = n.parse::<u32>()
            {
                messages.insert((conversation.to_string(), n), path.clone());
            } else if let Some(conversation) = name.strip_suffix(".typing") {
                typing.insert(conversation.to_string());
            } else if let Some(conversation) = name.strip_suffix(".left") {
                left.insert(conversation.to_string());
            }
        }
        for ((conversation, n), path) in messages {
            if seen.ended.contains(&conversation) {
                continue;
            }
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    self.host.warn(&format!("{}: {e}", path.display()));
                    continue;
                }
            };
            if seen.offered.insert(conversation.clone()) {
                self.send(Offer {
                    interaction: InteractionId::new(conversation.clone()),
                    external_id: conversation.clone(),
                    channel: ChannelKind::new(CHANNEL),
                    media: Media::Conversation,
                    route: Route::queue(self.queue.clone()),
                    contact: Contact {
                        display_name: Some(conversation.clone()),
                        addresses: vec![],
                    },
                    subject: Some(format!("Relay conversation {conversation}")),
                    case_data: vec![],
                    actions: vec![],
                    priority: 0,
                });
            }
            // A stable id: sent again after a crash, the host keeps it once.
            self.send(MessageReceived {
                interaction: InteractionId::new(conversation.clone()),
                from: customer(&conversation),
                message: MessageContent {
                    id: format!("{conversation}-{n}"),
                    text: text.trim_end().to_string(),
                    attachments: vec![],
                },
            });
            if let Err(e) = std::fs::rename(&path, path.with_extension("read")) {
                self.host
                    .warn(&format!("cannot mark {} read: {e}", path.display()));
            }
        }
        for conversation in typing.symmetric_difference(&seen.typing.clone()) {
            if seen.offered.contains(conversation) {
                self.send(Typing {
                    interaction: InteractionId::new(conversation.clone()),
                    party: customer(conversation),
                    typing: typing.contains(conversation),
                });
            }
        }
        seen.typing = typing;
        for conversation in left {
            if seen.offered.contains(&conversation) && seen.ended.insert(conversation.clone()) {
                self.send(Ended {
                    interaction: InteractionId::new(conversation),
                    reason: EndReason::ContactLeft,
                    detail: "the customer left".into(),
                });
            }
        }
    }

    fn send(&self, event: impl Into<plugin_api::Event>) {
        if let Err(e) = self.emitter.emit(event) {
            self.host.error(&format!("event not queued: {e}"));
        }
    }
}

/// The relay folder of a running plugin (for tests and tools).
pub fn outbox(folder: &Path, conversation: &str) -> PathBuf {
    folder.join("out").join(format!("{conversation}.txt"))
}

plugin_api::export_plugin!(Relay);

/// Runs the plugin under `FakeHost`, which enforces the agentdesk host's rules.
#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::testing::FakeHost;
    use plugin_api::{Accept, AgentRef, End, Event, SendMessage, SetTyping};

    #[test]
    fn a_conversation_goes_both_ways_with_typing_and_ends() {
        let mut fake = FakeHost::create::<Relay>(serde_json::json!({})).expect("create");
        let folder = fake.data_dir().join("relay");
        fake.start().expect("start");
        std::fs::write(folder.join("in/c1-1.txt"), "Hello, my order is late\n").expect("write");
        let offer = fake.wait_for(Duration::from_secs(5), |e| matches!(e, Event::Offer(_)));
        assert!(offer.is_some(), "offered");
        let interaction = InteractionId::new("c1");
        fake.handle(Command::Accept(Accept {
            interaction: interaction.clone(),
            agent: AgentRef {
                id: "ann".into(),
                display_name: "Ann".into(),
            },
        }))
        .expect("accept");
        std::fs::write(folder.join("in/c1.typing"), b"").expect("typing");
        assert!(
            fake.wait_for(
                Duration::from_secs(5),
                |e| matches!(e, Event::Typing(t) if t.typing)
            )
            .is_some()
        );
        fake.handle(Command::SetTyping(SetTyping {
            interaction: interaction.clone(),
            typing: true,
        }))
        .expect("typing");
        assert!(folder.join("out/c1.typing").exists());
        fake.handle(Command::SendMessage(SendMessage {
            interaction: interaction.clone(),
            message: MessageContent {
                id: "a1".into(),
                text: "Let me check".into(),
                attachments: vec![],
            },
            agent: None,
        }))
        .expect("send");
        let out = std::fs::read_to_string(outbox(&folder, "c1")).expect("outbox");
        assert_eq!(out, "Agent: Let me check\n");
        std::fs::write(folder.join("in/c1-2.txt"), "Thanks\n").expect("write");
        assert!(
            fake.wait_for(Duration::from_secs(5), |e| matches!(e,
                Event::MessageReceived(m) if m.message.id == "c1-2" && m.message.text == "Thanks"))
                .is_some()
        );
        fake.handle(Command::End(End {
            interaction: interaction.clone(),
        }))
        .expect("end");
        assert!(
            fake.wait_for(Duration::from_secs(5), |e| matches!(e, Event::Ended(_)))
                .is_some()
        );
        assert!(folder.join("out/c1.ended").exists());
        fake.stop().expect("stop");
        let messages: Vec<String> = fake
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::MessageReceived(m) => Some(m.message.text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            messages,
            vec!["Hello, my order is late", "Thanks"],
            "the agent's own message is never echoed"
        );
        fake.assert_clean();
    }
}
