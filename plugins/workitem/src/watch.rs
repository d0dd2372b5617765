//! Watching the inbound folders: inotify events (through `notify`), a scan at start and a periodic
//! rescan, and the stability rule that decides when a file is complete. Reads no file contents.

use crossbeam_channel::{Receiver, Sender, unbounded};
use notify::{RecursiveMode, Watcher as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Names that are never documents: hidden files, files still being copied under a temporary
/// name, and sidecars (which travel with their document).
pub fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    !(name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".partial", ".tmp", ".crdownload", ".json"]
            .iter()
            .any(|suffix| lower.ends_with(suffix)))
}

/// What a file looked like when last seen: size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    len: u64,
    modified: Option<SystemTime>,
}

fn look(path: &Path) -> Option<Look> {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then(|| Look {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The running watcher; dropping it stops its thread.
pub struct FolderWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    // Kept alive: dropping it ends the inotify watches.
    _inotify: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch").finish_non_exhaustive()
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How the watcher decides.
#[derive(Debug, Clone)]
pub struct WatchRule {
    /// The folders.
    pub folders: Vec<PathBuf>,
    /// Unchanged size and modification time for this long = complete.
    pub stable: Duration,
    /// Full rescan interval.
    pub rescan: Duration,
}

/// Starts watching; complete files are sent to `complete`, each once per (size, mtime) it had
/// when taken. Returns the watcher and a note if inotify could not be set up (scans still run).
pub fn watch(rule: WatchRule, complete: Sender<PathBuf>) -> (FolderWatch, Option<String>) {
    let (events_tx, events) = unbounded::<PathBuf>();
    let mut note = None;
    let inotify = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            for path in event.paths {
                let _ = events_tx.send(path);
            }
        }
    });
    let inotify = match inotify {
        Ok(mut watcher) => {
            for folder in &rule.folders {
                if let Err(e) = watcher.watch(folder, RecursiveMode::NonRecursive) {
                    note = Some(format!(
                        "cannot watch {} ({e}); relying on rescans",
                        folder.display()
                    ));
                }
            }
            Some(watcher)
        }
        Err(e) => {
            note = Some(format!("inotify unavailable ({e}); relying on rescans"));
            None
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("workitem-watch".into())
            .spawn(move || Stability::new(rule, complete).run(&events, &stop))
            .ok()
    };
    (
        FolderWatch {
            stop,
            thread,
            _inotify: inotify,
        },
        note,
    )
}

struct Pending {
    look: Look,
    since: Instant,
}

/// The stability rule's bookkeeping.
struct Stability {
    rule: WatchRule,
    complete: Sender<PathBuf>,
    pending: HashMap<PathBuf, Pending>,
    taken: HashMap<PathBuf, Look>,
}

impl Stability {
    fn new(rule: WatchRule, complete: Sender<PathBuf>) -> Self {
        Stability {
            rule,
            complete,
            pending: HashMap::new(),
            taken: HashMap::new(),
        }
    }

    fn run(mut self, events: &Receiver<PathBuf>, stop: &AtomicBool) {
        let tick =
            (self.rule.stable / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        self.scan();
        let mut last_scan = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if let Ok(path) = events.recv_timeout(tick) {
                self.notice(path);
                while let Ok(path) = events.try_recv() {
                    self.notice(path);
                }
            }
            if last_scan.elapsed() >= self.rule.rescan {
                self.scan();
                last_scan = Instant::now();
            }
            self.settle();
        }
    }

    fn scan(&mut self) {
        self.taken.retain(|path, _| path.exists());
        for folder in self.rule.folders.clone() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                self.notice(entry.path());
            }
        }
    }

    fn notice(&mut self, path: PathBuf) {
        if !is_candidate(&path) || !self.rule.folders.iter().any(|f| path.parent() == Some(f)) {
            return;
        }
        let Some(now_look) = look(&path) else {
            self.pending.remove(&path);
            return;
        };
        if self.taken.get(&path) == Some(&now_look) {
            return;
        }
        match self.pending.get_mut(&path) {
            Some(p) if p.look == now_look => {}
            Some(p) => {
                p.look = now_look;
                p.since = Instant::now();
            }
            None => {
                // A file unchanged since before we looked (e.g. while the host was down) has
                // already been stable for its age.
                let age = now_look
                    .modified
                    .and_then(|m| m.elapsed().ok())
                    .unwrap_or_default()
                    .min(self.rule.stable);
                let since = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                self.pending.insert(
                    path,
                    Pending {
                        look: now_look,
                        since,
                    },
                );
            }
        }
    }

    fn settle(&mut self) {
        let mut ready = Vec::new();
        self.pending.retain(|path, p| match look(path) {
            None => false,
            Some(now_look) if now_look != p.look => {
                p.look = now_look;
                p.since = Instant::now();
                true
            }
            Some(_) if p.since.elapsed() >= self.rule.stable => {
                ready.push((path.clone(), p.look));
                false
            }
            Some(_) => true,
        });
        ready.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, seen) in ready {
            self.taken.insert(path.clone(), seen);
            let _ = self.complete.send(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn temporary_hidden_and_sidecar_names_are_not_documents() {
        for name in ["a.pdf.part", ".a.pdf", "a.pdf.json", "a.tmp", "a.pdf~"] {
            assert!(!is_candidate(Path::new(name)), "{name}");
        }
        assert!(is_candidate(Path::new("/in/fax 12.TIF")));
    }

    #[test]
    fn a_file_still_growing_is_not_taken_until_it_has_been_unchanged_for_the_delay() {
        let dir = tempfile::tempdir().expect("dir");
        let (tx, rx) = unbounded();
        let rule = WatchRule {
            folders: vec![dir.path().to_path_buf()],
            stable: Duration::from_millis(600),
            rescan: Duration::from_millis(100),
        };
        let (_watch, _) = watch(rule, tx);
        let path = dir.path().join("slow.pdf");
        let mut file = std::fs::File::create(&path).expect("create");
        for _ in 0..8 {
            file.write_all(b"more bytes").expect("write");
            file.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(150));
            assert!(rx.try_recv().is_err(), "taken while still being written");
        }
        let taken = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("taken once stable");
        assert_eq!(taken, path);
        assert!(
            rx.recv_timeout(Duration::from_millis(800)).is_err(),
            "taken only once"
        );
    }
}
