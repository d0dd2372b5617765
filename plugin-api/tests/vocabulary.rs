//! The vocabulary's encoding promises: every kind round-trips, a 1.0 decoder reads messages from a
//! newer writer (extra fields, unknown kinds, unknown enum values), and malformed bytes are errors.

use plugin_api::*;

fn agent() -> AgentRef {
    AgentRef {
        id: "a1".into(),
        display_name: "Sam".into(),
    }
}

fn every_command() -> Vec<Command> {
    let i = InteractionId::new("i-1");
    vec![
        Accept {
            interaction: i.clone(),
            agent: agent(),
        }
        .into(),
        Reject {
            interaction: i.clone(),
            reason: "no agents".into(),
            code: RejectCode::NoAgents,
        }
        .into(),
        End {
            interaction: i.clone(),
        }
        .into(),
        SendMessage {
            interaction: i.clone(),
            message: MessageContent {
                id: "m1".into(),
                text: "<b>hi</b>".into(),
                attachments: vec![],
            },
            agent: Some(agent()),
        }
        .into(),
        SetTyping {
            interaction: i.clone(),
            typing: true,
        }
        .into(),
        Hold {
            interaction: i.clone(),
        }
        .into(),
        Resume {
            interaction: i.clone(),
        }
        .into(),
        SendDtmf {
            interaction: i.clone(),
            digits: "12#".into(),
        }
        .into(),
        Dial {
            to: Address::phone("+15550100"),
            agent: agent(),
            contact: None,
            related: Some(i.clone()),
        }
        .into(),
        Compose {
            to: vec![Address::email("x@example.com")],
            agent: agent(),
            subject: "s".into(),
            body: "b".into(),
            attachments: vec![],
            related: None,
            about: None,
        }
        .into(),
        Compose {
            to: vec![Address::new(Address::AGENT, "bob")],
            agent: agent(),
            subject: String::new(),
            body: String::new(),
            attachments: vec![],
            related: Some(i.clone()),
            about: Some(About {
                subject: Some("Order 1234".into()),
                case_data: vec![CaseField {
                    key: "order".into(),
                    label: Some("Order".into()),
                    value: "1234".into(),
                }],
            }),
        }
        .into(),
        Transfer {
            interaction: i.clone(),
            target: Target::Queue {
                queue: "billing".into(),
            },
            mode: TransferMode::Blind,
        }
        .into(),
        Transfer {
            interaction: i.clone(),
            target: Target::Agent { agent: agent() },
            mode: TransferMode::Consultative {
                consultation: InteractionId::new("c-1"),
            },
        }
        .into(),
        Consult {
            interaction: i.clone(),
            target: Target::Address {
                address: Address::phone("200"),
            },
        }
        .into(),
        Conference {
            interaction: i.clone(),
            consultation: InteractionId::new("c-1"),
        }
        .into(),
        ForwardCalls {
            agent: agent(),
            extension: "101".into(),
            forward_to: Some(Address::phone("202")),
        }
        .into(),
        ForwardCalls {
            agent: agent(),
            extension: "101".into(),
            forward_to: None,
        }
        .into(),
        MarkDone {
            interaction: i.clone(),
            wrap_up: Some(WrapUpCode {
                code: "sale".into(),
                label: "Sale".into(),
            }),
        }
        .into(),
        PutInWorkbin {
            interaction: i.clone(),
            workbin: "later".into(),
        }
        .into(),
        LeaveConference {
            interaction: i.clone(),
            agent: agent(),
        }
        .into(),
        InvokeAction {
            interaction: Some(i),
            action: "refund".into(),
        }
        .into(),
    ]
}

fn every_event() -> Vec<Event> {
    let i = InteractionId::new("i-1");
    let party = Party {
        id: "c".into(),
        role: Party::CUSTOMER.into(),
        display_name: "Jo".into(),
        address: Some(Address::email("jo@example.com")),
    };
    vec![
        Offer {
            interaction: i.clone(),
            external_id: "x-1".into(),
            channel: ChannelKind::new(ChannelKind::CHAT),
            media: Media::Conversation,
            route: Route::queue("default"),
            contact: Contact {
                display_name: Some("Jo".into()),
                addresses: vec![Address::email("jo@example.com")],
            },
            subject: Some("Order".into()),
            case_data: vec![CaseField {
                key: "order".into(),
                label: None,
                value: "A-1".into(),
            }],
            actions: vec![CustomAction {
                id: "refund".into(),
                label: "Refund".into(),
                enabled: false,
            }],
            priority: 3,
        }
        .into(),
        MessageReceived {
            interaction: i.clone(),
            from: party.clone(),
            message: MessageContent {
                id: "m".into(),
                text: "t".into(),
                attachments: vec![AttachmentRef {
                    name: "a.pdf".into(),
                    path: "att/a.pdf".into(),
                    content_type: "application/pdf".into(),
                    size: 10,
                }],
            },
        }
        .into(),
        Typing {
            interaction: i.clone(),
            party: party.clone(),
            typing: false,
        }
        .into(),
        MediaStateChanged {
            interaction: i.clone(),
            state: MediaState::Held,
        }
        .into(),
        PartyJoined {
            interaction: i.clone(),
            party: party.clone(),
        }
        .into(),
        PartyLeft {
            interaction: i.clone(),
            party,
        }
        .into(),
        Ended {
            interaction: i.clone(),
            reason: EndReason::ContactLeft,
            detail: String::new(),
        }
        .into(),
        CaseDataChanged {
            interaction: i.clone(),
            case_data: vec![],
        }
        .into(),
        ActionsChanged {
            interaction: i,
            actions: vec![],
        }
        .into(),
        ChannelStatus {
            healthy: false,
            detail: "IMAP server unreachable".into(),
        }
        .into(),
        ConversationRules {
            interaction: InteractionId::new("i-2"),
            can_reply: false,
            reason: "closed 2 h ago".into(),
            window_closes_at: Some(1_700_000_000_000),
            max_length: Some(280),
            counting: LengthCounting::XWeighted,
            public: true,
        }
        .into(),
        Receipt {
            interaction: InteractionId::new("i-2"),
            state: ReceiptState::Read,
            message: None,
            up_to: Some(1_700_000_000_000),
        }
        .into(),
        LinkCode {
            interaction: InteractionId::new("i-2"),
            code: "123456789".into(),
        }
        .into(),
    ]
}

#[test]
fn a_linked_route_and_a_link_code_1_3_decode_as_data() {
    let offer = Envelope {
        kind: "link-code".into(),
        schema: 1,
        bytes: br#"{"interaction":"chat-1","code":"123456789","added_later":true}"#
            .to_vec()
            .into(),
    };
    let Event::LinkCode(link) = Event::from_envelope(&offer).expect("decodes") else {
        panic!("not a link code");
    };
    assert_eq!(
        (link.interaction.as_str(), link.code.as_str()),
        ("chat-1", "123456789")
    );
    let route: Route =
        serde_json::from_str(r#"{"to":"linked","name":"123456789"}"#).expect("route");
    assert_eq!(route, Route::linked("123456789"));
    assert_eq!(Route::LINKED, "linked");
}

#[test]
fn conversation_rules_and_receipts_1_2_need_only_the_interaction_and_tolerate_the_unknown() {
    let minimal = Envelope {
        kind: "conversation-rules".into(),
        schema: 1,
        bytes: br#"{"interaction":"i-3","counting":"braille-cells","later":1}"#
            .to_vec()
            .into(),
    };
    let Event::ConversationRules(rules) = Event::from_envelope(&minimal).expect("decodes") else {
        panic!("a conversation-rules event");
    };
    assert!(rules.can_reply, "replies allowed unless said otherwise");
    assert_eq!(rules.counting, LengthCounting::Other);
    assert_eq!((rules.max_length, rules.public), (None, false));
    let receipt = Envelope {
        kind: "receipt".into(),
        schema: 1,
        bytes: br#"{"interaction":"i-3","state":"played"}"#.to_vec().into(),
    };
    let Event::Receipt(receipt) = Event::from_envelope(&receipt).expect("decodes") else {
        panic!("a receipt event");
    };
    assert_eq!(receipt.state, ReceiptState::Other);
}

#[test]
fn every_command_and_event_kind_round_trips_through_an_envelope() {
    let commands = every_command();
    for command in &commands {
        let decoded = Command::from_envelope(&command.to_envelope()).expect("decodes");
        assert_eq!(&decoded, command);
        assert!(Command::KNOWN_KINDS.contains(&command.kind()));
    }
    let events = every_event();
    for event in &events {
        assert_eq!(
            &Event::from_envelope(&event.to_envelope()).expect("decodes"),
            event
        );
    }
    // Every known kind is exercised above.
    let mut kinds: Vec<&str> = commands.iter().map(Command::kind).collect();
    kinds.dedup();
    assert_eq!(kinds.len(), Command::KNOWN_KINDS.len());
    assert_eq!(events.len(), Event::KNOWN_KINDS.len());
}

#[test]
fn a_1_0_decoder_reads_a_message_from_a_newer_writer() {
    // A 1.x writer added fields, an enum value and a route field this version does not know.
    let newer = br#"{
        "interaction": "i-9", "external_id": "x", "channel": "sms", "media": "hologram",
        "route": {"to": "skill", "name": "french", "fallback": "vip"},
        "contact": {"display_name": "Jo", "addresses": [{"kind": "whatsapp", "value": "+1"}], "vip": true},
        "sentiment": -0.4, "priority": 2
    }"#;
    let envelope = Envelope {
        kind: "offer".into(),
        schema: 2,
        bytes: newer.to_vec().into(),
    };
    let Event::Offer(offer) = Event::from_envelope(&envelope).expect("tolerant decode") else {
        panic!("not an offer")
    };
    assert_eq!(offer.channel.as_str(), "sms");
    assert_eq!(offer.media, Media::Other);
    assert_eq!(
        offer.route,
        Route {
            to: "skill".into(),
            name: "french".into()
        }
    );
    assert_eq!(offer.contact.addresses[0].kind, "whatsapp");
    assert_eq!(offer.priority, 2);
}

#[test]
fn the_1_1_additions_are_optional_both_ways() {
    // From a 1.0 host: no refusal code, no sending agent.
    let from_1_0 = |kind: &str, json: &[u8]| {
        Command::from_envelope(&Envelope {
            kind: kind.into(),
            schema: 1,
            bytes: json.to_vec().into(),
        })
        .expect("decodes")
    };
    let Command::Reject(reject) = from_1_0("reject", br#"{"interaction":"i","reason":"x"}"#) else {
        panic!("not a reject")
    };
    assert_eq!(reject.code, RejectCode::Unspecified);
    let send = br#"{"interaction":"i","message":{"id":"m","text":"t"}}"#;
    let Command::SendMessage(send) = from_1_0("send-message", send) else {
        panic!("not a send")
    };
    assert_eq!(send.agent, None);
    // From a later host: a code this version does not know is `Unspecified`, not an error.
    let later = br#"{"interaction":"i","reason":"x","code":"too-angry"}"#;
    let Command::Reject(reject) = from_1_0("reject", later) else {
        panic!("not a reject")
    };
    assert_eq!(reject.code, RejectCode::Unspecified);
    // A 1.1 writer without a sending agent writes exactly what 1.0 wrote.
    let bytes = Command::from(SendMessage {
        interaction: InteractionId::new("i"),
        message: MessageContent {
            id: "m".into(),
            text: "t".into(),
            attachments: vec![],
        },
        agent: None,
    })
    .to_envelope()
    .bytes;
    assert!(!String::from_utf8_lossy(&bytes).contains("agent"));
}

#[test]
fn an_unknown_kind_is_kept_as_unknown_and_passed_on_unchanged() {
    let envelope = Envelope {
        kind: "sentiment-changed".into(),
        schema: 1,
        bytes: br#"{"score":-1}"#.to_vec().into(),
    };
    let event = Event::from_envelope(&envelope).expect("unknown is not an error");
    assert!(matches!(&event, Event::Unknown(u) if u.kind == "sentiment-changed"));
    assert_eq!(event.to_envelope(), envelope);
}

#[test]
fn malformed_bytes_of_a_known_kind_are_an_error_naming_the_kind() {
    let envelope = Envelope {
        kind: "accept".into(),
        schema: 1,
        bytes: br#"{"interaction": 5}"#.to_vec().into(),
    };
    let err = Command::from_envelope(&envelope).unwrap_err().to_string();
    assert!(err.contains("malformed `accept`"), "{err}");
    let as_plugin_error: PluginError = Command::from_envelope(&envelope).unwrap_err().into();
    assert_eq!(as_plugin_error.code, ErrorCode::INVALID);
}

#[test]
fn plugin_config_settings_parse_into_the_plugin_type_with_a_clear_error() {
    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Settings {
        port: u16,
    }
    let good = PluginConfig {
        plugin_id: "p".into(),
        settings: serde_json::json!({"port": 8080}),
    };
    assert_eq!(good.parse::<Settings>().expect("parses").port, 8080);
    let missing = PluginConfig {
        plugin_id: "p".into(),
        settings: serde_json::Value::Null,
    };
    assert_eq!(missing.parse::<Settings>().expect("defaults").port, 0);
    let bad = PluginConfig {
        plugin_id: "p".into(),
        settings: serde_json::json!({"port": "eighty"}),
    };
    let err = bad.parse::<Settings>().unwrap_err();
    assert_eq!(err.code, ErrorCode::CONFIG);
    assert!(err.message.contains("settings of plugin `p`"), "{err}");
}

#[test]
fn state_file_saves_atomically_and_loads_default_when_absent() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = store::StateFile::new(dir.path(), "state.json");
    let empty: Vec<u32> = file.load().expect("absent is default");
    assert!(empty.is_empty());
    file.save(&vec![1u32, 2, 3]).expect("save");
    assert_eq!(file.load::<Vec<u32>>().expect("load"), vec![1, 2, 3]);
    assert!(!dir.path().join("state.tmp").exists());
    std::fs::write(file.path(), b"{broken").expect("corrupt");
    assert!(
        file.load::<Vec<u32>>()
            .unwrap_err()
            .to_string()
            .contains("state.json")
    );
}

#[test]
fn unknown_error_codes_and_log_levels_still_have_names() {
    assert_eq!(ErrorCode(77).name(), "code-77");
    assert_eq!(ErrorCode::QUEUE_FULL.name(), "queue-full");
    assert!(LogLevel::ERROR > LogLevel::INFO);
}
