//! A team's NATS authorization, written by `agentdesk hub nats-config` from the admin file and
//! enforced by a real `nats-server` that speaks only TLS (a CA made by the test): each agent's
//! nkey reaches only their own subjects. Bob's desktop tries Ann's request subject, her
//! snapshots, her inbox and a wildcard: refused or without effect, and Ann's state stays hers.

use crate::cli::agentdesk;
use crate::client_suite::{ClientRig, InProcessRig};
use crate::mailserver::make_ca;
use crate::nats::NatsServer;
use crate::support::Install;
use agentdesk_client::remote::{Remote, RemoteOptions, wire};
use agentdesk_client::{AgentCommand, Connection, DeskClient};
use agentdesk_hub::authorization::new_user_key;
use agentdesk_hub::{Hub, HubOptions};
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
/// How long a refused subscription is watched for messages it must not get.
const QUIET: Duration = Duration::from_millis(800);

fn desk(url: &str, ca: &Path, agent: &str, seed: &str) -> Box<dyn DeskClient> {
    let options = RemoteOptions {
        agent: Some(agent.into()),
        nkey_seed: Some(seed.into()),
        ca_file: Some(ca.to_path_buf()),
        ..RemoteOptions::new(url)
    };
    Remote::connect(&options)
        .expect("connect")
        .login(agent)
        .wait(WAIT)
        .expect("log in")
}

#[test]
fn each_agent_reaches_only_their_own_subjects() {
    let (hub_key, hub_seed) = new_user_key();
    let (ann_key, ann_seed) = new_user_key();
    let (bob_key, bob_seed) = new_user_key();
    // The admin file names the keys; the authorization comes from it through the command.
    let install = Install::new();
    let admin = install.dir.path().join("team.toml");
    std::fs::write(
        &admin,
        format!(
            "[hub]\nnats_key = \"{hub_key}\"\n\
             [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\nnats_key = \"{ann_key}\"\n\
             [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"chat\"]\nnats_key = \"{bob_key}\"\n"
        ),
    )
    .expect("admin file");
    let out = agentdesk(&[
        "hub",
        "nats-config",
        "--config",
        &admin.display().to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let authorization = String::from_utf8(out.stdout).expect("text");
    let tls = make_ca(install.dir.path(), "nats");
    let nats = NatsServer::start_with(&format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n{authorization}",
        tls.cert.display(),
        tls.key.display()
    ));
    let ca = tls.ca.as_path();

    let mut rig = InProcessRig::new();
    let options = HubOptions {
        nkey_seed: Some(hub_seed),
        ca_file: Some(ca.to_path_buf()),
        ..HubOptions::new(nats.url.clone())
    };
    let hub = Hub::serve(&options, rig.connect_in_process()).expect("the hub serves");

    // Ann works as usual.
    let ann = desk(&nats.url, ca, "ann", &ann_seed);
    let ann_sees = ann.watch();
    ann.command(ann.next_id(), AgentCommand::SetDnd { on: false })
        .wait(WAIT)
        .expect("Ann's own command");
    let first = ann_sees.recv_timeout(WAIT).expect("Ann's snapshot");
    assert!(!first.dnd);

    // A desktop that does not trust the server's CA does not connect.
    let untrusting = Remote::connect(&RemoteOptions {
        agent: Some("ann".into()),
        nkey_seed: Some(ann_seed.clone()),
        request_timeout: Duration::from_secs(2),
        ..RemoteOptions::new(nats.url.clone())
    });
    if let Ok(untrusting) = untrusting {
        assert!(untrusting.login("ann").wait(WAIT).is_err(), "TLS unchecked");
    }
    // Nobody without a key gets in.
    let anonymous = Remote::connect(&RemoteOptions {
        request_timeout: Duration::from_secs(2),
        ca_file: Some(ca.to_path_buf()),
        ..RemoteOptions::new(nats.url.clone())
    });
    if let Ok(anonymous) = anonymous {
        assert!(
            anonymous.agents().wait(WAIT).is_err(),
            "an anonymous request"
        );
    }

    // Bob's own NATS connection, used as a hostile program would use it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let bob = async_nats::ConnectOptions::with_nkey(bob_seed.clone())
            .add_root_certificates(ca.to_path_buf())
            .require_tls(true)
            .custom_inbox_prefix(wire::inbox_prefix("bob"))
            .connect(nats.url.clone())
            .await
            .expect("Bob connects");
        let mut spies = Vec::new();
        for subject in [
            wire::snapshots("ann"),
            format!("{}.>", wire::inbox_prefix("ann")),
            "ad.v1.agent.>".to_string(),
            ">".to_string(),
        ] {
            // The server refuses these subscriptions; whatever the client library does with
            // the refusal, nothing may arrive on them.
            if let Ok(spy) = bob.subscribe(subject.clone()).await {
                spies.push((subject, spy));
            }
        }
        // A command on Ann's subject: the server refuses the publish, nobody answers.
        let forged = wire::encode(&wire::Envelope {
            v: wire::VERSION,
            request: wire::Request::Command {
                id: agentdesk_client::CommandId::new("forged-1"),
                command: AgentCommand::SetDnd { on: true },
            },
        })
        .expect("body");
        let answered = tokio::time::timeout(
            Duration::from_secs(2),
            bob.request(wire::requests("ann"), forged.into()),
        )
        .await;
        assert!(
            !matches!(answered, Ok(Ok(_))),
            "a request on Ann's subject was answered"
        );
        // Meanwhile Ann's state changes: nothing of it reaches Bob's spies.
        let ann_changes = tokio::task::spawn_blocking({
            let seed = ann_seed.clone();
            let url = nats.url.clone();
            let ca = ca.to_path_buf();
            move || {
                let ann = desk(&url, &ca, "ann", &seed);
                let log_on = AgentCommand::LogOnChannel {
                    channel: "chat".into(),
                };
                ann.command(ann.next_id(), log_on).wait(WAIT)?;
                let break_ = AgentCommand::SetNotReady {
                    channel: "chat".into(),
                    reason: "Break".into(),
                };
                ann.command(ann.next_id(), break_).wait(WAIT)
            }
        });
        for (subject, mut spy) in spies {
            let got = tokio::time::timeout(QUIET, spy.next()).await;
            assert!(
                !matches!(got, Ok(Some(_))),
                "Bob received a message on {subject}"
            );
        }
        ann_changes
            .await
            .expect("joined")
            .expect("Ann's own changes are carried out");
    });

    // Bob's own desktop works, and only as Bob.
    let bob = desk(&nats.url, ca, "bob", &bob_seed);
    bob.command(bob.next_id(), AgentCommand::SetDnd { on: true })
        .wait(WAIT)
        .expect("Bob's own command");
    let ann_now = rig_snapshot(&rig, "ann");
    assert!(!ann_now.dnd, "Ann's DND was not set by anyone else");
    assert_eq!(
        ann_now.channels[0].state,
        agentdesk_client::ChannelState::NotReady {
            reason: "Break".into()
        },
        "Ann's own change"
    );
    assert!(rig_snapshot(&rig, "bob").dnd);
    hub.stop();
    rig.stop_core();
}

fn rig_snapshot(rig: &InProcessRig, agent: &str) -> agentdesk_client::AgentSnapshot {
    rig.connect_in_process()
        .snapshot(agent)
        .expect("snapshot")
        .expect("known agent")
}
