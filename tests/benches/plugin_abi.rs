//! Benchmarks of the plugin boundary (release builds of real plugin libraries):
//! - one call across the ABI vs the same call on a plain Rust `dyn Trait`;
//! - encode + cross + decode of one typed command and of one typed event, on one thread;
//! - the round trip of one command through a plugin's actor (queue, thread, deadline);
//! - discover + verify + load + start of 8 plugins.
//!
//! Run with `cargo bench -p agentdesk-tests`; figures go to docs/performance.md.

use agentdesk_host::plugins::host_services::{HostSide, PluginMetrics, RawEvent};
use agentdesk_host::plugins::loader;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{
    FixtureSpec, Profile, build_fixture_in, build_workspace_plugin_release, config_text,
    install_with_manifest,
};
use criterion::{Criterion, criterion_group, criterion_main};
use plugin_api::plugin::Guarded;
use plugin_api::*;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn services(dir: &std::path::Path) -> (HostServicesBox, crossbeam_channel::Receiver<RawEvent>) {
    let (tx, rx) = crossbeam_channel::bounded(1 << 16);
    let side = HostSide::new(
        Arc::from("bench"),
        tx,
        dir.to_path_buf(),
        Arc::new(PluginMetrics::default()),
    );
    (side.into_abi(), rx)
}

fn demo_config() -> Envelope {
    PluginConfig {
        plugin_id: "agentdesk.demo".into(),
        settings: serde_json::json!({}),
    }
    .to_envelope()
}

fn mark_done() -> Command {
    Command::MarkDone(MarkDone {
        interaction: InteractionId::new("demo-1"),
        wrap_up: None,
    })
}

fn offer() -> Event {
    Event::Offer(Offer {
        interaction: InteractionId::new("chat-42"),
        external_id: "session-42".into(),
        channel: ChannelKind::new(ChannelKind::CHAT),
        media: Media::Conversation,
        route: Route::queue("default"),
        contact: Contact {
            display_name: Some("Jo Bloggs".into()),
            addresses: vec![Address::email("jo@example.com")],
        },
        subject: Some("Where is my order?".into()),
        case_data: vec![],
        actions: vec![],
        priority: 0,
    })
}

fn chat_message() -> Event {
    Event::MessageReceived(MessageReceived {
        interaction: InteractionId::new("chat-42"),
        from: Party {
            id: "customer".into(),
            role: Party::CUSTOMER.into(),
            display_name: "Jo Bloggs".into(),
            address: None,
        },
        message: MessageContent {
            id: "m-17".into(),
            text: "Hello, my parcel has not arrived yet.".into(),
            attachments: vec![],
        },
    })
}

fn abi_calls(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let library = build_workspace_plugin_release("agentdesk-plugin-demo", "agentdesk_demo");
    let root = loader::open(&library).expect("demo loads");
    let (host_services, _rx) = services(dir.path());
    let mut across: PluginBox = (root.create())(host_services, demo_config())
        .into_result()
        .expect("create");
    let (host_services, _rx2) = services(dir.path());
    let demo = <agentdesk_demo::Demo as ChannelPlugin>::create(
        Host::new(host_services),
        PluginConfig::from_envelope(&demo_config()).expect("config"),
    )
    .expect("create");
    let mut plain: Box<dyn Plugin> = Box::new(Guarded::new(demo));
    let command = mark_done().to_envelope();

    let mut group = c.benchmark_group("abi");
    group.bench_function("raw call: dyn Trait, same code in-process", |b| {
        b.iter(|| black_box(plain.handle(black_box(command.clone()))))
    });
    group.bench_function("raw call: across the ABI (loaded .so)", |b| {
        b.iter(|| black_box(across.handle(black_box(command.clone()))))
    });
    group.bench_function("typed command: encode + cross + decode reply", |b| {
        let command = mark_done();
        b.iter(|| {
            let reply = across
                .handle(black_box(&command).to_envelope())
                .into_result()
                .expect("reply");
            black_box(Reply::from_envelope(&reply).expect("decodes"))
        })
    });
    for (name, event) in [("chat message", chat_message()), ("offer", offer())] {
        group.bench_function(
            format!("typed event ({name}): encode + emit + decode"),
            |b| {
                let (host_services, rx) = services(dir.path());
                b.iter(|| {
                    let envelope = black_box(&event).to_envelope();
                    host_services.emit(envelope).into_result().expect("emit");
                    let raw = rx.try_recv().expect("queued");
                    black_box(Event::from_envelope(&raw.envelope).expect("decodes"))
                })
            },
        );
    }
    group.bench_function("offer breakdown: encode only", |b| {
        let event = offer();
        b.iter(|| black_box(black_box(&event).to_envelope()))
    });
    group.bench_function("offer breakdown: decode only", |b| {
        let env = offer().to_envelope();
        b.iter(|| black_box(Event::from_envelope(black_box(&env)).expect("d")))
    });
    group.bench_function("offer breakdown: emit + receive only (the crossing)", |b| {
        let (host_services, rx) = services(dir.path());
        let env = offer().to_envelope();
        b.iter(|| {
            host_services
                .emit(black_box(env.clone()))
                .into_result()
                .expect("emit");
            black_box(rx.try_recv().expect("queued"))
        })
    });
    group.finish();
}

fn actor_round_trip(c: &mut Criterion) {
    let install = tempfile::tempdir().expect("tmp");
    let plugins = install.path().join("plugins");
    let library = build_workspace_plugin_release("agentdesk-plugin-demo", "agentdesk_demo");
    agentdesk_host::plugins::package::package(&library, &plugins).expect("package");
    let text = config_text(
        &plugins,
        &install.path().join("data"),
        &["agentdesk.demo"],
        "",
    );
    let config = AdminConfig::parse(&text, "bench").expect("config");
    let host = PluginHost::start(&config, StartMode::Run);
    let command = mark_done();
    c.bench_function(
        "actor: one command round trip (send, plugin thread, reply)",
        |b| {
            b.iter(|| {
                black_box(
                    host.send("agentdesk.demo", black_box(&command))
                        .expect("reply"),
                )
            })
        },
    );
}

fn startup(c: &mut Criterion) {
    let specs: Vec<FixtureSpec> = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]
        .into_iter()
        .map(FixtureSpec::new)
        .collect();
    let libraries: Vec<_> = specs
        .iter()
        .map(|s| build_fixture_in(*s, Profile::Release))
        .collect();
    let work = tempfile::tempdir().expect("tmp");
    let mut round = 0u32;
    let mut group = c.benchmark_group("startup");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("discover + verify + load + start, 8 plugins", |b| {
        // Every iteration installs fresh copies (new files), so each load is a real dlopen and a
        // real sha256, not a cached handle. Installation and shutdown are not timed.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let plugins = work.path().join(format!("round-{round}"));
                let mut allow = Vec::new();
                for (spec, library) in specs.iter().zip(&libraries) {
                    install_with_manifest(
                        &plugins,
                        library,
                        &spec.id(),
                        "1.0.0",
                        "1.0.0",
                        &["fixture"],
                    );
                    allow.push(spec.id());
                }
                let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
                let text = config_text(&plugins, &work.path().join("data"), &allow, "");
                let config = AdminConfig::parse(&text, "bench").expect("config");
                let started = Instant::now();
                let host = PluginHost::start(&config, StartMode::Run);
                total += started.elapsed();
                assert_eq!(host.running_ids().len(), 8, "{:#?}", host.reports());
                drop(host);
                let _ = std::fs::remove_dir_all(&plugins);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, abi_calls, actor_round_trip, startup);
criterion_main!(benches);
