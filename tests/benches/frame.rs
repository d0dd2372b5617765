//! Frame CPU time of the agent desktop under load: 100 open chats, one of them with a
//! 10,000-message transcript on screen (virtualised rows), each frame laid out and tessellated
//! as eframe does before handing triangles to the GPU. Everything goes through the real core
//! service (offers and messages enter as plugin events), the way the shell runs.
//!
//! The desk reaches the core through the client interface (`agentdesk_client::InProcess`), as
//! the product does.
//!
//! Run with `cargo bench -p agentdesk-tests --bench frame`; prints p50/p99 (docs/performance.md).

use agentdesk_client::Connection;
use agentdesk_client::in_process::InProcess;
use agentdesk_host::AdminConfig;
use agentdesk_host::core::Policy;
use agentdesk_host::service::CoreService;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::storage::History;
use agentdesk_ui::desk::Desk;
use agentdesk_ui::ring::SilentSink;
use criterion::{Criterion, criterion_group, criterion_main};
use eframe::egui;
use plugin_api::{
    ChannelKind, Contact, Event, InteractionId, Media, MessageContent, MessageReceived, Offer,
    Party, Route,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPEN: usize = 100;
const MESSAGES: usize = 10_000;

fn input() -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1280.0, 800.0),
        )),
        ..Default::default()
    }
}

fn offer(n: usize) -> Event {
    Event::Offer(Offer {
        interaction: InteractionId::new(format!("c{n}")),
        external_id: format!("c{n}"),
        channel: ChannelKind::new("chat"),
        media: Media::Conversation,
        route: Route::queue("default"),
        contact: Contact {
            display_name: Some(format!("Customer {n}")),
            addresses: vec![],
        },
        subject: None,
        case_data: vec![],
        actions: vec![],
        priority: 0,
    })
}

fn message(m: usize) -> Event {
    Event::MessageReceived(MessageReceived {
        interaction: InteractionId::new("c0"),
        from: Party {
            id: "customer".into(),
            role: Party::CUSTOMER.into(),
            display_name: "Customer 0".into(),
            address: None,
        },
        message: MessageContent {
            id: format!("m{m}"),
            text: format!("Message {m}: my order has not arrived, call me on +44 20 7946 0958"),
            attachments: vec![],
        },
    })
}

fn frames(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let config = AdminConfig::parse(
        &format!(
            "[channels.chat]\ncapacity = {OPEN}\n[[agents]]\nid = \"ann\"\nname = \"Ann\"\n\
             channels = [\"chat\"]\nauto_answer = [\"chat\"]\n"
        ),
        "bench",
    )
    .expect("config");
    let policy = Policy::from_config(&config, &["chat".to_string()]);
    let history = History::open(&dir.path().join("store.sqlite3")).expect("history");
    let service = CoreService::start(
        policy.clone(),
        None,
        Some(history),
        None,
        Arc::new(SystemClock),
    )
    .expect("service");
    let core = service.handle();
    let connection = InProcess::new(core.clone(), &policy, None, Arc::new(SystemClock), None);
    let client = connection
        .login("ann")
        .wait(Duration::from_secs(10))
        .expect("login");
    let mut desk = Desk::new(client, Box::new(SilentSink::default()), || {});
    desk.ready_on_all_channels();
    // Ready before the offers come: the answers are taken as frames would take them.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until
        && (desk.is_waiting() || desk.snapshot().channels.is_empty() || !desk.snapshot().logged_in)
    {
        std::thread::sleep(Duration::from_millis(5));
        desk.poll();
    }
    for n in 0..OPEN {
        core.plugin_event("bench", offer(n)).expect("offer");
    }
    for m in 0..MESSAGES {
        core.plugin_event("bench", message(m)).expect("message");
    }
    core.tick().expect("settled");
    let ctx = egui::Context::default();
    // Warm up: the transcript is fetched (its answer comes in a later frame), glyphs are laid
    // out once.
    // The transcript comes a page per answer: warm up until nothing has been on its way for a
    // few frames in a row.
    let until = Instant::now() + Duration::from_secs(20);
    let (mut warm, mut idle) = (0, 0);
    while (warm < 5 || idle < 5) && Instant::now() < until {
        let out = ctx.run_ui(input(), |ui| desk.ui(ui));
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
        warm += 1;
        idle = if desk.is_waiting() { 0 } else { idle + 1 };
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(idle >= 5, "the transcript never came");
    let snapshot = desk.snapshot();
    assert_eq!(snapshot.interactions.len(), OPEN, "100 open chats");
    let shown = snapshot
        .interactions
        .iter()
        .find(|i| Some(i.key) == desk.selected())
        .map(|i| i.detail.lines);
    assert_eq!(
        shown,
        Some(MESSAGES),
        "the 10,000-message chat is on screen"
    );

    let mut samples: Vec<Duration> = Vec::with_capacity(4_000);
    c.bench_function("desk frame: 100 open, 10,000-message transcript", |b| {
        b.iter(|| {
            let started = Instant::now();
            let out = ctx.run_ui(input(), |ui| desk.ui(ui));
            let primitives = ctx.tessellate(out.shapes, out.pixels_per_point);
            samples.push(started.elapsed());
            primitives.len()
        })
    });
    samples.sort();
    if let Some(last) = samples.last().copied() {
        let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        eprintln!(
            "frame: {} frames, p50 {:?}, p99 {:?}, max {last:?}",
            samples.len(),
            pct(0.50),
            pct(0.99),
        );
    }
    drop(desk);
    service.stop();
}

criterion_group!(benches, frames);
criterion_main!(benches);
