//! A session whose answers and snapshots arrive late on purpose, as over a slow network: tests
//! and benchmarks use it to show that the desk keeps drawing frames and shows what is pending.

use crate::{
    AgentCommand, AgentSnapshot, CommandId, DeskClient, DeskInfo, HistoryEntry, Interact, LiveLine,
    Millis, Pending, PluginTable, TranscriptLine,
};
use crossbeam_channel::Receiver;
use plugin_api::AttachmentRef;
use std::time::Duration;

/// `inner`, with every answer and snapshot held back by `delay`.
pub struct Slow {
    inner: Box<dyn DeskClient>,
    delay: Duration,
}

impl Slow {
    /// Wraps a session.
    pub fn new(inner: Box<dyn DeskClient>, delay: Duration) -> Self {
        Slow { inner, delay }
    }
}

impl DeskClient for Slow {
    fn link(&self) -> crate::LinkState {
        self.inner.link()
    }
    fn agent(&self) -> &str {
        self.inner.agent()
    }
    fn info(&self) -> &DeskInfo {
        self.inner.info()
    }
    fn now(&self) -> Millis {
        self.inner.now()
    }
    fn next_id(&self) -> CommandId {
        self.inner.next_id()
    }
    fn watch(&self) -> Receiver<AgentSnapshot> {
        let (forward, late) = crossbeam_channel::unbounded();
        let (stream, delay) = (self.inner.watch(), self.delay);
        // Each snapshot is passed on `delay` after it came, in order.
        let started = std::thread::Builder::new()
            .name("slow-snapshots".into())
            .spawn(move || {
                while let Ok(snapshot) = stream.recv() {
                    let due = std::time::Instant::now() + delay;
                    std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
                    if forward.send(snapshot).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = started {
            tracing::error!("no snapshots for the slow session: {e}");
        }
        late
    }
    fn command(&self, id: CommandId, command: AgentCommand) -> Pending<()> {
        self.inner.command(id, command).held_for(self.delay)
    }
    fn send_message(&self, id: CommandId, key: u64, text: &str) -> Pending<()> {
        self.inner.send_message(id, key, text).held_for(self.delay)
    }
    fn interact(&self, id: CommandId, key: u64, act: Interact) -> Pending<()> {
        self.inner.interact(id, key, act).held_for(self.delay)
    }
    fn live_lines(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<LiveLine>> {
        self.inner
            .live_lines(key, offset, limit)
            .held_for(self.delay)
    }
    fn contact_history(&self, key: u64, limit: usize) -> Pending<Vec<HistoryEntry>> {
        self.inner.contact_history(key, limit).held_for(self.delay)
    }
    fn presence(&self) -> Pending<Vec<crate::Presence>> {
        self.inner.presence().held_for(self.delay)
    }
    fn search(&self, text: Option<&str>, limit: usize) -> Pending<Vec<HistoryEntry>> {
        self.inner.search(text, limit).held_for(self.delay)
    }
    fn recent(&self, filter: &crate::HistoryFilter, limit: usize) -> Pending<Vec<HistoryEntry>> {
        self.inner.recent(filter, limit).held_for(self.delay)
    }
    fn transcript(&self, key: u64, offset: usize, limit: usize) -> Pending<Vec<TranscriptLine>> {
        self.inner
            .transcript(key, offset, limit)
            .held_for(self.delay)
    }
    fn file(&self, key: u64, attachment: &AttachmentRef) -> Pending<Vec<u8>> {
        self.inner.file(key, attachment).held_for(self.delay)
    }
    fn plugins(&self) -> Pending<PluginTable> {
        self.inner.plugins().held_for(self.delay)
    }
}
