//! The test side of `agentdesk-test-desk`: one agent's desktop in a process of its own, over
//! NATS, driven by JSON lines (see `bin/test_desk.rs`). Snapshots arrive on a stream the
//! `client_suite::until` helper reads; requests are answered in order.

use agentdesk_client::{AgentCommand, AgentSnapshot, HistoryEntry, LiveLine};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A desktop process; killed when dropped.
pub(crate) struct DeskProcess {
    child: Child,
    /// Requests go one at a time (each waits for its answer).
    stdin: std::sync::Mutex<ChildStdin>,
    answers: crossbeam_channel::Receiver<Value>,
    /// Every snapshot the desktop got, in order.
    pub(crate) snapshots: crossbeam_channel::Receiver<AgentSnapshot>,
}

impl DeskProcess {
    /// Starts `agent`'s desktop on the hub at `url` and waits until it is logged in.
    pub(crate) fn start(url: &str, agent: &str) -> Self {
        Self::start_with(url, agent, |_| {})
    }

    /// The same, with its command set up by `configure` first (environment, where stderr goes).
    pub(crate) fn start_with(url: &str, agent: &str, configure: impl FnOnce(&mut Command)) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentdesk-test-desk"));
        command
            .args([url, agent])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut command);
        let mut child = command.spawn().expect("agentdesk-test-desk starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (answer, answers) = crossbeam_channel::unbounded();
        let (snapshot, snapshots) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("the desk said `{line}`: {e}"));
                if let Some(s) = value.get("snapshot") {
                    let s = serde_json::from_value(s.clone()).expect("a snapshot");
                    if snapshot.send(s).is_err() {
                        break;
                    }
                } else if answer.send(value).is_err() {
                    break;
                }
            }
        });
        let desk = DeskProcess {
            child,
            stdin: std::sync::Mutex::new(stdin),
            answers,
            snapshots,
        };
        let ready = desk.next_answer();
        assert_eq!(ready["ready"], agent, "{ready}");
        desk
    }

    fn next_answer(&self) -> Value {
        self.answers
            .recv_timeout(WAIT)
            .expect("the desk process answers")
    }

    fn ask(&self, request: Value) -> Value {
        let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(stdin, "{request}").expect("the desk process reads");
        stdin.flush().expect("flush");
        self.next_answer()
    }

    /// Carries out a command; `Err(code)` when refused or failed.
    pub(crate) fn command(&self, command: AgentCommand) -> Result<(), String> {
        let answer = self.ask(json!({ "command": command }));
        match answer.get("error") {
            Some(e) => Err(e["code"].as_str().unwrap_or_default().to_string()),
            None => Ok(()),
        }
    }

    /// Carries out a command that must succeed.
    pub(crate) fn ok(&self, command: AgentCommand) {
        let what = format!("{command:?}");
        if let Err(code) = self.command(command) {
            panic!("{what}: {code}");
        }
    }

    /// Writes in an interaction.
    pub(crate) fn say(&self, key: u64, text: &str) {
        let answer = self.ask(json!({ "message": { "key": key, "text": text } }));
        assert!(answer.get("done").is_some(), "message refused: {answer}");
    }

    /// The live transcript of an interaction as this desk sees it.
    pub(crate) fn lines(&self, key: u64) -> Vec<LiveLine> {
        let answer = self.ask(json!({ "live": key }));
        serde_json::from_value(answer["lines"].clone())
            .unwrap_or_else(|e| panic!("lines: {e}: {answer}"))
    }

    /// Says whether the agent is typing in an interaction.
    pub(crate) fn typing(&self, key: u64, typing: bool) {
        let answer = self.ask(json!({ "typing": { "key": key, "typing": typing } }));
        assert!(answer.get("done").is_some(), "typing refused: {answer}");
    }

    /// The agent's history search (`None`: the latest).
    pub(crate) fn search(&self, text: Option<&str>, limit: usize) -> Vec<HistoryEntry> {
        let answer = self.ask(json!({ "search": { "text": text, "limit": limit } }));
        serde_json::from_value(answer["found"].clone())
            .unwrap_or_else(|e| panic!("search: {e}: {answer}"))
    }

    /// Waits until the transcript of `key` has a line with exactly `text`.
    pub(crate) fn wait_line(&self, key: u64, text: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        while !self.lines(key).iter().any(|l| l.line.text == text) {
            assert!(
                std::time::Instant::now() < deadline,
                "`{text}` never reached the desk"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DeskProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
