//! Voice at each agent's own desk, in a team: the real `agentdesk hub` process runs the voice
//! channel over a real `nats-server`; Ann's and Bob's desktops are processes of their own
//! (`agentdesk-test-desk`), each with its own voice endpoint (`agentdesk-phone`, on WAV files)
//! registered at the hub's voice channel as the agent's extension. A customer on baresip calls
//! Ann; she answers from her desk and hears the customer through her endpoint; she transfers to
//! Bob, whose endpoint then carries the call. Audio is checked by frequency.

use crate::client_suite::until;
use crate::desk_process::DeskProcess;
use crate::nats::NatsServer;
use crate::support::Install;
use crate::team::start_hub;
use crate::voice::{Baresip, CUSTOMER_HZ, VOICE, assert_tone, write_tone};
use agentdesk_client::{AgentCommand, InteractionState};
use agentdesk_host::plugins::package::package;
use agentdesk_tests::first_party_library;
use plugin_api::Route;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ANN_HZ: f64 = 900.0;
const BOB_HZ: f64 = 700.0;

/// The environment of a desk whose endpoint registers at `registrar`.
fn endpoint_env(
    dir: &Path,
    agent: &str,
    registrar: &str,
    extension: &str,
    hz: f64,
) -> Vec<(&'static str, String)> {
    let tone = dir.join(format!("{agent}.wav"));
    write_tone(&tone, hz, 20);
    vec![
        (agentdesk_phone::env::REGISTRAR, registrar.to_string()),
        (agentdesk_phone::env::EXTENSION, extension.to_string()),
        (agentdesk_phone::env::PASSWORD, format!("{agent}-secret")),
        (agentdesk_phone::env::PLAY, tone.display().to_string()),
        (
            agentdesk_phone::env::RECORDINGS,
            dir.join(agent).display().to_string(),
        ),
    ]
}

fn ready(desk: &mut DeskProcess) {
    for command in [
        AgentCommand::LogOnChannel {
            channel: "voice".into(),
        },
        AgentCommand::SetReady {
            channel: "voice".into(),
        },
    ] {
        desk.ok(command);
    }
}

fn offered(desk: &DeskProcess, who: &str) -> u64 {
    let seen = until(&desk.snapshots, &format!("a call offered to {who}"), |s| {
        s.interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    seen.interactions
        .iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .map(|i| i.key)
        .expect("offered")
}

fn recording(dir: &Path) -> PathBuf {
    crate::voice::until(&format!("a recording in {}", dir.display()), || {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "wav"))
    })
}

#[test]
fn team_voice_a_customer_call_reaches_anns_desk_endpoint_and_is_transferred_to_bobs() {
    let nats = NatsServer::start();
    let install = Install::new();
    package(&first_party_library("agentdesk_voice"), &install.plugins).expect("package voice");
    let extra = format!(
        "[plugins.settings.\"{VOICE}\"]\nport = 0\n\
         [plugins.settings.\"{VOICE}\".agents.ann]\nextension = \"2001\"\npassword = \"ann-secret\"\n\
         [plugins.settings.\"{VOICE}\".agents.bob]\nextension = \"2002\"\npassword = \"bob-secret\"\n\
         [channels.voice]\nanswer_timeout_secs = 20\ncapacity = 10\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"voice\"]\nextension = \"2001\"\n\
         [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"voice\"]\nextension = \"2002\"\n"
    );
    let config = install.write_config(&[VOICE], &extra);
    let _hub = start_hub(&config, &nats.url);
    let endpoint = install
        .data
        .join("plugins")
        .join(VOICE)
        .join("endpoint.json");
    let endpoint: serde_json::Value = crate::voice::until("the hub's voice endpoint", || {
        serde_json::from_str(&std::fs::read_to_string(&endpoint).ok()?).ok()
    });
    let port = endpoint["port"].as_u64().expect("port");
    let registrar = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("dir");
    let ann_env = endpoint_env(dir.path(), "ann", &registrar, "2001", ANN_HZ);
    let mut ann = DeskProcess::start_with(&nats.url, "ann", |c| {
        c.envs(ann_env);
    });
    let bob_env = endpoint_env(dir.path(), "bob", &registrar, "2002", BOB_HZ);
    let mut bob = DeskProcess::start_with(&nats.url, "bob", |c| {
        c.envs(bob_env);
    });
    ready(&mut ann);
    ready(&mut bob);

    let customer = Baresip::start("customer", CUSTOMER_HZ);
    customer.cmd("dial", &format!("sip:2001@{registrar}"));
    let key = offered(&ann, "Ann");
    ann.ok(AgentCommand::Accept { key });
    crate::voice::until("the customer connected", || {
        customer.established().then_some(())
    });
    let ann_heard = recording(&dir.path().join("ann"));
    std::thread::sleep(Duration::from_secs(2));
    ann.ok(AgentCommand::Transfer {
        key,
        to: Route::agent("bob"),
    });
    let bobs = offered(&bob, "Bob");
    bob.ok(AgentCommand::Accept { key: bobs });
    let bob_heard = recording(&dir.path().join("bob"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(customer.established(), "the customer stayed on the line");
    customer.cmd("hangup", "");
    until(&bob.snapshots, "the call ended at Bob's desk", |s| {
        s.interactions
            .iter()
            .any(|i| i.key == bobs && i.state == InteractionState::Ended)
    });
    assert_tone(
        &ann_heard,
        0,
        CUSTOMER_HZ,
        "Ann's endpoint heard the customer",
    );
    assert_tone(
        &bob_heard,
        0,
        CUSTOMER_HZ,
        "Bob's endpoint heard the customer",
    );
    customer.assert_heard(ANN_HZ, "the customer heard Ann's endpoint");
    customer.assert_heard(BOB_HZ, "the customer heard Bob's endpoint");
}
