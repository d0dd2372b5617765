//! plugin-api's `testing::FakeHost` enforces what the agentdesk host enforces, so a vendor's unit
//! tests catch what the host would refuse: undeclared commands, malformed and undeclared events,
//! a full event queue, a call past its deadline. And `OrderedEmitter` delivers a burst in order
//! through a full queue.

use plugin_api::testing::{CallError, FakeHost, FakeHostOptions, Violation};
use plugin_api::{
    Accept, AgentRef, ChannelKind, ChannelPlugin, Command, Contact, End, Envelope, Event, Host,
    HostHello, InteractionId, Media, Offer, OrderedEmitter, PluginConfig, PluginDescriptor,
    PluginError, PluginHello, Reply, Route, unsupported,
};
use std::time::Duration;

/// What a test plugin does at start and in `handle`.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Offers one interaction; answers accept and end (emitting `ended`).
    Good,
    /// Emits an undecodable event and one of a kind it did not declare.
    BadEvents,
    /// Sleeps in `handle` past any test deadline.
    Sleepy,
    /// Emits 20 offers straight into the host's queue.
    Burst,
    /// Emits 20 offers through an `OrderedEmitter`.
    OrderedBurst,
}

struct TestPlugin {
    host: Host,
    behaviour: Behaviour,
    emitter: Option<OrderedEmitter>,
}

fn offer(n: usize) -> Offer {
    Offer {
        interaction: InteractionId::new(format!("i{n}")),
        external_id: format!("x{n}"),
        channel: ChannelKind::new("test"),
        media: Media::Conversation,
        route: Route::queue("default"),
        contact: Contact::default(),
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    }
}

impl ChannelPlugin for TestPlugin {
    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            id: "test.fake-host".into(),
            name: "FakeHost test".into(),
            vendor: "test".into(),
            version: "1.0.0".into(),
            api_version: String::new(),
            channels: vec![ChannelKind::new("test")],
            description: String::new(),
        }
    }

    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError> {
        let behaviour = match config.settings["behaviour"].as_str() {
            Some("bad-events") => Behaviour::BadEvents,
            Some("sleepy") => Behaviour::Sleepy,
            Some("burst") => Behaviour::Burst,
            Some("ordered-burst") => Behaviour::OrderedBurst,
            _ => Behaviour::Good,
        };
        Ok(TestPlugin {
            host,
            behaviour,
            emitter: None,
        })
    }

    fn start(&mut self, _hello: &HostHello) -> Result<PluginHello, PluginError> {
        match self.behaviour {
            Behaviour::Good => self.host.emit(offer(0))?,
            Behaviour::BadEvents => {
                self.host.emit_envelope(Envelope {
                    kind: "message-received".into(),
                    schema: 1,
                    bytes: b"{not json".to_vec().into(),
                })?;
                self.host.emit(Event::Typing(plugin_api::Typing {
                    interaction: InteractionId::new("i0"),
                    party: plugin_api::Party {
                        id: "c".into(),
                        role: "customer".into(),
                        display_name: "C".into(),
                        address: None,
                    },
                    typing: true,
                }))?;
            }
            Behaviour::Sleepy => {}
            Behaviour::Burst => {
                for n in 0..20 {
                    // A plugin that ignores QUEUE_FULL loses events: the fake host records it.
                    let _ = self.host.emit(offer(n));
                }
            }
            Behaviour::OrderedBurst => {
                let emitter = OrderedEmitter::new(self.host.clone(), "test-emit")?;
                for n in 0..20 {
                    emitter.emit(offer(n))?;
                }
                self.emitter = Some(emitter);
            }
        }
        Ok(PluginHello {
            commands: vec!["accept".into(), "end".into()],
            events: vec!["offer".into(), "ended".into()],
            media: vec![Media::Conversation],
            actions: vec![],
            ..Default::default()
        })
    }

    fn handle(&mut self, command: Command) -> Result<Reply, PluginError> {
        if self.behaviour == Behaviour::Sleepy {
            std::thread::sleep(Duration::from_millis(600));
        }
        match command {
            Command::Accept(_) => Ok(Reply::done()),
            Command::End(e) => {
                self.host.emit(Event::Ended(plugin_api::Ended {
                    interaction: e.interaction,
                    reason: plugin_api::EndReason::AgentEnded,
                    detail: String::new(),
                }))?;
                Ok(Reply::done())
            }
            other => unsupported(&other),
        }
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        if let Some(mut emitter) = self.emitter.take() {
            emitter.stop(Duration::from_secs(1));
        }
        Ok(())
    }
}

fn host(behaviour: &str, queue: usize, deadline: Duration) -> FakeHost {
    FakeHost::with_options::<TestPlugin>(FakeHostOptions {
        settings: serde_json::json!({ "behaviour": behaviour }),
        queue,
        deadline,
    })
    .expect("create")
}

fn agent() -> AgentRef {
    AgentRef {
        id: "ann".into(),
        display_name: "Ann".into(),
    }
}

#[test]
fn a_well_behaved_plugin_runs_a_conversation_and_undeclared_commands_are_refused() {
    let mut fake = host("good", 16, Duration::from_secs(2));
    let hello = fake.start().expect("start");
    assert_eq!(hello.commands, vec!["accept", "end"]);
    assert!(
        fake.wait_for(Duration::from_secs(1), |e| matches!(e, Event::Offer(_)))
            .is_some()
    );
    let interaction = InteractionId::new("i0");
    fake.handle(Command::Accept(Accept {
        interaction: interaction.clone(),
        agent: agent(),
    }))
    .expect("accept");
    let refused = fake.handle(Command::Hold(plugin_api::Hold {
        interaction: interaction.clone(),
    }));
    assert_eq!(refused, Err(CallError::Undeclared("hold".into())));
    fake.handle(Command::End(End { interaction })).expect("end");
    assert!(
        fake.wait_for(Duration::from_secs(1), |e| matches!(e, Event::Ended(_)))
            .is_some()
    );
    fake.stop().expect("stop");
    fake.assert_clean();
    assert!(fake.data_dir().is_dir());
}

#[test]
fn malformed_and_undeclared_events_are_violations() {
    let mut fake = host("bad-events", 16, Duration::from_secs(2));
    fake.start().expect("start");
    let violations = fake.violations();
    assert!(
        matches!(&violations[0], Violation::MalformedEvent { kind, .. } if kind == "message-received"),
        "{violations:?}"
    );
    assert_eq!(
        violations[1],
        Violation::UndeclaredEvent {
            kind: "typing".into()
        }
    );
}

#[test]
fn a_call_past_its_deadline_quarantines_the_plugin() {
    let mut fake = host("sleepy", 16, Duration::from_millis(100));
    fake.start().expect("start");
    let accept = || {
        Command::Accept(Accept {
            interaction: InteractionId::new("i0"),
            agent: agent(),
        })
    };
    assert_eq!(
        fake.handle(accept()),
        Err(CallError::MissedDeadline(Duration::from_millis(100)))
    );
    assert_eq!(fake.handle(accept()), Err(CallError::Quarantined));
    assert!(matches!(
        fake.violations().as_slice(),
        [Violation::MissedDeadline { call, .. }] if call == "accept"
    ));
}

#[test]
fn a_full_queue_refuses_events_and_the_ordered_emitter_waits_instead_of_losing_them() {
    let mut careless = host("burst", 4, Duration::from_secs(2));
    careless.start().expect("start");
    assert_eq!(careless.events().len(), 4, "the rest were refused");
    assert!(careless.violations().contains(&Violation::QueueFull));

    let mut careful = host("ordered-burst", 4, Duration::from_secs(2));
    careful.start().expect("start");
    let mut all = Vec::new();
    while all.len() < 20 {
        // The test drains slowly, as a busy host would.
        std::thread::sleep(Duration::from_millis(10));
        all = careful.events().to_vec();
        assert!(all.len() <= 20);
    }
    let ids: Vec<String> = all
        .iter()
        .filter_map(|e| match e {
            Event::Offer(o) => Some(o.external_id.clone()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..20).map(|n| format!("x{n}")).collect();
    assert_eq!(ids, expected, "every event, in order");
    careful.stop().expect("stop");
}
