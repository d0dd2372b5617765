//! Property tests: random working days (agent commands, plugin offers, contacts leaving, time
//! passing) must keep every rule: capacity is never exceeded, nobody in DND or not Ready gets an
//! offer, a refused command changes nothing, and replaying the journal rebuilds the same state.

use super::testkit::*;
use super::*;
use plugin_api::Route;
use proptest::prelude::*;
use std::collections::BTreeMap;

const AGENTS: [&str; 3] = ["ann", "bob", "cy"];
const EXTRA: &str = "[[agents]]\nid = \"cy\"\nname = \"Cy\"\nchannels = [\"voice\", \"chat\"]\nauto_answer = [\"chat\"]\n\
                     [channels.email]\nacw = { mode = \"minimum\", secs = 20 }\nreoffer_after_secs = 25\n\
                     [channels.chat]\nacw = { mode = \"extendable\", secs = 15 }\nreoffer_after_secs = 10\n";

/// A day whose plugin "p" declared every command kind: holds and resumes wait for its answer.
fn asking_day() -> Day {
    let mut day = Day::with_config(EXTRA);
    let mut policy = day.core.policy().clone();
    let every = plugin_api::Command::KNOWN_KINDS
        .iter()
        .map(|k| k.to_string());
    policy.capabilities.insert("p".into(), every.collect());
    day.core = Core::new(policy, day.now);
    day
}

/// Nobody is stranded: no interaction waits in a channel's pool while an agent with the channel
/// is Ready with free capacity and may have it now — never let it go, or let it go longer ago than
/// the channel's cool-down (timers route again at its end, so this holds after every step).
fn nobody_is_stranded(core: &Core, now: Millis) -> Result<(), String> {
    for i in core.interactions() {
        if i.state != InteractionState::Queued || i.route.to != Route::QUEUE {
            continue;
        }
        let cooldown = core.policy().reoffer_after_ms(&i.channel);
        for agent in core.agents() {
            if !core.eligible(agent, &i.channel) {
                continue;
            }
            let ch = agent.channels.get(&i.channel);
            if super::reoffer::standing(i, &agent.id, ch, cooldown, now)
                != super::reoffer::Standing::CoolingDown
            {
                return Err(format!(
                    "interaction {} waits on {} while {} is Ready with room (passed over: {:?})",
                    i.key, i.channel, agent.id, i.passed_over
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Command(usize, Cmd),
    Offer {
        channel: usize,
        to_agent: Option<usize>,
    },
    ContactLeaves(usize),
    Advance(u64),
    /// The channel answers a hold or resume it was asked for: done (true) or refused.
    ChannelAnswers {
        pick: usize,
        done: bool,
    },
    /// Agent consults a colleague about one of their active interactions, the colleague accepts,
    /// then the agent conferences (0), transfers (1) or ends the consultation (2).
    ConsultFlow {
        agent: usize,
        pick: usize,
        colleague: usize,
        finish: u8,
    },
}

#[derive(Debug, Clone)]
enum Cmd {
    LogIn,
    LogOut,
    LogOn(usize),
    LogOff(usize),
    Ready(usize),
    NotReady(usize),
    Dnd(bool),
    Accept(usize),
    Decline(usize),
    Hold(usize),
    Resume(usize),
    End(usize),
    Transfer(usize),
    MarkDone(usize, bool),
    Extend(usize),
    Park(usize),
    Unpark(usize),
    Consult(usize, usize),
    Conference(usize),
    TransferAfter(usize),
    EndConsult(usize),
    Leave(usize),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let ch = 0..CHANNELS.len();
    let pick = 0..64usize;
    prop_oneof![
        1 => Just(Cmd::LogIn),
        1 => Just(Cmd::LogOut),
        3 => ch.clone().prop_map(Cmd::LogOn),
        1 => ch.clone().prop_map(Cmd::LogOff),
        5 => ch.clone().prop_map(Cmd::Ready),
        2 => ch.clone().prop_map(Cmd::NotReady),
        1 => any::<bool>().prop_map(Cmd::Dnd),
        6 => pick.clone().prop_map(Cmd::Accept),
        1 => pick.clone().prop_map(Cmd::Decline),
        1 => pick.clone().prop_map(Cmd::Hold),
        1 => pick.clone().prop_map(Cmd::Resume),
        3 => pick.clone().prop_map(Cmd::End),
        1 => pick.clone().prop_map(Cmd::Transfer),
        3 => (pick.clone(), any::<bool>()).prop_map(|(p, w)| Cmd::MarkDone(p, w)),
        1 => ch.prop_map(Cmd::Extend),
        1 => pick.clone().prop_map(Cmd::Park),
        1 => pick.clone().prop_map(Cmd::Unpark),
        2 => (pick.clone(), 0..AGENTS.len()).prop_map(|(p, c)| Cmd::Consult(p, c)),
        2 => pick.clone().prop_map(Cmd::Conference),
        1 => pick.clone().prop_map(Cmd::TransferAfter),
        1 => pick.clone().prop_map(Cmd::EndConsult),
        1 => pick.prop_map(Cmd::Leave),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..AGENTS.len(), cmd()).prop_map(|(a, c)| Op::Command(a, c)),
        4 => (0..CHANNELS.len(), proptest::option::weighted(0.2, 0..AGENTS.len()))
            .prop_map(|(channel, to_agent)| Op::Offer { channel, to_agent }),
        1 => (0..64usize).prop_map(Op::ContactLeaves),
        2 => (1..40u64).prop_map(Op::Advance),
        2 => (0..64usize, any::<bool>()).prop_map(|(pick, done)| Op::ChannelAnswers { pick, done }),
        2 => (0..AGENTS.len(), 0..64usize, 0..AGENTS.len(), 0..3u8)
            .prop_map(|(agent, pick, colleague, finish)| Op::ConsultFlow { agent, pick, colleague, finish }),
    ]
}

/// The command for agent `a`. Interaction picks prefer the interactions the command makes sense
/// for (offered to / owned by the agent); with none, any interaction (or an unknown key) is used,
/// which exercises the refusals.
fn to_command(day: &Day, a: &str, c: &Cmd) -> AgentCommand {
    let mine = |wanted: fn(&InteractionState) -> bool| -> Vec<InteractionKey> {
        let own: Vec<_> = day
            .core
            .interactions()
            .filter(|i| i.owner.as_deref() == Some(a) && wanted(&i.state))
            .map(|i| i.key)
            .collect();
        if own.is_empty() {
            day.core.interactions().map(|i| i.key).collect()
        } else {
            own
        }
    };
    let pick = |keys: Vec<InteractionKey>, p: usize| {
        if keys.is_empty() {
            999
        } else {
            keys[p % keys.len()]
        }
    };
    let offered = |p: usize| pick(mine(|s| matches!(s, InteractionState::Offered { .. })), p);
    let active = |p: usize| pick(mine(|s| *s == InteractionState::Active), p);
    let closable = |p: usize| {
        pick(
            mine(|s| matches!(s, InteractionState::Ended | InteractionState::Active)),
            p,
        )
    };
    let parked = |p: usize| pick(mine(|s| matches!(s, InteractionState::InWorkbin { .. })), p);
    let asked: Vec<InteractionKey> = day
        .core
        .interactions()
        .filter(|i| i.consult.as_ref().is_some_and(|c| c.by == a) && !i.state.is_closed())
        .map(|i| i.key)
        .collect();
    let consultation = |p: usize| {
        pick(
            if asked.is_empty() {
                day.core.interactions().map(|i| i.key).collect()
            } else {
                asked.clone()
            },
            p,
        )
    };
    let joined: Vec<InteractionKey> = day
        .core
        .interactions()
        .filter(|i| i.conference.contains(a))
        .map(|i| i.key)
        .collect();
    let channel = |i: usize| CHANNELS[i].to_string();
    match c {
        Cmd::LogIn => AgentCommand::LogIn,
        Cmd::LogOut => AgentCommand::LogOut,
        Cmd::LogOn(c) => AgentCommand::LogOnChannel {
            channel: channel(*c),
        },
        Cmd::LogOff(c) => AgentCommand::LogOffChannel {
            channel: channel(*c),
        },
        Cmd::Ready(c) => AgentCommand::SetReady {
            channel: channel(*c),
        },
        Cmd::NotReady(c) => AgentCommand::SetNotReady {
            channel: channel(*c),
            reason: "break".into(),
        },
        Cmd::Dnd(on) => AgentCommand::SetDnd { on: *on },
        Cmd::Accept(p) => AgentCommand::Accept { key: offered(*p) },
        Cmd::Decline(p) => AgentCommand::Decline { key: offered(*p) },
        Cmd::Hold(p) => AgentCommand::Hold { key: active(*p) },
        Cmd::Resume(p) => AgentCommand::Resume { key: active(*p) },
        Cmd::End(p) => AgentCommand::End { key: active(*p) },
        Cmd::Transfer(p) => AgentCommand::Transfer {
            key: active(*p),
            to: Route::queue("default"),
        },
        Cmd::MarkDone(p, w) => AgentCommand::MarkDone {
            key: closable(*p),
            wrap_up: w.then(|| "sale".to_string()),
            next: None,
        },
        Cmd::Extend(c) => AgentCommand::ExtendAcw {
            channel: channel(*c),
            secs: None,
        },
        Cmd::Park(p) => AgentCommand::Park {
            key: active(*p),
            workbin: "later".into(),
        },
        Cmd::Unpark(p) => AgentCommand::Unpark { key: parked(*p) },
        Cmd::Consult(p, c) => AgentCommand::Consult {
            key: active(*p),
            colleague: AGENTS[*c].to_string(),
        },
        Cmd::Conference(p) => AgentCommand::Conference {
            consultation: consultation(*p),
        },
        Cmd::TransferAfter(p) => AgentCommand::TransferAfterConsultation {
            consultation: consultation(*p),
        },
        Cmd::EndConsult(p) => AgentCommand::EndConsultation {
            consultation: consultation(*p),
        },
        Cmd::Leave(p) => AgentCommand::LeaveConference {
            key: pick(joined.clone(), *p),
        },
    }
}

/// Follows the journal and checks, for every offer, the agent's DND and channel state at that
/// moment as the journal itself tells them.
#[derive(Default)]
struct Watcher {
    dnd: BTreeMap<String, bool>,
    states: BTreeMap<(String, String), ChannelState>,
    offers: usize,
}

impl Watcher {
    fn follow(&mut self, day: &Day, events: &[Stamped]) -> Result<(), String> {
        for stamped in events {
            match &stamped.event {
                CoreEvent::DndChanged { agent, on } => {
                    self.dnd.insert(agent.clone(), *on);
                }
                CoreEvent::ChannelStateChanged {
                    agent,
                    channel,
                    state,
                } => {
                    self.states
                        .insert((agent.clone(), channel.clone()), state.clone());
                }
                CoreEvent::InteractionOffered { key, agent, .. } => {
                    self.offers += 1;
                    if self.dnd.get(agent).copied().unwrap_or(false) {
                        return Err(format!("interaction {key} offered to {agent} in DND"));
                    }
                    let channel = day
                        .core
                        .interaction(*key)
                        .map(|i| i.channel.clone())
                        .unwrap_or_default();
                    let state = self.states.get(&(agent.clone(), channel.clone()));
                    if state != Some(&ChannelState::Ready) {
                        return Err(format!(
                            "interaction {key} offered to {agent} whose {channel} is {state:?}"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_days_keep_every_rule(ops in proptest::collection::vec(op(), 1..150), cut in 0usize..10_000) {
        let mut day = asking_day();
        let mut watcher = Watcher::default();
        // The start of a working day: everyone logged in and Ready on their channels.
        day.ready("ann", &CHANNELS);
        day.ready("bob", &["chat", "email"]);
        day.ready("cy", &["voice", "chat"]);
        let start = day.journal.clone();
        watcher.follow(&day, &start).map_err(TestCaseError::fail)?;
        for op in &ops {
            let before = day.core.last_seq();
            let events = match op {
                Op::Command(a, c) => {
                    let command = to_command(&day, AGENTS[*a], c);
                    match day.run(AGENTS[*a], command) {
                        Ok(events) => events,
                        Err(_) => {
                            prop_assert_eq!(day.core.last_seq(), before, "a refused command changed state");
                            Vec::new()
                        }
                    }
                }
                Op::Offer { channel, to_agent } => {
                    let route = match to_agent {
                        Some(a) => Route::agent(AGENTS[*a]),
                        None => Route::queue("default"),
                    };
                    let from = day.journal.len();
                    day.offer_routed(CHANNELS[*channel], route);
                    day.journal[from..].to_vec()
                }
                Op::ContactLeaves(p) => {
                    let keys: Vec<_> = day.core.interactions().map(|i| i.key).collect();
                    if keys.is_empty() { continue; }
                    let from = day.journal.len();
                    day.contact_leaves(keys[p % keys.len()]);
                    day.journal[from..].to_vec()
                }
                Op::Advance(secs) => day.advance(*secs),
                Op::ChannelAnswers { pick, done } => {
                    let waiting: Vec<_> = day
                        .core
                        .interactions()
                        .filter_map(|i| i.pending.map(|p| (i.key, p)))
                        .collect();
                    let Some((key, request)) = waiting.get(pick % waiting.len().max(1)).copied() else {
                        continue;
                    };
                    let answer = if *done { Ok(()) } else { Err("refused".to_string()) };
                    let events = day.core.channel_answered(day.now, key, request.kind(), answer);
                    prop_assert!(day.core.interaction(key).is_some_and(|i| i.pending.is_none()));
                    day.journal.extend(events.clone());
                    events
                }
                Op::ConsultFlow { agent, pick, colleague, finish } => {
                    let (a, c) = (AGENTS[*agent], AGENTS[*colleague]);
                    let from = day.journal.len();
                    let mut mine: Vec<InteractionKey> = day
                        .core
                        .interactions()
                        .filter(|i| i.owner.as_deref() == Some(a) && i.state == InteractionState::Active && i.consult.is_none())
                        .map(|i| i.key)
                        .collect();
                    mine.sort();
                    if let Some(key) = mine.get(pick % mine.len().max(1)).copied() {
                        let asked = day.run(a, AgentCommand::Consult { key, colleague: c.to_string() }).is_ok();
                        let consultation = day
                            .core
                            .interactions()
                            .filter(|i| i.consult.as_ref().is_some_and(|x| x.about == key) && !i.state.is_closed())
                            .map(|i| i.key)
                            .max();
                        if let (true, Some(consultation)) = (asked, consultation) {
                            let _ = day.run(c, AgentCommand::Accept { key: consultation });
                            let last = match finish {
                                0 => AgentCommand::Conference { consultation },
                                1 => AgentCommand::TransferAfterConsultation { consultation },
                                _ => AgentCommand::EndConsultation { consultation },
                            };
                            let _ = day.run(a, last);
                        }
                    }
                    day.journal[from..].to_vec()
                }
            };
            watcher.follow(&day, &events).map_err(TestCaseError::fail)?;
            day.core.check_invariants().map_err(TestCaseError::fail)?;
            nobody_is_stranded(&day.core, day.now).map_err(TestCaseError::fail)?;
        }
        let mut replayed = asking_day();
        for stamped in &day.journal {
            replayed.core.replay(stamped);
        }
        prop_assert_eq!(replayed.core.agents().collect::<Vec<_>>(), day.core.agents().collect::<Vec<_>>());
        prop_assert_eq!(replayed.core.interactions().collect::<Vec<_>>(), day.core.interactions().collect::<Vec<_>>());
        prop_assert_eq!(replayed.core.stats(), day.core.stats());
        // A snapshot after any event, then the events after it, gives the state the whole
        // journal gives.
        let cut = cut % (day.journal.len() + 1);
        let mut before = asking_day();
        for stamped in &day.journal[..cut] {
            before.core.replay(stamped);
        }
        before.core.compact();
        let bytes = before.core.snapshot().encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let snapshot = engine::StateSnapshot::decode(engine::SNAPSHOT_FORMAT, &bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut restored = Core::restore(before.core.policy().clone(), before.now, snapshot)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        restored.check_invariants().map_err(|e| TestCaseError::fail(format!("restored after event {cut}: {e}")))?;
        for stamped in &day.journal[cut..] {
            restored.replay(stamped);
        }
        restored.compact();
        replayed.core.compact();
        replayed.core.check_invariants().map_err(|e| TestCaseError::fail(format!("replayed and compacted: {e}")))?;
        restored.check_invariants().map_err(|e| TestCaseError::fail(format!("restored after event {cut}, then the rest: {e}")))?;
        prop_assert_eq!(restored.snapshot().normalised(), replayed.core.snapshot().normalised());
        prop_assert_eq!(restored.agents().collect::<Vec<_>>(), replayed.core.agents().collect::<Vec<_>>());
        prop_assert_eq!(restored.stats(), replayed.core.stats());
        prop_assert_eq!(restored.next_timer(), replayed.core.next_timer());
    }
}
