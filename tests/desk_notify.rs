//! Offer notifications on a real D-Bus session bus (issue 22): the test starts its own
//! `dbus-daemon --session` and python-dbusmock's `notification_daemon` template (a notification
//! server we did not write, with the `actions` capability), then drives the desk headless with
//! its window unfocused. The server receives the notification (summary and body are checked);
//! invoking its Accept action accepts the offer in the core, and the notification is withdrawn.

use crate::shell::{Rig, click, settle};
use agentdesk_host::core::InteractionState;
use agentdesk_ui::notify::DbusNotifier;
use eframe::egui;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zbus::zvariant::{OwnedValue, Value};

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const MOCK: &str = "org.freedesktop.DBus.Mock";

/// A private session bus with a mock notification server on it; both end with the test.
struct Bus {
    address: String,
    daemon: Child,
    server: Option<Child>,
    connection: zbus::Connection,
    runtime: tokio::runtime::Runtime,
}

impl Bus {
    fn start() -> Self {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stderr(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package dbus)");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the bus address");
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        // Debian's python3-dbusmock, for Debian's python3 (not another python on PATH).
        let server = Command::new("/usr/bin/python3")
            .args(["-m", "dbusmock", "--template", "notification_daemon"])
            .args(["--parameters", r#"{"capabilities": "body actions"}"#])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3-dbusmock");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let connection = runtime
            .block_on(async {
                zbus::connection::Builder::address(address.as_str())?
                    .build()
                    .await
            })
            .expect("the test's own connection");
        let bus = Bus {
            address,
            daemon,
            server: Some(server),
            connection,
            runtime,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while bus.call(SERVICE, "GetCapabilities", &()).is_err() {
            assert!(
                Instant::now() < deadline,
                "the mock notification server never came up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bus
    }

    fn call<B>(&self, interface: &str, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.runtime.block_on(self.connection.call_method(
            Some(SERVICE),
            PATH,
            Some(interface),
            method,
            body,
        ))
    }

    /// The calls of `method` the mock server received, each as its arguments.
    fn calls(&self, method: &str) -> Vec<Vec<OwnedValue>> {
        let reply = self
            .call(MOCK, "GetMethodCalls", &method)
            .expect("GetMethodCalls");
        let calls: Vec<(u64, Vec<OwnedValue>)> = reply.body().deserialize().expect("a(tav)");
        calls.into_iter().map(|(_, args)| args).collect()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn text(value: &OwnedValue) -> String {
    String::try_from(value.try_clone().expect("clone")).expect("a string argument")
}

#[test]
fn an_offer_to_an_unfocused_desk_is_a_desktop_notification_whose_accept_accepts_it() {
    let bus = Bus::start();
    let rig = Rig::new();
    let mut ann = rig.desk("ann");
    let notifier = DbusNotifier::connect(Some(&bus.address), || {}).expect("on the bus");
    ann.state_mut().set_notifier(Box::new(notifier));
    settle(&mut ann, "the first snapshot", |h| {
        h.state().title() == "Logged off — Ann · agentdesk"
    });
    click(&mut ann, "Ready on all");
    settle(&mut ann, "Ready", |h| {
        h.state().title() == "Ready — Ann · agentdesk"
    });
    // The agent is in another window.
    ann.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .focused = Some(false);
    ann.step();
    rig.new_chat();
    let deadline = Instant::now() + Duration::from_secs(10);
    let notify = loop {
        ann.step();
        if let Some(call) = bus.calls("Notify").into_iter().next() {
            break call;
        }
        assert!(Instant::now() < deadline, "no notification was raised");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout)
    assert_eq!(text(&notify[0]), "agentdesk");
    assert_eq!(text(&notify[3]), "Incoming conversation: Demo Customer");
    let body = text(&notify[4]);
    assert!(body.starts_with("queue "), "the queue first: {body:?}");
    assert!(body.contains("answer within 0:"), "the countdown: {body:?}");
    let actions = Vec::<String>::try_from(notify[5].try_clone().expect("clone")).expect("as");
    assert_eq!(
        actions,
        ["accept", "Accept"],
        "Accept, as the server has actions"
    );
    let key = ann
        .state()
        .snapshot()
        .interactions
        .iter()
        .find(|i| matches!(i.state, InteractionState::Offered { .. }))
        .map(|i| i.key)
        .expect("still ringing");

    // The agent clicks Accept in the notification: the server signals ActionInvoked(id, key).
    // The mock numbers its notifications from 1.
    let args: Vec<Value> = vec![Value::U32(1), Value::from("accept")];
    bus.call(MOCK, "EmitSignal", &(SERVICE, "ActionInvoked", "us", args))
        .expect("EmitSignal");
    settle(&mut ann, "the offer accepted from the notification", |h| {
        h.state()
            .snapshot()
            .interactions
            .iter()
            .any(|i| i.key == key && i.state == InteractionState::Active)
    });
    assert!(
        rig.snapshot("ann")
            .interactions
            .iter()
            .any(|i| i.key == key && i.state == InteractionState::Active),
        "the core has it accepted"
    );
    assert_eq!(ann.state().selected(), Some(key), "and the desk opened it");
    // The notification of an answered offer is withdrawn.
    let deadline = Instant::now() + Duration::from_secs(5);
    while bus.calls("CloseNotification").is_empty() {
        assert!(Instant::now() < deadline, "the notification stayed up");
        ann.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}
