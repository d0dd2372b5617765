//! The rules for a never-saved channel (internal IM, as its plugin's hello declares): its offers
//! journal no subject, are never queued (the sender hears at once), and what is open when the
//! core restarts is closed.

use super::testkit::*;
use super::*;
use plugin_api::{ChannelKind, Contact, Event, InteractionId, Media, Offer, RejectCode, Route};

fn im_day() -> Day {
    let mut day = Day::from_config_text(
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"im\"]\n\
         [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"im\"]\n",
    );
    let mut policy = day.core.policy().clone();
    policy.never_saved.insert("im".into());
    policy.channel_plugins.insert("im".into(), "p".into());
    day.core = Core::new(policy, day.now);
    day
}

fn im_to(day: &mut Day, agent: &str, n: u32) -> (Vec<Stamped>, InteractionKey) {
    let id = format!("im-{n}-{agent}");
    let events = day.plugin(Event::Offer(Offer {
        interaction: InteractionId::new(id.clone()),
        external_id: id.clone(),
        channel: ChannelKind::new("im"),
        media: Media::Conversation,
        route: Route::agent(agent),
        contact: Contact::default(),
        subject: Some("the first line of the IM".into()),
        case_data: vec![],
        actions: vec![],
        priority: 0,
    }));
    let key = day
        .core
        .interaction_by_plugin_id("p", &InteractionId::new(id))
        .expect("arrived")
        .key;
    (events, key)
}

#[test]
fn an_im_the_colleague_cannot_take_now_is_rejected_at_once_and_journals_no_text() {
    let mut day = im_day();
    day.ok("bob", AgentCommand::LogIn);
    // Bob logged in but the IM channel logged off: busy at once, nothing queued.
    let (events, key) = im_to(&mut day, "bob", 1);
    let rejected = events.iter().find_map(|s| match &s.event {
        CoreEvent::InteractionRejected { code, reason, .. } => Some((*code, reason.clone())),
        _ => None,
    });
    assert_eq!(
        rejected,
        Some((
            RejectCode::Busy,
            "`bob` cannot take `im` now (logged off)".to_string()
        ))
    );
    assert!(matches!(day.state(key), InteractionState::Rejected { .. }));
    for stamped in &day.journal {
        if let CoreEvent::InteractionArrived { subject, .. } = &stamped.event {
            assert_eq!(subject, &None, "an IM's subject was journaled");
        }
    }
    // Not Ready is as unavailable; Ready is offered.
    day.ok(
        "bob",
        AgentCommand::LogOnChannel {
            channel: "im".into(),
        },
    );
    let (_, key) = im_to(&mut day, "bob", 2);
    assert!(matches!(day.state(key), InteractionState::Rejected { .. }));
    day.ok("bob", cmd_ready("im"));
    // Ready but Do Not Disturb: held back, and the sender hears why.
    day.ok("bob", AgentCommand::SetDnd { on: true });
    let (events, key) = im_to(&mut day, "bob", 4);
    assert!(matches!(day.state(key), InteractionState::Rejected { .. }));
    assert!(events.iter().any(|s| matches!(&s.event,
        CoreEvent::InteractionRejected { reason, .. } if reason.ends_with("(do not disturb)"))));
    day.ok("bob", AgentCommand::SetDnd { on: false });
    let (_, key) = im_to(&mut day, "bob", 3);
    assert!(day.offered_to(key, "bob"));
    // An offer Bob lets ring out is not queued again for later either.
    day.advance(60);
    assert!(matches!(day.state(key), InteractionState::Rejected { .. }));
}

#[test]
fn an_im_open_when_the_core_restarts_is_closed() {
    let mut day = im_day();
    day.ready("bob", &["im"]);
    let (_, key) = im_to(&mut day, "bob", 1);
    day.ok("bob", AgentCommand::Accept { key });
    assert_eq!(day.state(key), InteractionState::Active);
    // Replayed from the journal, as after a restart: then closed, and Bob's load is free.
    let mut again = Core::new(day.core.policy().clone(), day.now);
    for stamped in &day.journal {
        again.replay(stamped);
    }
    assert_eq!(
        again.interaction(key).map(|i| i.state.clone()),
        Some(InteractionState::Active)
    );
    let closed = again.close_never_saved(day.now);
    assert!(matches!(
        closed.as_slice(),
        [Stamped { event: CoreEvent::InteractionWithdrawn { key: k, .. }, .. }] if *k == key
    ));
    assert!(again.interaction(key).is_none_or(|i| i.state.is_closed()));
    assert_eq!(again.agent("bob").expect("bob").channels["im"].load, 0);
}
