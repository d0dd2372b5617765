//! The agent's desktop driven headless through its real widgets (egui_kittest finds them by their
//! AccessKit labels), over the real core service and real plugin libraries: the first-party demo
//! chat plugin and a fixture voice plugin that answers `dial`. Every test asserts the core's state
//! after the clicks, not only what is drawn.

use crate::support::Install;
use agentdesk_client::in_process::InProcess;
use agentdesk_client::{Connection, DeskClient};
use agentdesk_host::core::{ChannelState, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::service::{Answer, CoreHandle, CoreService, Query};
use agentdesk_host::storage::Journal;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{FixtureSpec, first_party_library, install_fixture};
use agentdesk_ui::desk::Desk;
use agentdesk_ui::ring::WavSink;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use plugin_api::{Command, InvokeAction};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEMO: &str = "agentdesk.demo";

/// A host with the demo chat plugin and a voice plugin, two agents, and a desktop for Ann.
pub(crate) struct Rig {
    install: Install,
    plugins: Arc<PluginHost>,
    service: Option<CoreService>,
    pub(crate) core: CoreHandle,
    policy: Policy,
}

impl Rig {
    pub(crate) fn new() -> Self {
        Self::with_demo_policy("capacity = 2\nacw = { mode = \"extendable\", secs = 30 }\n")
    }

    /// The rig with `more` added to its configuration's `[core]` section.
    pub(crate) fn with_config(more: &str) -> Self {
        Self::with(
            "capacity = 2\nacw = { mode = \"extendable\", secs = 30 }\n",
            more,
            &["demo", "voice"],
        )
    }

    /// The rig with `demo` as the demo channel's `[channels.demo]` policy.
    pub(crate) fn with_demo_policy(demo: &str) -> Self {
        Self::with(demo, "", &["demo", "voice"])
    }

    /// The rig with these channels assigned to everyone (with no plugin behind the extra ones).
    pub(crate) fn with_channels(channels: &[&str]) -> Self {
        Self::with(
            "capacity = 2\nacw = { mode = \"extendable\", secs = 30 }\n",
            "",
            channels,
        )
    }

    fn with(demo: &str, more: &str, channels: &[&str]) -> Self {
        let install = Install::new();
        package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
        let voice = FixtureSpec {
            channel: "voice",
            ..FixtureSpec::new("dialer")
        };
        install_fixture(&install.plugins, voice);
        let core = "[core]\nnot_ready_reasons = [\"Break\", \"Lunch\"]\nwrap_up_required = true\n\
                    wrap_up_codes = [{ code = \"sale\", label = \"Sale\" }, { code = \"info\", label = \"Information\" }]\n";
        let agents = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = \"all\"\n\
                      [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = \"all\"\n";
        let extra = format!(
            "{core}{more}{agents}[channels.demo]\n{demo}[plugins.settings.\"{}\"]\nstatus = \"registered with the PBX\"\n",
            voice.id()
        );
        let config =
            AdminConfig::load(&install.write_config(&[DEMO, &voice.id()], &extra)).expect("config");
        let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
        assert_eq!(plugins.running_ids().len(), 2, "{:#?}", plugins.reports());
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        let policy = Policy::from_config(&config, &channels);
        let service =
            agentdesk_tests::start_core(&install.data, policy.clone(), Some(plugins.clone()));
        let core = service.handle();
        Rig {
            install,
            plugins,
            service: Some(service),
            core,
            policy,
        }
    }

    pub(crate) fn desk(&self, agent: &str) -> Harness<'static, Desk> {
        self.desk_with(agent, |client| client)
    }

    /// `agent`'s desk over a client made from the in-process one by `wrap` (a slow link, say).
    pub(crate) fn desk_with(
        &self,
        agent: &str,
        wrap: impl FnOnce(Box<dyn DeskClient>) -> Box<dyn DeskClient>,
    ) -> Harness<'static, Desk> {
        let connection = InProcess::new(
            self.core.clone(),
            &self.policy,
            Some(self.plugins.clone()),
            Arc::new(SystemClock),
            Some(self.install.data.clone()),
        );
        let client = connection
            .login(agent)
            .wait(Duration::from_secs(10))
            .expect("log in");
        let ring = Box::new(WavSink::new(self.install.dir.path()));
        let desk = Desk::new(wrap(client), ring, || {});
        Harness::builder()
            .with_size(egui::vec2(1400.0, 900.0))
            .build_ui_state(|ui, desk: &mut Desk| desk.ui(ui), desk)
    }

    /// A new chat from the demo plugin's simulated customer.
    pub(crate) fn new_chat(&self) {
        let command = Command::InvokeAction(InvokeAction {
            interaction: None,
            action: "new-conversation".into(),
        });
        self.plugins.send(DEMO, &command).expect("demo offers");
    }

    pub(crate) fn snapshot(&self, agent: &str) -> agentdesk_host::service::AgentSnapshot {
        self.core
            .snapshot(agent)
            .expect("snapshot")
            .expect("known agent")
    }
}

impl Rig {
    /// Stops the core and starts a new one on the same store (a restart of agentdesk).
    fn restart(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
        let service = agentdesk_tests::start_core(
            &self.install.data,
            self.policy.clone(),
            Some(self.plugins.clone()),
        );
        self.core = service.handle();
        self.service = Some(service);
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

/// Ann's desktop over `core`, showing documents from the install's data dir, logged on to
/// `channel` and Ready.
pub(crate) fn ready_desk(
    core: CoreHandle,
    install: &Install,
    policy: &Policy,
    channel: &str,
) -> Harness<'static, Desk> {
    let connection = InProcess::new(
        core,
        policy,
        None,
        Arc::new(SystemClock),
        Some(install.data.clone()),
    );
    let desk = log_in(&connection, "ann", install);
    let mut ann = Harness::builder()
        .with_size(egui::vec2(1400.0, 1000.0))
        .build_ui_state(|ui, desk: &mut Desk| desk.ui(ui), desk);
    click(&mut ann, "My Channels");
    click(&mut ann, &format!("Log on {channel}"));
    click(&mut ann, &format!("Ready {channel}"));
    ann
}

/// `agent`'s desk over `connection`, ringing into a WAV file in the install's directory.
pub(crate) fn log_in(connection: &dyn Connection, agent: &str, install: &Install) -> Desk {
    let client = connection
        .login(agent)
        .wait(Duration::from_secs(10))
        .expect("log in");
    Desk::new(client, Box::new(WavSink::new(install.dir.path())), || {})
}

/// Steps the UI until `test` holds (snapshots arrive from other threads), or fails after 10 s.
pub(crate) fn settle(
    harness: &mut Harness<'_, Desk>,
    what: &str,
    test: impl Fn(&Harness<'_, Desk>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        harness.step();
        if test(harness) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; snapshot: {:#?}; error: {:?}",
            harness.state().snapshot(),
            harness.state().error()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn has_label(harness: &Harness<'_, Desk>, label: &str) -> bool {
    harness.query_by_label(label).is_some()
}

pub(crate) fn click(harness: &mut Harness<'_, Desk>, label: &str) {
    settle(harness, &format!("a control labelled `{label}`"), |h| {
        has_label(h, label)
    });
    // Through AccessKit, not a pointer position: a snapshot arriving between two frames may move
    // the widgets, and a click at the old position would hit a neighbour.
    harness.get_by_label(label).click_accesskit();
    harness.step();
    harness.step();
}

/// Logs the desk's agent on to every channel and makes them Ready through My Channels.
fn ready_everywhere(harness: &mut Harness<'_, Desk>) {
    click(harness, "My Channels");
    for channel in ["demo", "voice"] {
        click(harness, &format!("Log on {channel}"));
        click(harness, &format!("Ready {channel}"));
    }
}

fn channel_state(rig: &Rig, agent: &str, channel: &str) -> ChannelState {
    rig.snapshot(agent)
        .channels
        .into_iter()
        .find(|c| c.channel == channel)
        .map(|c| c.state)
        .expect("assigned")
}

/// Waits for a chat offered to the desk's agent, accepts it in the toast; returns its key.
pub(crate) fn accept_new_chat(rig: &Rig, harness: &mut Harness<'_, Desk>) -> u64 {
    rig.new_chat();
    settle(harness, "the offer toast", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let key = harness
        .state()
        .snapshot()
        .interactions
        .iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .map(|i| i.key)
        .expect("offered");
    click(harness, &format!("Accept #{key}"));
    settle(harness, "the chat to become active", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.key == key && i.state == InteractionState::Active)
    });
    key
}

#[test]
fn channel_states_dnd_and_forwarding_are_set_from_my_channels() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_everywhere(&mut ann);
    assert_eq!(channel_state(&rig, "ann", "demo"), ChannelState::Ready);
    assert_eq!(channel_state(&rig, "ann", "voice"), ChannelState::Ready);
    // The voice plugin's latest channel-status, on its My Channels row and in Diagnostics.
    settle(&mut ann, "the channel status on My Channels", |h| {
        has_label(h, "ok: registered with the PBX")
    });
    click(&mut ann, "Diagnostics");
    settle(&mut ann, "the channel status in Diagnostics", |h| {
        has_label(h, "ok: registered with the PBX")
    });
    click(&mut ann, "My Channels");

    click(&mut ann, "Not Ready voice");
    assert_eq!(
        channel_state(&rig, "ann", "voice"),
        ChannelState::NotReady {
            reason: "Break".into()
        },
        "the first configured reason is the default"
    );
    assert_eq!(
        channel_state(&rig, "ann", "demo"),
        ChannelState::Ready,
        "states are per channel"
    );
    click(&mut ann, "Log off voice");
    assert_eq!(channel_state(&rig, "ann", "voice"), ChannelState::LoggedOff);

    click(&mut ann, "Do Not Disturb (all channels)");
    assert!(rig.snapshot("ann").dnd);
    settle(&mut ann, "DND in the status bar", |h| {
        has_label(h, "Do Not Disturb")
    });

    ann.get_by_label("Forward to").focus();
    ann.get_by_label("Forward to").type_text("4021");
    ann.step();
    click(&mut ann, "Set forwarding");
    assert_eq!(
        rig.snapshot("ann").forward_to.map(|a| a.value),
        Some("4021".into())
    );
    settle(&mut ann, "forwarding in the status bar", |h| {
        has_label(h, "Calls forwarded to 4021")
    });
    click(&mut ann, "Clear forwarding");
    assert_eq!(rig.snapshot("ann").forward_to, None);
}

#[test]
fn an_offered_chat_rings_is_accepted_and_a_message_reaches_the_plugin_and_its_answer_shows() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_everywhere(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    assert!(
        rig.install
            .dir
            .path()
            .join(format!("ring-{chat}.wav"))
            .exists(),
        "the offer rang through the ring sink"
    );
    click(&mut ann, "Interactions");
    settle(&mut ann, "the composer", |h| has_label(h, "Message"));
    // Only what the demo plugin declared is offered: End and Consult, but no Hold (and the core
    // refuses a Hold with the stable code `unsupported`).
    assert!(has_label(&ann, "End") && has_label(&ann, "Consult"));
    assert!(!has_label(&ann, "Hold"), "the demo plugin declared no hold");
    let refused = rig
        .core
        .execute(
            "ann",
            agentdesk_host::core::AgentCommand::Hold { key: chat },
        )
        .expect_err("no hold");
    assert_eq!(
        refused,
        agentdesk_host::service::ClientError::Refused(
            agentdesk_host::core::CoreError::Unsupported {
                key: chat,
                command: "hold".into()
            }
        )
    );
    // A long message, which the transcript shows in full, wrapped.
    let said = format!(
        "Your parcel left today.{}",
        " The courier rings between nine and five; please have an ID ready.".repeat(6)
    );
    ann.get_by_label("Message").focus();
    ann.get_by_label("Message").type_text(&said);
    ann.step();
    // Typing is not sent to a plugin that did not declare `set-typing` (the core would refuse).
    assert_eq!(ann.state().error(), None, "typing was sent");
    click(&mut ann, "Send");
    // The demo customer answers every message: its answer proves the plugin got ours.
    let Answer::LiveLines(lines) = rig
        .core
        .query(Query::Live {
            agent: "ann".into(),
            key: chat,
            offset: 0,
            limit: 100,
        })
        .expect("live transcript")
    else {
        panic!("live lines")
    };
    assert!(
        lines.iter().any(|l| l.from_agent && l.line.text == said),
        "{lines:#?}"
    );
    settle(&mut ann, "the customer's answer on screen", |h| {
        h.query_all_by_label("Demo Customer:").count() >= 2
    });
    let shown = ann.get_by_label(&said).rect();
    assert!(
        shown.height() > 3.0 * 14.0 && shown.right() <= 1400.0,
        "the whole message, wrapped over several rows: {shown:?}"
    );
}

#[test]
fn a_party_action_calls_the_chat_contact_and_links_the_call_to_the_chat() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_everywhere(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    click(&mut ann, "Party actions");
    click(&mut ann, "Call +15550100");
    let snapshot = rig.snapshot("ann");
    let call = snapshot
        .interactions
        .iter()
        .find(|i| i.channel == "voice")
        .unwrap_or_else(|| panic!("a call was started: {snapshot:#?}"));
    assert!(
        call.linked.contains(&chat),
        "the call is linked to the chat"
    );
    assert!(
        snapshot
            .interactions
            .iter()
            .any(|i| i.key == chat && i.linked.contains(&call.key)),
        "and the chat to the call"
    );
}

#[test]
fn a_colleague_is_consulted_then_conferenced_in_through_a_second_client() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_everywhere(&mut ann);
    let mut bob = rig.desk("bob");
    ready_everywhere(&mut bob);
    // Ann has been idle longest: the chat goes to her.
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    click(&mut ann, "Colleague");
    click(&mut ann, "Bob");
    click(&mut ann, "Consult");
    settle(&mut bob, "the consultation offered to Bob", |h| {
        h.state().snapshot().interactions.iter().any(|i| {
            i.consult_about == Some(chat) && matches!(i.state, InteractionState::Offered { .. })
        })
    });
    let consultation = bob
        .state()
        .snapshot()
        .interactions
        .iter()
        .find(|i| i.consult_about == Some(chat))
        .map(|i| i.key)
        .expect("consultation");
    click(&mut bob, &format!("Accept #{consultation}"));
    settle(&mut ann, "the consultation in Ann's list", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.key == consultation && i.state == InteractionState::Active)
    });
    click(&mut ann, &format!("#{consultation} Demo Customer"));
    click(&mut ann, "Conference in");
    let snapshot = rig.snapshot("ann");
    let the_chat = snapshot
        .interactions
        .iter()
        .find(|i| i.key == chat)
        .expect("chat");
    assert_eq!(the_chat.conference, vec!["bob".to_string()]);
    settle(&mut bob, "the chat in Bob's list", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.key == chat)
    });
}

#[test]
fn acw_counts_down_can_be_extended_and_mark_done_needs_the_mandatory_wrap_up_code() {
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_everywhere(&mut ann);
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    click(&mut ann, "End");
    let acw_end = |rig: &Rig| match channel_state(rig, "ann", "demo") {
        ChannelState::AfterCallWork { ends_at, .. } => ends_at,
        other => panic!("not in ACW: {other:?}"),
    };
    let first = acw_end(&rig).expect("timed ACW");
    settle(&mut ann, "the ACW countdown", |h| {
        h.query_by_label_contains("ACW ends in 0:").is_some()
    });
    click(&mut ann, "Extend demo ACW");
    let extended = acw_end(&rig).expect("still timed");
    assert!(
        extended >= first + 30_000,
        "Extend moved the end by the policy's 30 s, from {first} to {extended}"
    );
    click(&mut ann, "Stay in demo ACW");
    assert_eq!(acw_end(&rig), None, "extended indefinitely");
    settle(&mut ann, "the open-ended ACW in the status bar", |h| {
        has_label(h, "ACW: no time limit")
    });

    // Mark Done is disabled until a code is chosen: clicking it changes nothing.
    ann.get_by_label("Mark Done").click();
    ann.step();
    assert!(
        rig.snapshot("ann")
            .interactions
            .iter()
            .any(|i| i.key == chat && i.state == InteractionState::Ended),
        "no Mark Done without the mandatory code"
    );
    click(&mut ann, "Wrap-up code (required)");
    click(&mut ann, "Sale");
    click(&mut ann, "Mark Done");
    assert!(
        rig.snapshot("ann")
            .interactions
            .iter()
            .all(|i| i.key != chat),
        "marked done: the chat left the list"
    );
    let Answer::Entries(found) = rig
        .core
        .query(Query::Search {
            contact: None,
            text: None,
            limit: 10,
        })
        .expect("search")
    else {
        panic!("entries")
    };
    assert_eq!(
        found
            .iter()
            .find(|e| e.key == chat)
            .and_then(|e| e.wrap_up.clone()),
        Some("sale".into())
    );
    // Keyboard: F2 accepts the next offer.
    rig.new_chat();
    settle(&mut ann, "a second offer", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    ann.key_press(egui::Key::F2);
    ann.step();
    assert!(
        rig.snapshot("ann")
            .interactions
            .iter()
            .any(|i| i.state == InteractionState::Active),
        "F2 accepted the offer"
    );
}

/// The desktop's screenshot: the real window (`agentdesk run`) under the X server of `$DISPLAY`,
/// with 3 emails, 2 chats and 1 call offered by plugins at start and auto-answered. Run by
/// `scripts/screenshot.sh` (which starts Xvfb); writes `$AGENTDESK_SCREENSHOT`.
#[test]
#[ignore = "needs an X server: run scripts/screenshot.sh"]
fn desktop_screenshot_under_xvfb() {
    let Some(out) = std::env::var_os("AGENTDESK_SCREENSHOT") else {
        return;
    };
    let install = Install::new();
    package(&first_party_library("agentdesk_demo"), &install.plugins).expect("package demo");
    let mail = FixtureSpec {
        channel: "email",
        ..FixtureSpec::new("mailbox")
    };
    let voice = FixtureSpec {
        channel: "voice",
        ..FixtureSpec::new("phone")
    };
    install_fixture(&install.plugins, mail);
    install_fixture(&install.plugins, voice);
    let extra = format!(
        "[plugins.settings.\"{DEMO}\"]\noffer_at_start = 2\n\
         [plugins.settings.\"{}\"]\noffers_at_start = 3\nmedia = \"email\"\n\
         contacts = [\"Maria Lopez\", \"Kenji Sato\", \"Olivia Brown\"]\n\
         subjects = [\"Invoice 2291 is wrong\", \"Change of address\", \"Refund for order A-00417\"]\n\
         [plugins.settings.\"{}\"]\noffers_at_start = 1\nmedia = \"call\"\ncontacts = [\"Tom Weber\"]\n\
         [core]\nwrap_up_codes = [{{ code = \"sale\", label = \"Sale\" }}]\n\
         [channels.demo]\ncapacity = 2\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann Smith\"\nchannels = \"all\"\n\
         auto_answer = [\"demo\", \"email\", \"voice\"]\n",
        mail.id(),
        voice.id()
    );
    let config = install.write_config(&[DEMO, &mail.id(), &voice.id()], &extra);
    let binary = agentdesk_tests::workspace_artifacts().join("agentdesk");
    let mut child = std::process::Command::new(&binary)
        .args(["--config"])
        .arg(&config)
        .args(["run", "--agent", "ann", "--ready"])
        .spawn()
        .expect("agentdesk starts");
    // The window opens, the plugins offer, the core routes, the desktop auto-answers and draws.
    std::thread::sleep(Duration::from_secs(8));
    let status = std::process::Command::new("import")
        .args(["-window", "root"])
        .arg(&out)
        .status()
        .expect("imagemagick's import");
    let _ = child.kill();
    let _ = child.wait();
    assert!(status.success(), "import failed");
    // The journal says what the window showed: six interactions accepted by Ann.
    let journal =
        Journal::open(&install.data.join("agentdesk.sqlite3")).expect("journal after the run");
    let accepted = journal
        .load()
        .expect("load")
        .iter()
        .filter(|e| e.event.kind() == "interaction-accepted")
        .count();
    assert_eq!(accepted, 6, "3 emails + 2 chats + 1 call were accepted");
}

#[test]
fn a_restarted_desktop_shows_the_open_chat_with_its_transcript_and_the_channel_states() {
    let mut rig = Rig::new();
    let mut ann = rig.desk("ann");
    ready_everywhere(&mut ann);
    click(&mut ann, "Not Ready voice");
    let chat = accept_new_chat(&rig, &mut ann);
    click(&mut ann, "Interactions");
    settle(&mut ann, "the customer's opening line", |h| {
        has_label(h, "Demo Customer:")
    });
    let before = rig.snapshot("ann");
    drop(ann);
    rig.restart();
    let mut ann = rig.desk("ann");
    settle(&mut ann, "the chat back in the list", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.key == chat && i.state == InteractionState::Active)
    });
    let after = rig.snapshot("ann");
    assert_eq!(after.channels, before.channels, "states as they were");
    click(&mut ann, "Interactions");
    settle(&mut ann, "the transcript read back from the history", |h| {
        has_label(h, "Demo Customer:")
    });
}

#[test]
fn a_workitem_pdf_shows_its_metadata_text_and_page_preview_in_the_document_view() {
    const WORKITEM: &str = "agentdesk.workitem";
    let install = Install::new();
    package(&first_party_library("agentdesk_workitem"), &install.plugins).expect("package");
    let extra = format!(
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"workitem\"]\n\
         [plugins.settings.\"{WORKITEM}\"]\nstable_ms = 300\nrescan_ms = 400\ntool_timeout_ms = 20000\n"
    );
    let config = AdminConfig::load(&install.write_config(&[WORKITEM], &extra)).expect("config");
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    let policy = Policy::from_config(&config, &["workitem".to_string()]);
    let service = agentdesk_tests::start_core(&install.data, policy.clone(), Some(plugins.clone()));
    let mut ann = ready_desk(service.handle(), &install, &policy, "workitem");

    // A real PDF (Ghostscript), written elsewhere and moved in whole, as a scanner or fax gateway does.
    let staging = install.dir.path().join("claim.pdf");
    crate::workitem::make_pdf(
        &staging,
        "Claim 7731",
        "Fax Gateway",
        &["WATER DAMAGE CLAIM"],
    );
    let inbound = install.data.join("plugins").join(WORKITEM).join("inbound");
    std::fs::rename(&staging, inbound.join("claim.pdf")).expect("deliver");
    let start = Instant::now();
    while !ann
        .state()
        .snapshot()
        .interactions
        .iter()
        .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the workitem was never offered"
        );
        ann.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    ann.key_press(egui::Key::F2);
    ann.step();
    settle(&mut ann, "the page preview", |h| {
        has_label(h, "page 1 preview")
    });
    settle(&mut ann, "the extracted text", |h| {
        h.query_by_label_contains("WATER DAMAGE CLAIM").is_some()
    });
    assert!(has_label(&ann, "File: claim.pdf (application/pdf)"));
    let item = ann
        .state()
        .snapshot()
        .interactions
        .first()
        .cloned()
        .expect("the workitem");
    assert_eq!(item.state, InteractionState::Active);
    assert!(
        item.detail
            .case_data
            .iter()
            .any(|f| f.key == "pages" && f.value == "1"),
        "{:?}",
        item.detail.case_data
    );
    drop(ann);
    service.stop();
}
