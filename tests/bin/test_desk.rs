//! `agentdesk-test-desk NATS_URL AGENT`: one agent's desktop in a process of its own, as
//! `agentdesk run --hub` is but without a window — the client library (`Remote`) logged in as
//! AGENT — driven by the team tests through JSON lines:
//!
//! - in (stdin), one request per line: `{"command": <AgentCommand>}`,
//!   `{"message": {"key": 1, "text": "…"}}`, `{"live": 1}` (the live transcript),
//!   `{"typing": {"key": 1, "typing": true}}`, `{"search": {"text": "…", "limit": 10}}`;
//! - out (stdout): `{"snapshot": <AgentSnapshot>}` after every change, and one answer per request,
//!   in order: `{"done": null}`, `{"lines": [<LiveLine>…]}`, `{"found": [<HistoryEntry>…]}` or
//!   `{"error": {"code": "…", "message": "…"}}`.
//!
//! With `AGENTDESK_VOICE_REGISTRAR` (and the other `agentdesk_phone::env` variables) set, the
//! desk starts the agent's own voice endpoint, as `agentdesk run --hub` does, and is ready
//! only once it is registered.
//!
//! Prints `{"ready": "<agent>"}` once logged in; ends when stdin closes. Logs to stderr as
//! `agentdesk` does (`AGENTDESK_LOG`).

use agentdesk_client::remote::{Remote, RemoteOptions};
use agentdesk_client::{AgentCommand, ClientError, Connection, DeskClient, Interact};
use agentdesk_phone::{Phone, PhoneConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Line {
    Command(AgentCommand),
    Message { key: u64, text: String },
    Live(u64),
    Typing { key: u64, typing: bool },
    Search { text: Option<String>, limit: usize },
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, agent] = args.as_slice() else {
        eprintln!("usage: agentdesk-test-desk NATS_URL AGENT");
        std::process::exit(2);
    };
    agentdesk_ui::logging::init("warn");
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let options = RemoteOptions {
        agent: Some(agent.clone()),
        ..RemoteOptions::new(url.clone())
    };
    let desk = match Remote::connect(&options).and_then(|r| r.login(agent).wait(WAIT)) {
        Ok(desk) => desk,
        Err(e) => {
            eprintln!("agentdesk-test-desk: {agent} cannot log in: {e}");
            std::process::exit(1);
        }
    };
    let _phone = match start_phone(agent) {
        Ok(phone) => phone,
        Err(e) => {
            eprintln!("agentdesk-test-desk: {agent}'s voice endpoint: {e}");
            std::process::exit(1);
        }
    };
    let snapshots = desk.watch();
    let to_stdout = out.clone();
    std::thread::spawn(move || {
        while let Ok(snapshot) = snapshots.recv() {
            say(&to_stdout, json!({ "snapshot": snapshot }));
        }
    });
    say(&out, json!({ "ready": agent }));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<Line>(&line) {
            Ok(request) => answer(&*desk, request),
            Err(e) => json!({ "error": { "code": "malformed", "message": e.to_string() } }),
        };
        say(&out, answer);
    }
}

/// The agent's voice endpoint, registered, when the environment names one.
fn start_phone(agent: &str) -> Result<Option<Phone>, String> {
    let Some(config) = PhoneConfig::from_env(agent, None, None).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let phone = Phone::start(config).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let status = phone.status();
        if status.registered {
            return Ok(Some(phone));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("not registered: {}", status.detail));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn answer(desk: &dyn DeskClient, request: Line) -> Value {
    let answered = match request {
        Line::Command(command) => desk
            .command(desk.next_id(), command)
            .wait(WAIT)
            .map(|()| json!({ "done": null })),
        Line::Message { key, text } => desk
            .send_message(desk.next_id(), key, &text)
            .wait(WAIT)
            .map(|()| json!({ "done": null })),
        Line::Live(key) => desk
            .live_lines(key, 0, 1000)
            .wait(WAIT)
            .map(|lines| json!({ "lines": lines })),
        Line::Typing { key, typing } => desk
            .interact(desk.next_id(), key, Interact::Typing(typing))
            .wait(WAIT)
            .map(|()| json!({ "done": null })),
        Line::Search { text, limit } => desk
            .search(text.as_deref(), limit)
            .wait(WAIT)
            .map(|found| json!({ "found": found })),
    };
    answered.unwrap_or_else(
        |e: ClientError| json!({ "error": { "code": e.code(), "message": e.to_string() } }),
    )
}

fn say(out: &Mutex<std::io::Stdout>, value: Value) {
    let mut out = match out.lock() {
        Ok(out) => out,
        Err(poisoned) => poisoned.into_inner(),
    };
    // The test reads every line; if it is gone, so is the point of going on.
    if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}
