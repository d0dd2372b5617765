//! A template channel plugin for agentdesk: an "SMS" channel whose messages arrive through a
//! spool folder. Replace the spool with your real protocol; keep the shape:
//! `descriptor` → `create` (read settings, no I/O) → `start` (I/O on your own thread, declare
//! what you support) → `handle` (quick, never block) → `stop` (join your threads).

use plugin_api::{
    Address, ChannelKind, ChannelPlugin, Command, Contact, EndReason, Ended, Host, HostHello,
    InteractionId, Media, MessageContent, MessageReceived, Offer, Party, PluginConfig,
    PluginDescriptor, PluginError, PluginHello, Reply, Route, unsupported,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The plugin's settings: `[plugins.settings."acme.sms"]` in the admin file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// The queue new conversations are offered to.
    queue: String,
    /// A folder where each `*.txt` file is one inbound SMS: first line the sender, then the text.
    spool: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            queue: "sms".into(),
            spool: None,
        }
    }
}

/// One instance per host.
pub struct Sms {
    host: Host,
    settings: Settings,
    running: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl ChannelPlugin for Sms {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: "acme.sms".into(),
            name: "Acme SMS".into(),
            vendor: "Acme".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: String::new(), // filled in by export_plugin!
            channels: vec![ChannelKind::new("sms")],
            description: "Text messages from a spool folder".into(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        Ok(Sms {
            host,
            settings,
            running: Arc::new(AtomicBool::new(false)),
            watcher: None,
        })
    }

    fn start(&mut self, _hello: &HostHello) -> Result<PluginHello, PluginError> {
        self.running.store(true, Ordering::SeqCst);
        if let Some(spool) = self.settings.spool.clone() {
            let (host, running, queue) = (
                self.host.clone(),
                self.running.clone(),
                self.settings.queue.clone(),
            );
            let thread = std::thread::Builder::new()
                .name("acme-sms-spool".into())
                .spawn(move || watch_spool(&host, &running, &spool, &queue))
                .map_err(|e| PluginError::failed(format!("cannot start the spool watcher: {e}")))?;
            self.watcher = Some(thread);
        }
        Ok(PluginHello {
            commands: vec![
                "accept".into(),
                "reject".into(),
                "end".into(),
                "mark-done".into(),
            ],
            events: vec!["offer".into(), "message-received".into(), "ended".into()],
            media: vec![Media::Conversation],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        match command {
            Command::Accept(_) | Command::Reject(_) | Command::MarkDone(_) => Ok(Reply::done()),
            // The lifecycle: after `end`, say it ended (the host then starts after-call work).
            Command::End(end) => {
                self.host.emit(Ended {
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
        if let Some(thread) = self.watcher.take() {
            if thread.join().is_err() {
                self.host.error("the spool watcher had panicked");
            }
        }
        Ok(())
    }
}

fn watch_spool(host: &Host, running: &AtomicBool, spool: &std::path::Path, queue: &str) {
    while running.load(Ordering::SeqCst) {
        for entry in std::fs::read_dir(spool).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "txt") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let (sender, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
            let id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let offer = Offer {
                interaction: InteractionId::new(format!("sms-{id}")),
                external_id: id,
                channel: ChannelKind::new("sms"),
                media: Media::Conversation,
                route: Route::queue(queue.to_string()),
                contact: Contact {
                    display_name: None,
                    addresses: vec![Address::phone(sender.trim())],
                },
                subject: None,
                case_data: vec![],
                actions: vec![],
                priority: 0,
            };
            // The text follows the offer as the customer's message; its id is stable, so the
            // host keeps it once even if a crash makes us send it again.
            let message = MessageReceived {
                interaction: offer.interaction.clone(),
                from: Party {
                    id: "customer".into(),
                    role: Party::CUSTOMER.into(),
                    display_name: sender.trim().to_string(),
                    address: Some(Address::phone(sender.trim())),
                },
                message: MessageContent {
                    id: format!("{}-text", offer.external_id),
                    text: body.trim_end().to_string(),
                    attachments: vec![],
                },
            };
            match host.emit(offer).and_then(|()| host.emit(message)) {
                Ok(()) => {
                    if let Err(e) = std::fs::rename(&path, path.with_extension("offered")) {
                        host.warn(&format!("cannot mark {} offered: {e}", path.display()));
                    }
                }
                Err(e) => host.warn(&format!("offer not accepted, will retry: {e}")),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

plugin_api::export_plugin!(Sms);

/// Runs the plugin under `FakeHost`, which enforces the agentdesk host's rules: commands the
/// hello does not declare are refused, events are decoded and checked, every call has a deadline.
#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::testing::FakeHost;
    use plugin_api::{Accept, AgentRef, End, Event};

    #[test]
    fn a_spooled_sms_is_offered_and_the_conversation_follows_the_hosts_rules() {
        let spool = std::env::temp_dir().join(format!("acme-sms-spool-{}", std::process::id()));
        std::fs::create_dir_all(&spool).expect("spool");
        std::fs::write(spool.join("m1.txt"), "+15550123\nWhere is my parcel?\n").expect("sms");
        let mut fake =
            FakeHost::create::<Sms>(serde_json::json!({ "spool": spool })).expect("create");
        fake.start().expect("start");
        let offer = fake
            .wait_for(Duration::from_secs(5), |e| matches!(e, Event::Offer(_)))
            .expect("an offer");
        let Event::Offer(offer) = offer else {
            unreachable!()
        };
        assert_eq!(offer.contact.addresses[0].value, "+15550123");
        let agent = AgentRef {
            id: "ann".into(),
            display_name: "Ann".into(),
        };
        fake.handle(Command::Accept(Accept {
            interaction: offer.interaction.clone(),
            agent,
        }))
        .expect("accept");
        fake.handle(Command::End(End {
            interaction: offer.interaction,
        }))
        .expect("end");
        assert!(
            fake.wait_for(Duration::from_secs(1), |e| matches!(e, Event::Ended(_)))
                .is_some(),
            "ended follows end"
        );
        fake.stop().expect("stop");
        fake.assert_clean();
        let _ = std::fs::remove_dir_all(spool);
    }
}
