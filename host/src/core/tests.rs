//! The core's rules, one test each, named as the rule.

use super::testkit::*;
use super::*;
use plugin_api::{Address, Route};

#[test]
fn offers_go_to_the_longest_idle_ready_agent_and_ties_by_agent_id() {
    let mut day = Day::new();
    day.ready("bob", &["chat"]);
    day.ready("ann", &["chat"]);
    // Both became Ready at the same instant: the tie goes to "ann".
    let first = day.offer("chat");
    assert!(day.offered_to(first, "ann"));
    // Ann just got an offer; Bob has now waited longest.
    let second = day.offer("chat");
    assert!(day.offered_to(second, "bob"));
}

#[test]
fn waiting_interactions_are_offered_in_arrival_order() {
    let mut day = Day::new();
    let a = day.offer("email");
    let b = day.offer("email");
    assert_eq!(day.core.queue("email"), vec![a, b]);
    day.ready("bob", &["email"]);
    assert!(day.offered_to(a, "bob") && day.offered_to(b, "bob"));
}

#[test]
fn a_missed_offer_returns_to_the_head_of_its_queue_and_sets_the_agent_not_ready() {
    let mut day = Day::new();
    day.ready("ann", &["chat"]);
    let first = day.offer("chat");
    day.ok("ann", cmd_not_ready("chat", "break")); // Ann stays offered but will not answer
    let second = day.offer("chat");
    assert!(day.offered_to(first, "ann"));
    day.advance(21); // chat answer timeout: 20 s by default
    assert_eq!(day.state(first), InteractionState::Queued);
    assert_eq!(day.channel("ann", "chat"), not_ready(policy::MISSED_OFFER));
    assert_eq!(
        day.core.queue("chat"),
        vec![first, second],
        "the missed one is back at the head"
    );
    day.ready("bob", &["chat"]);
    assert!(day.offered_to(first, "bob"));
}

#[test]
fn a_contact_who_leaves_while_queued_is_abandoned() {
    let mut day = Day::new();
    let key = day.offer("chat");
    day.contact_leaves(key);
    assert_eq!(day.state(key), InteractionState::Abandoned);
    assert!(day.core.queue("chat").is_empty());
}

#[test]
fn auto_answer_accepts_offers_on_that_channel() {
    let mut day = Day::with_config("");
    let config = crate::config::AdminConfig::parse(
        &format!("{CONFIG}\n[[agents]]\nid = \"cy\"\nname = \"Cy\"\nchannels = [\"email\"]\nauto_answer = [\"email\"]\n"),
        "t",
    )
    .expect("config");
    let channels: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
    day.core = Core::new(Policy::from_config(&config, &channels), day.now);
    day.ready("cy", &["email"]);
    let key = day.offer("email");
    assert_eq!(day.state(key), InteractionState::Active);
    assert_eq!(day.owner(key).as_deref(), Some("cy"));
}

#[test]
fn logging_off_one_channel_leaves_the_others_untouched() {
    let mut day = Day::new();
    day.ready("ann", &["voice", "chat", "email"]);
    day.ok(
        "ann",
        AgentCommand::LogOffChannel {
            channel: "chat".into(),
        },
    );
    assert_eq!(day.channel("ann", "chat"), ChannelState::LoggedOff);
    assert_eq!(day.channel("ann", "voice"), ChannelState::Ready);
    assert_eq!(day.channel("ann", "email"), ChannelState::Ready);
}

#[test]
fn do_not_disturb_stops_offers_on_every_channel_until_it_is_off() {
    let mut day = Day::new();
    day.ready("ann", &["voice", "chat", "email"]);
    day.ok("ann", AgentCommand::SetDnd { on: true });
    let keys: Vec<_> = ["voice", "chat", "email"]
        .iter()
        .map(|c| day.offer(c))
        .collect();
    assert!(
        keys.iter()
            .all(|k| day.state(*k) == InteractionState::Queued)
    );
    day.ok("ann", AgentCommand::SetDnd { on: false });
    assert!(
        day.offered_to(keys[0], "ann"),
        "the call is offered once DND is off"
    );
}

#[test]
fn not_ready_while_handling_without_pending_counts_as_not_ready_from_that_moment() {
    let mut day = Day::with_config("");
    day.core = {
        let mut config = crate::config::AdminConfig::parse(CONFIG, "t").expect("config");
        config.core.pending = false;
        let channels: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
        Core::new(Policy::from_config(&config, &channels), day.now)
    };
    day.ready("bob", &["chat"]);
    let key = day.offer("chat");
    day.ok("bob", AgentCommand::Accept { key });
    day.advance(10);
    day.ok("bob", cmd_not_ready("chat", "lunch"));
    assert_eq!(day.channel("bob", "chat"), not_ready("lunch"));
    day.advance(60);
    day.ok("bob", AgentCommand::End { key });
    day.advance(5);
    assert_eq!(
        day.core
            .time_in_state("bob", "chat", "not-ready:lunch", day.now),
        65_000
    );
    assert_eq!(day.core.handling_time(key, day.now), 70_000);
}

#[test]
fn pending_not_ready_starts_when_the_last_chat_ends() {
    let mut day = Day::new();
    day.ready("bob", &["chat"]);
    let one = day.offer("chat");
    let two = day.offer("chat");
    day.ok("bob", AgentCommand::Accept { key: one });
    day.ok("bob", AgentCommand::Accept { key: two });
    day.ok("bob", cmd_not_ready("chat", "lunch"));
    assert_eq!(
        day.channel("bob", "chat"),
        ChannelState::Pending {
            reason: "lunch".into()
        }
    );
    let third = day.offer("chat");
    day.ok("bob", AgentCommand::End { key: one });
    assert!(!day.offered_to(third, "bob"), "Pending takes no offers");
    day.advance(30);
    day.contact_leaves(two);
    assert_eq!(day.channel("bob", "chat"), not_ready("lunch"));
    day.advance(10);
    // No Not Ready time accrued while Bob was still working.
    assert_eq!(
        day.core
            .time_in_state("bob", "chat", "pending:lunch", day.now),
        30_000
    );
    assert_eq!(
        day.core
            .time_in_state("bob", "chat", "not-ready:lunch", day.now),
        10_000
    );
}

#[test]
fn pending_with_acw_runs_the_acw_and_then_goes_not_ready() {
    let mut day = Day::new();
    day.ready("ann", &["voice"]);
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    day.ok("ann", cmd_not_ready("voice", "break"));
    day.contact_leaves(call);
    assert!(matches!(
        day.channel("ann", "voice"),
        ChannelState::AfterCallWork { .. }
    ));
    day.advance(31);
    assert_eq!(day.channel("ann", "voice"), not_ready("break"));
}

#[test]
fn timed_acw_ends_by_itself_and_mark_done_ends_it_early_with_the_chosen_state() {
    let mut day = Day::new();
    day.ready("ann", &["voice"]);
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    day.ok("ann", AgentCommand::End { key: call });
    assert!(matches!(
        day.channel("ann", "voice"),
        ChannelState::AfterCallWork {
            ends_at: Some(_),
            ..
        }
    ));
    day.advance(31);
    assert_eq!(day.channel("ann", "voice"), ChannelState::Ready);
    day.ok(
        "ann",
        AgentCommand::MarkDone {
            key: call,
            wrap_up: Some("sale".into()),
            next: None,
        },
    );

    let second = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: second });
    day.contact_leaves(second);
    day.advance(5);
    let next = Some(NextState::NotReady {
        reason: "break".into(),
    });
    day.ok(
        "ann",
        AgentCommand::MarkDone {
            key: second,
            wrap_up: None,
            next,
        },
    );
    assert_eq!(day.channel("ann", "voice"), not_ready("break"));
    assert_eq!(
        day.core
            .time_in_state("ann", "voice", "after-call-work", day.now),
        36_000
    );
}

#[test]
fn extendable_acw_can_be_extended_indefinitely_and_ends_at_mark_done() {
    let mut day =
        Day::with_config("[channels.email]\nacw = { mode = \"extendable\", secs = 10 }\n");
    day.ready("bob", &["email"]);
    let mail = day.offer("email");
    day.ok("bob", AgentCommand::Accept { key: mail });
    day.ok("bob", AgentCommand::End { key: mail });
    day.ok(
        "bob",
        AgentCommand::ExtendAcw {
            channel: "email".into(),
            secs: None,
        },
    );
    day.advance(3600);
    assert!(matches!(
        day.channel("bob", "email"),
        ChannelState::AfterCallWork { ends_at: None, .. }
    ));
    day.ok(
        "bob",
        AgentCommand::MarkDone {
            key: mail,
            wrap_up: None,
            next: None,
        },
    );
    assert_eq!(day.channel("bob", "email"), ChannelState::Ready);
}

#[test]
fn timed_acw_cannot_be_extended() {
    let mut day = Day::new();
    day.ready("ann", &["voice"]);
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    day.ok("ann", AgentCommand::End { key: call });
    let refused = day.run(
        "ann",
        AgentCommand::ExtendAcw {
            channel: "voice".into(),
            secs: Some(30),
        },
    );
    assert!(
        matches!(refused, Err(CoreError::AcwRule { .. })),
        "{refused:?}"
    );
}

#[test]
fn minimum_acw_cannot_be_left_early_even_after_mark_done() {
    let mut day = Day::with_config("[channels.chat]\nacw = { mode = \"minimum\", secs = 60 }\n");
    day.ready("bob", &["chat"]);
    let chat = day.offer("chat");
    day.ok("bob", AgentCommand::Accept { key: chat });
    day.ok("bob", AgentCommand::End { key: chat });
    day.advance(10);
    day.ok(
        "bob",
        AgentCommand::MarkDone {
            key: chat,
            wrap_up: None,
            next: None,
        },
    );
    assert_eq!(
        day.state(chat),
        InteractionState::Done,
        "Mark Done closes the interaction"
    );
    assert!(
        matches!(
            day.channel("bob", "chat"),
            ChannelState::AfterCallWork { .. }
        ),
        "but ACW stays"
    );
    let refused = day.run("bob", cmd_ready("chat"));
    assert!(
        matches!(refused, Err(CoreError::AcwRule { .. })),
        "{refused:?}"
    );
    day.advance(51);
    assert_eq!(day.channel("bob", "chat"), ChannelState::Ready);
}

#[test]
fn three_emails_two_chats_and_a_call_at_once_fit_the_default_capacities() {
    let mut day = Day::new();
    day.core = {
        let config = crate::config::AdminConfig::parse(
            "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = \"all\"\n",
            "t",
        )
        .expect("config");
        let channels: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
        Core::new(Policy::from_config(&config, &channels), day.now)
    };
    day.ready("ann", &["voice", "chat", "email"]);
    let mut keys = Vec::new();
    for channel in [
        "email", "email", "email", "email", "chat", "chat", "chat", "voice", "voice",
    ] {
        keys.push(day.offer(channel));
    }
    for key in &keys {
        if day.offered_to(*key, "ann") {
            day.ok("ann", AgentCommand::Accept { key: *key });
        }
    }
    let active = |channel: &str| {
        day.core
            .interactions()
            .filter(|i| i.channel == channel && i.state == InteractionState::Active)
            .count()
    };
    assert_eq!(
        (active("email"), active("chat"), active("voice")),
        (3, 2, 1)
    );
    assert_eq!(
        day.core.queue("email").len()
            + day.core.queue("chat").len()
            + day.core.queue("voice").len(),
        3
    );
}

#[test]
fn no_new_chat_is_offered_while_on_a_call_when_the_admin_says_so() {
    let mut day = Day::new();
    day.ready("ann", &["voice", "chat"]);
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    let chat = day.offer("chat");
    assert_eq!(day.state(chat), InteractionState::Queued);
    day.ok("ann", AgentCommand::End { key: call });
    day.ok(
        "ann",
        AgentCommand::MarkDone {
            key: call,
            wrap_up: None,
            next: None,
        },
    );
    assert!(day.offered_to(chat, "ann"), "offered once the call is done");
}

#[test]
fn forbidden_commands_name_the_rule_and_change_nothing() {
    let mut day = Day::new();
    day.ok("ann", AgentCommand::LogIn);
    assert!(matches!(
        day.run("ann", cmd_ready("chat")),
        Err(CoreError::ChannelLoggedOff { .. })
    ));
    day.ready("ann", &["voice"]);
    assert!(matches!(
        day.run("ann", cmd_not_ready("voice", "nap")),
        Err(CoreError::UnknownReason { .. })
    ));
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    let before = (day.core.last_seq(), day.state(call));
    let refused = day.run(
        "ann",
        AgentCommand::MarkDone {
            key: call,
            wrap_up: None,
            next: None,
        },
    );
    let Err(error) = refused else {
        panic!("mark done on an active call was accepted")
    };
    assert!(
        error
            .to_string()
            .contains("must end before it is marked done"),
        "{error}"
    );
    assert_eq!(
        (day.core.last_seq(), day.state(call)),
        before,
        "state unchanged"
    );
    assert!(matches!(
        day.run("bob", AgentCommand::End { key: call }),
        Err(CoreError::NotLoggedIn { .. })
    ));
    day.ok("bob", AgentCommand::LogIn);
    assert!(matches!(
        day.run("bob", AgentCommand::End { key: call }),
        Err(CoreError::NotYours { .. })
    ));
    assert!(matches!(
        day.run(
            "ann",
            AgentCommand::LogOffChannel {
                channel: "voice".into()
            }
        ),
        Err(CoreError::OpenWork { .. })
    ));
    assert!(matches!(
        day.run(
            "ann",
            AgentCommand::MarkDone {
                key: call,
                wrap_up: Some("x".into()),
                next: None
            }
        ),
        Err(CoreError::WrongState { .. })
    ));
}

#[test]
fn a_mandatory_wrap_up_code_is_enforced() {
    let mut day = Day::with_config("");
    day.core = {
        let mut config = crate::config::AdminConfig::parse(CONFIG, "t").expect("config");
        config.core.wrap_up_required = true;
        let channels: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
        Core::new(Policy::from_config(&config, &channels), day.now)
    };
    day.ready("bob", &["email"]);
    let mail = day.offer("email");
    day.ok("bob", AgentCommand::Accept { key: mail });
    let refused = day.run(
        "bob",
        AgentCommand::MarkDone {
            key: mail,
            wrap_up: None,
            next: None,
        },
    );
    assert_eq!(refused.unwrap_err(), CoreError::WrapUpRequired);
    let refused = day.run(
        "bob",
        AgentCommand::MarkDone {
            key: mail,
            wrap_up: Some("nope".into()),
            next: None,
        },
    );
    assert!(matches!(refused, Err(CoreError::UnknownWrapUp { .. })));
    day.ok(
        "bob",
        AgentCommand::MarkDone {
            key: mail,
            wrap_up: Some("info".into()),
            next: None,
        },
    );
    assert_eq!(
        day.core
            .interaction(mail)
            .and_then(|i| i.wrap_up.clone())
            .map(|w| w.label),
        Some("Information".into())
    );
}

#[test]
fn a_workbin_frees_capacity_until_the_email_is_taken_back() {
    let mut day = Day::with_config("[channels.email]\ncapacity = 1\n");
    day.ready("bob", &["email"]);
    let first = day.offer("email");
    day.ok("bob", AgentCommand::Accept { key: first });
    let second = day.offer("email");
    assert_eq!(day.state(second), InteractionState::Queued);
    day.ok(
        "bob",
        AgentCommand::Park {
            key: first,
            workbin: "later".into(),
        },
    );
    assert!(day.offered_to(second, "bob"), "parking freed the capacity");
    day.ok("bob", AgentCommand::Accept { key: second });
    let refused = day.run("bob", AgentCommand::Unpark { key: first });
    assert!(
        matches!(refused, Err(CoreError::AtCapacity { .. })),
        "{refused:?}"
    );
    day.ok(
        "bob",
        AgentCommand::MarkDone {
            key: second,
            wrap_up: None,
            next: None,
        },
    );
    day.ok("bob", AgentCommand::Unpark { key: first });
    assert_eq!(day.state(first), InteractionState::Active);
}

#[test]
fn a_re_sent_offer_with_the_same_external_id_never_creates_a_second_interaction() {
    let mut day = Day::new();
    let key = day.offer("email");
    let again = day.core.interaction(key).cloned().expect("known");
    let events = day.plugin(plugin_api::Event::Offer(plugin_api::Offer {
        interaction: plugin_api::InteractionId::new("another-id"),
        external_id: again.external_id.clone(),
        channel: plugin_api::ChannelKind::new("email"),
        media: plugin_api::Media::Email,
        route: Route::queue("default"),
        contact: Default::default(),
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    }));
    assert!(events.is_empty());
    assert_eq!(day.core.interactions().count(), 1);
}

#[test]
fn a_call_to_a_forwarding_agents_extension_is_forwarded() {
    let mut day = Day::new();
    day.ready("ann", &["voice"]);
    let to = Address::phone("+15550199");
    day.ok(
        "ann",
        AgentCommand::SetForwarding {
            to: Some(to.clone()),
        },
    );
    let call = day.offer_routed("voice", Route::extension("101"));
    assert_eq!(day.state(call), InteractionState::Forwarded);
    assert!(day.journal.iter().any(|s| s.event
        == CoreEvent::InteractionForwarded {
            key: call,
            agent: "ann".into(),
            to: to.clone()
        }));
    day.ok("ann", AgentCommand::SetForwarding { to: None });
    let next = day.offer_routed("voice", Route::extension("101"));
    assert!(day.offered_to(next, "ann"));
}

#[test]
fn offers_nobody_here_can_take_are_rejected_with_the_reason() {
    let mut day = Day::new();
    let fax = day.offer("fax");
    assert!(
        matches!(&day.state(fax), InteractionState::Rejected { reason } if reason.contains("channel `fax`"))
    );
    let lost = day.offer_routed("chat", Route::agent("zoe"));
    assert!(
        matches!(&day.state(lost), InteractionState::Rejected { reason } if reason.contains("zoe"))
    );
}

#[test]
fn a_blind_transfer_to_a_queue_reaches_another_agent_and_starts_the_senders_acw() {
    let mut day = Day::new();
    day.ready("ann", &["chat"]);
    let chat = day.offer("chat");
    day.ok("ann", AgentCommand::Accept { key: chat });
    day.ready("bob", &["chat"]);
    day.ok(
        "ann",
        AgentCommand::Transfer {
            key: chat,
            to: Route::queue("billing"),
        },
    );
    assert!(day.offered_to(chat, "bob"));
    assert_eq!(
        day.core.agent("ann").map(|a| a.channels["chat"].load),
        Some(0)
    );
}

#[test]
fn an_ended_event_for_an_unknown_interaction_is_dropped() {
    let mut day = Day::new();
    let events = day.plugin(plugin_api::Event::Ended(plugin_api::Ended {
        interaction: plugin_api::InteractionId::new("never-offered"),
        reason: plugin_api::EndReason::ContactLeft,
        detail: String::new(),
    }));
    assert!(events.is_empty());
}

#[test]
fn replaying_the_journal_rebuilds_the_same_state() {
    let mut day = Day::new();
    day.ready("ann", &["voice", "chat"]);
    day.ready("bob", &["chat", "email"]);
    let keys: Vec<_> = ["chat", "chat", "voice", "email", "chat"]
        .iter()
        .map(|c| day.offer(c))
        .collect();
    day.ok("ann", AgentCommand::Accept { key: keys[0] });
    day.advance(25);
    day.ok("bob", cmd_not_ready("email", "break"));
    day.contact_leaves(keys[0]);
    let mut replayed = Day::new();
    for stamped in &day.journal {
        replayed.core.replay(stamped);
    }
    assert_eq!(
        replayed.core.agents().collect::<Vec<_>>(),
        day.core.agents().collect::<Vec<_>>()
    );
    assert_eq!(
        replayed.core.interactions().collect::<Vec<_>>(),
        day.core.interactions().collect::<Vec<_>>()
    );
    assert_eq!(replayed.core.stats(), day.core.stats());
    day.core.check_invariants().expect("invariants");
}

#[test]
fn compacting_forgets_closed_interactions_but_still_recognises_a_re_sent_offer() {
    let mut day = Day::new();
    let key = day.offer("chat");
    let external = day
        .core
        .interaction(key)
        .map(|i| i.external_id.clone())
        .expect("known");
    day.contact_leaves(key);
    day.core.compact();
    assert!(
        day.core.interaction(key).is_none(),
        "the abandoned chat is forgotten"
    );
    let events = day.plugin(plugin_api::Event::Offer(plugin_api::Offer {
        interaction: plugin_api::InteractionId::new("chat-again"),
        external_id: external,
        channel: plugin_api::ChannelKind::new("chat"),
        media: plugin_api::Media::Conversation,
        route: Route::queue("default"),
        contact: Default::default(),
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    }));
    assert!(
        events.is_empty(),
        "a re-sent offer is still a duplicate after compaction"
    );
    day.core.check_invariants().expect("invariants");
}

/// Ann has an active chat; Bob is Ready on chat. Returns the chat's key.
fn ann_chatting_bob_ready(day: &mut Day) -> InteractionKey {
    day.ready("ann", &["chat"]);
    let chat = day.offer("chat");
    day.ok("ann", AgentCommand::Accept { key: chat });
    day.ready("bob", &["chat"]);
    chat
}

fn consultation_of(day: &Day, about: InteractionKey) -> InteractionKey {
    day.core
        .interactions()
        .find(|i| i.consult.as_ref().is_some_and(|c| c.about == about) && !i.state.is_closed())
        .map(|i| i.key)
        .expect("an open consultation")
}

#[test]
fn a_consultation_is_offered_privately_to_the_colleague_and_takes_a_place_on_their_channel() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let consult = consultation_of(&day, chat);
    assert!(day.offered_to(consult, "bob"));
    day.ok("bob", AgentCommand::Accept { key: consult });
    assert_eq!(
        day.owner(chat).as_deref(),
        Some("ann"),
        "the chat stays Ann's"
    );
    assert!(
        day.core
            .interaction(chat)
            .is_some_and(|i| i.conference.is_empty()),
        "the contact sees nobody new"
    );
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(1)
    );
    day.ok(
        "bob",
        AgentCommand::EndConsultation {
            consultation: consult,
        },
    );
    assert_eq!(day.state(consult), InteractionState::Done);
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(0)
    );
    day.core.check_invariants().expect("invariants");
}

#[test]
fn a_conference_brings_the_colleague_into_a_chat_until_they_leave_or_it_ends() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let consult = consultation_of(&day, chat);
    let early = day.run(
        "ann",
        AgentCommand::Conference {
            consultation: consult,
        },
    );
    assert!(
        matches!(early, Err(CoreError::WrongState { .. })),
        "Bob has not joined yet: {early:?}"
    );
    day.ok("bob", AgentCommand::Accept { key: consult });
    day.ok(
        "ann",
        AgentCommand::Conference {
            consultation: consult,
        },
    );
    assert!(
        day.core
            .interaction(chat)
            .is_some_and(|i| i.conference.contains("bob"))
    );
    assert_eq!(
        day.state(consult),
        InteractionState::Done,
        "the consultation became the conference"
    );
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(1)
    );
    day.core.take_concerned();
    day.contact_leaves(chat);
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(0),
        "Bob's place is freed"
    );
    let told = day.core.take_concerned();
    assert!(
        told.contains("bob") && told.contains("ann"),
        "the conferenced colleague hears that the chat ended, though it let him go: {told:?}"
    );
    day.core.check_invariants().expect("invariants");
}

#[test]
fn a_blind_transfer_of_a_conferenced_chat_frees_the_colleagues_place() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let consult = consultation_of(&day, chat);
    day.ok("bob", AgentCommand::Accept { key: consult });
    day.ok(
        "ann",
        AgentCommand::Conference {
            consultation: consult,
        },
    );
    day.ok("bob", cmd_not_ready("chat", "break"));
    day.ok(
        "ann",
        AgentCommand::Transfer {
            key: chat,
            to: Route::queue("billing"),
        },
    );
    assert_eq!(day.state(chat), InteractionState::Queued);
    assert!(
        day.core
            .interaction(chat)
            .is_some_and(|i| i.conference.is_empty())
    );
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(0),
        "Bob's place is free once the chat left Ann"
    );
    day.contact_leaves(chat);
    day.core.compact();
    day.core
        .check_invariants()
        .expect("invariants after compaction");
}

#[test]
fn an_email_can_be_consulted_about_but_not_conferenced() {
    let mut day = Day::new();
    day.ready("ann", &["email"]);
    day.ready("bob", &["email"]);
    let mail = day.offer("email");
    let owner = day.owner(mail).expect("offered");
    let colleague = if owner == "ann" { "bob" } else { "ann" };
    day.ok(&owner, AgentCommand::Accept { key: mail });
    day.ok(
        &owner,
        AgentCommand::Consult {
            key: mail,
            colleague: colleague.into(),
        },
    );
    let consult = consultation_of(&day, mail);
    day.ok(colleague, AgentCommand::Accept { key: consult });
    let refused = day.run(
        &owner,
        AgentCommand::Conference {
            consultation: consult,
        },
    );
    let Err(error) = refused else {
        panic!("an email conference was accepted")
    };
    assert!(
        error.to_string().contains("only calls and chats"),
        "{error}"
    );
}

#[test]
fn a_transfer_after_consultation_hands_the_chat_to_the_colleague() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let consult = consultation_of(&day, chat);
    day.ok("bob", AgentCommand::Accept { key: consult });
    day.advance(30);
    day.ok(
        "ann",
        AgentCommand::TransferAfterConsultation {
            consultation: consult,
        },
    );
    assert_eq!(day.owner(chat).as_deref(), Some("bob"));
    assert_eq!(day.state(chat), InteractionState::Active);
    assert_eq!(
        day.core.agent("ann").map(|a| a.channels["chat"].load),
        Some(0)
    );
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(1),
        "the consultation's place became the chat's"
    );
    assert_eq!(
        day.core.handling_time(chat, day.now),
        30_000,
        "Ann's handling time is kept"
    );
    day.core.check_invariants().expect("invariants");
}

#[test]
fn a_declined_or_unanswered_consultation_ends_instead_of_queueing() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let first = consultation_of(&day, chat);
    day.ok("bob", AgentCommand::Decline { key: first });
    assert_eq!(day.state(first), InteractionState::Done);
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let second = consultation_of(&day, chat);
    day.advance(21);
    assert_eq!(day.state(second), InteractionState::Done);
    assert!(day.core.queue("chat").is_empty());
}

#[test]
fn a_colleague_who_is_away_or_full_cannot_be_consulted() {
    let mut day = Day::with_config("[channels.chat]\ncapacity = 1\n");
    let chat = ann_chatting_bob_ready(&mut day);
    day.ok("bob", AgentCommand::SetDnd { on: true });
    let refused = day.run(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    assert!(
        matches!(refused, Err(CoreError::ColleagueUnavailable { .. })),
        "{refused:?}"
    );
    day.ok("bob", AgentCommand::SetDnd { on: false });
    let other = day.offer("chat");
    day.ok("bob", AgentCommand::Accept { key: other });
    let refused = day.run(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    assert!(
        matches!(refused, Err(CoreError::AtCapacity { .. })),
        "{refused:?}"
    );
    let refused = day.run(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "ann".into(),
        },
    );
    assert!(
        matches!(refused, Err(CoreError::ColleagueUnavailable { .. })),
        "{refused:?}"
    );
}

#[test]
fn conferencing_a_colleague_who_is_already_in_the_conference_takes_no_second_place() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    for _ in 0..2 {
        day.ok(
            "ann",
            AgentCommand::Consult {
                key: chat,
                colleague: "bob".into(),
            },
        );
        let consult = consultation_of(&day, chat);
        day.ok("bob", AgentCommand::Accept { key: consult });
        day.ok(
            "ann",
            AgentCommand::Conference {
                consultation: consult,
            },
        );
    }
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(1)
    );
    day.ok("bob", AgentCommand::LeaveConference { key: chat });
    assert_eq!(
        day.core.agent("bob").map(|a| a.channels["chat"].load),
        Some(0)
    );
    day.core.check_invariants().expect("invariants");
}

#[test]
fn a_conferenced_colleague_may_write_in_the_chat_and_an_outsider_may_not() {
    let mut day = Day::new();
    let chat = ann_chatting_bob_ready(&mut day);
    assert!(
        day.core.check_send("bob", chat).is_err(),
        "not yet taking part"
    );
    day.ok(
        "ann",
        AgentCommand::Consult {
            key: chat,
            colleague: "bob".into(),
        },
    );
    let consult = consultation_of(&day, chat);
    day.ok("bob", AgentCommand::Accept { key: consult });
    day.ok(
        "ann",
        AgentCommand::Conference {
            consultation: consult,
        },
    );
    assert!(day.core.check_send("bob", chat).is_ok());
    assert!(day.core.check_send("ann", chat).is_ok());
}

#[test]
fn a_party_action_starts_a_call_to_the_chat_contact_and_links_both() {
    let mut day = Day::new();
    day.ready("ann", &["chat", "voice"]);
    let chat = day.offer("chat");
    day.ok("ann", AgentCommand::Accept { key: chat });
    let number = Address::phone("+44 20 7946 0958");
    day.ok(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: number.clone(),
            from: Some(chat),
        },
    );
    let call = day
        .core
        .interactions()
        .find(|i| i.channel == "voice")
        .map(|i| i.key)
        .expect("a call");
    let i = day.core.interaction(call).cloned().expect("call");
    assert_eq!(
        (i.state, i.owner.as_deref(), i.media),
        (
            InteractionState::Active,
            Some("ann"),
            plugin_api::Media::Call
        )
    );
    assert!(i.contact.addresses.contains(&number));
    assert!(
        i.linked.contains(&chat)
            && day
                .core
                .interaction(chat)
                .is_some_and(|c| c.linked.contains(&call))
    );
    assert_eq!(
        day.core.agent("ann").map(|a| a.channels["voice"].load),
        Some(1)
    );
    let again = day.run(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: number,
            from: Some(chat),
        },
    );
    assert!(
        matches!(again, Err(CoreError::AtCapacity { .. })),
        "one call at a time: {again:?}"
    );
    day.core.check_invariants().expect("invariants");
}

#[test]
fn an_outbound_interaction_needs_a_logged_on_channel_and_a_plugin_for_it() {
    let mut day = Day::new();
    day.ready("ann", &["chat"]);
    let refused = day.run(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: Address::phone("+1555"),
            from: None,
        },
    );
    assert!(
        matches!(refused, Err(CoreError::ChannelLoggedOff { .. })),
        "{refused:?}"
    );
    let refused = day.run(
        "ann",
        AgentCommand::StartOutbound {
            channel: "fax".into(),
            to: Address::phone("+1555"),
            from: None,
        },
    );
    assert!(
        matches!(refused, Err(CoreError::ChannelNotAssigned { .. })),
        "{refused:?}"
    );
}

#[test]
fn the_plugins_own_id_for_an_outbound_call_routes_its_events_to_it() {
    let mut day = Day::new();
    day.ready("ann", &["voice"]);
    day.ok(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: Address::phone("+15550100"),
            from: None,
        },
    );
    let call = day.core.interactions().map(|i| i.key).max().expect("call");
    let linked =
        day.core
            .link_plugin_id(day.now, call, plugin_api::InteractionId::new("sip-call-77"));
    day.journal.extend(linked);
    day.plugin(plugin_api::Event::Ended(plugin_api::Ended {
        interaction: plugin_api::InteractionId::new("sip-call-77"),
        reason: plugin_api::EndReason::ContactLeft,
        detail: String::new(),
    }));
    assert_eq!(day.state(call), InteractionState::Ended);
    assert!(matches!(
        day.channel("ann", "voice"),
        ChannelState::AfterCallWork { .. }
    ));
}

#[test]
fn de_duplication_keys_of_closed_interactions_expire_after_the_window_and_open_ones_never_do() {
    let mut day = Day::new();
    let old = day.offer("email");
    let waiting = day.offer("email");
    day.contact_leaves(old);
    day.core.compact();
    day.advance(29 * 86_400);
    day.core.prune_dedup(day.now);
    assert_eq!(
        day.core.dedup_keys(),
        2,
        "within 30 days both are remembered"
    );
    day.advance(2 * 86_400);
    day.core.prune_dedup(day.now);
    assert_eq!(
        day.core.dedup_keys(),
        1,
        "the closed one is forgotten after 30 days"
    );
    let external = day
        .core
        .interaction(waiting)
        .map(|i| i.external_id.clone())
        .expect("still open");
    let resent = day.plugin(plugin_api::Event::Offer(plugin_api::Offer {
        interaction: plugin_api::InteractionId::new("again"),
        external_id: external,
        channel: plugin_api::ChannelKind::new("email"),
        media: plugin_api::Media::Email,
        route: Route::queue("default"),
        contact: Default::default(),
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    }));
    assert!(
        resent.is_empty(),
        "an open interaction is always de-duplicated"
    );
}

#[test]
fn a_transfer_to_an_outside_number_asks_the_channel_and_the_call_stays_until_it_ends() {
    let mut day = Day::new();
    day.ready("ann", &["voice", "chat"]);
    let call = day.offer("voice");
    day.ok("ann", AgentCommand::Accept { key: call });
    let asked = day.ok(
        "ann",
        AgentCommand::Transfer {
            key: call,
            to: Route::extension("+1 555 0199"),
        },
    );
    assert!(asked.iter().any(|s| s.event
        == CoreEvent::TransferOutRequested {
            key: call,
            agent: "ann".into(),
            to: Address::phone("+1 555 0199"),
        }));
    assert_eq!(
        day.state(call),
        InteractionState::Active,
        "the call is Ann's until the channel says the transfer went through"
    );
    day.contact_leaves(call);
    assert_eq!(day.state(call), InteractionState::Ended);
    assert!(matches!(
        day.channel("ann", "voice"),
        ChannelState::AfterCallWork { .. }
    ));
    // A chat cannot go to an outside address.
    let mut day = Day::new();
    day.ready("ann", &["chat"]);
    let chat = day.offer("chat");
    day.ok("ann", AgentCommand::Accept { key: chat });
    assert!(
        day.run(
            "ann",
            AgentCommand::Transfer {
                key: chat,
                to: Route::extension("sip:bob@example.com"),
            },
        )
        .is_err()
    );
    assert_eq!(day.state(chat), InteractionState::Active);
}

#[test]
fn a_cobrowse_offer_naming_a_chats_code_goes_to_the_chats_agent_linked_and_the_code_works_once() {
    let config = crate::config::AdminConfig::parse(
        "[channels.cobrowse]\ncapacity = 2\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\", \"cobrowse\"]\n\
         [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"chat\", \"cobrowse\"]\n",
        "test",
    )
    .expect("config");
    let channels = ["chat".to_string(), "cobrowse".to_string()];
    let mut day = Day::new();
    day.core = Core::new(Policy::from_config(&config, &channels), day.now);
    day.ready("ann", &["chat", "cobrowse"]);
    day.ready("bob", &["chat", "cobrowse"]);
    let chat = day.offer("chat");
    let owner = match day.core.interaction(chat).map(|i| i.state.clone()) {
        Some(InteractionState::Offered { agent, .. }) => agent,
        other => panic!("chat not offered: {other:?}"),
    };
    day.ok(&owner, AgentCommand::Accept { key: chat });
    let chat_id = day
        .core
        .interaction(chat)
        .expect("chat")
        .plugin_interaction
        .clone();
    day.plugin(plugin_api::Event::LinkCode(plugin_api::LinkCode {
        interaction: chat_id,
        code: "123456789".into(),
    }));
    let cobrowse = day.offer_routed("cobrowse", Route::linked("123456789"));
    let i = day.core.interaction(cobrowse).cloned().expect("co-browse");
    assert!(
        matches!(&i.state, InteractionState::Offered { agent, .. } if *agent == owner),
        "offered to the chat's agent {owner}: {:?}",
        i.state
    );
    assert!(i.linked.contains(&chat));
    assert!(
        day.core
            .interaction(chat)
            .is_some_and(|c| c.linked.contains(&cobrowse))
    );
    // The code is used: a second offer naming it waits, like one naming a code nothing carries
    // yet; the plugin may end it (its code expires).
    let (again, unknown) = (
        day.offer_routed("cobrowse", Route::linked("123456789")),
        day.offer_routed("cobrowse", Route::linked("999999999")),
    );
    for key in [again, unknown] {
        assert_eq!(day.state(key), InteractionState::Queued);
    }
    // The agent types the code the customer read out on the chat (spaces ignored): the waiting
    // offer comes to them, linked. Only on their own active interaction, and a code is text.
    let other = if owner == "ann" { "bob" } else { "ann" };
    let code = |code: &str| AgentCommand::LinkCode {
        key: chat,
        code: code.into(),
    };
    assert!(matches!(
        day.core.execute(day.now, other, code("999 999 999")),
        Err(CoreError::NotYours { .. })
    ));
    assert!(matches!(
        day.core.execute(day.now, &owner, code(&"9".repeat(65))),
        Err(CoreError::BadCode { .. })
    ));
    day.ok(&owner, code("999 999 999"));
    assert!(
        matches!(day.state(unknown), InteractionState::Offered { agent, .. } if agent == owner)
    );
    assert!(
        day.core
            .interaction(unknown)
            .is_some_and(|i| i.linked.contains(&chat))
    );
    assert!(
        day.core
            .interaction(chat)
            .is_some_and(|c| c.linked.contains(&unknown))
    );
    assert_eq!(day.state(again), InteractionState::Queued);
    // Replayed from the journal, the link is there too.
    let mut replayed = Core::new(Policy::from_config(&config, &channels), 0);
    for stamped in &day.journal {
        replayed.replay(stamped);
    }
    assert_eq!(
        replayed.interactions().collect::<Vec<_>>(),
        day.core.interactions().collect::<Vec<_>>()
    );
    day.core.check_invariants().expect("invariants");
}
