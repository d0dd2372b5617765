//! The channel's settings from `[plugins.settings."agentdesk.workitem"]`, with defaults under the
//! plugin's data directory so that the compiled-in configuration works with no section at all.

use crate::tools::Toolbox;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One watched folder and the queue its workitems are offered to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    /// The folder (relative paths are under the plugin's data directory).
    pub folder: PathBuf,
    /// The queue workitems from it are offered to.
    #[serde(default = "default_queue")]
    pub queue: String,
}

fn default_queue() -> String {
    "default".into()
}

/// What happens to a file that cannot be read properly (encrypted, truncated, empty, unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnProblem {
    /// Offer it as a workitem flagged with the reason: an agent deals with it.
    Flag,
    /// Move it to the rejected folder with a `.reason.txt` beside it; nothing is offered.
    Reject,
}

/// Settings from `[plugins.settings."agentdesk.workitem"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Watched folders; default one, `inbound`, to the queue `default`.
    pub inbound: Vec<Inbound>,
    /// Where Mark Done moves a file.
    pub done_folder: PathBuf,
    /// Where rejected files go (with `on_problem = "reject"`).
    pub rejected_folder: PathBuf,
    /// Flag or reject problem files.
    pub on_problem: OnProblem,
    /// A file is taken once its size and modification time have not changed for this long.
    pub stable_ms: u64,
    /// How often the folders are scanned in full besides inotify events (a safety net).
    pub rescan_ms: u64,
    /// Regular expressions applied to the file name; named groups `priority`, `due` and `queue`.
    pub filename_patterns: Vec<String>,
    /// Resolution of page previews, in dots per inch.
    pub preview_dpi: u32,
    /// Pages rendered as previews (from the first).
    pub preview_pages: u32,
    /// Deadline of each outside tool run on a file (pdfinfo, pdftotext, tesseract, ...).
    pub tool_timeout_ms: u64,
    /// Files inspected at once.
    pub workers: usize,
    /// Extracted text beyond this many bytes is cut (the workitem says so).
    pub max_text_bytes: usize,
    /// Run OCR on faxes when `tesseract` is installed.
    pub ocr: bool,
    /// Tesseract's language(s), e.g. `eng` or `eng+deu`.
    pub ocr_language: String,
    /// Directories the outside tools are looked for in, instead of `PATH`.
    pub tool_dirs: Option<Vec<PathBuf>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            inbound: vec![Inbound {
                folder: "inbound".into(),
                queue: default_queue(),
            }],
            done_folder: "done".into(),
            rejected_folder: "rejected".into(),
            on_problem: OnProblem::Flag,
            stable_ms: 2000,
            rescan_ms: 5000,
            filename_patterns: vec![
                r"(?i)(?:^|[^a-z0-9])prio(?:rity)?[-_]?(?P<priority>-?\d+)".into(),
                r"(?i)(?:^|[^a-z0-9])due[-_]?(?P<due>\d{4}-\d{2}-\d{2})".into(),
            ],
            preview_dpi: 50,
            preview_pages: 1,
            tool_timeout_ms: 30_000,
            workers: 2,
            max_text_bytes: 256 * 1024,
            ocr: true,
            ocr_language: "eng".into(),
            tool_dirs: None,
        }
    }
}

impl Settings {
    /// The settings with every folder made absolute against `data_dir`.
    pub fn resolved(mut self, data_dir: &Path) -> Self {
        let absolute = |p: &Path| data_dir.join(p);
        for inbound in &mut self.inbound {
            inbound.folder = absolute(&inbound.folder);
        }
        self.done_folder = absolute(&self.done_folder);
        self.rejected_folder = absolute(&self.rejected_folder);
        self.workers = self.workers.max(1);
        self
    }

    /// The stability delay.
    pub fn stable(&self) -> Duration {
        Duration::from_millis(self.stable_ms)
    }

    /// The outside tools as these settings find and run them.
    pub fn toolbox(&self) -> Toolbox {
        Toolbox {
            dirs: self.tool_dirs.clone(),
            timeout: Duration::from_millis(self.tool_timeout_ms.max(1)),
        }
    }

    /// The queue of the watched folder a file is in.
    pub fn queue_of(&self, file: &Path) -> String {
        self.inbound
            .iter()
            .find(|i| file.parent() == Some(i.folder.as_path()))
            .map_or_else(default_queue, |i| i.queue.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_folders_live_under_the_data_directory_and_absolute_ones_stay() {
        let settings: Settings = serde_json::from_value(serde_json::json!({
            "inbound": [{ "folder": "/srv/fax", "queue": "claims" }, { "folder": "scans" }],
        }))
        .expect("valid");
        let settings = settings.resolved(Path::new("/data/wi"));
        assert_eq!(settings.inbound[0].folder, PathBuf::from("/srv/fax"));
        assert_eq!(settings.inbound[1].folder, PathBuf::from("/data/wi/scans"));
        assert_eq!(settings.inbound[1].queue, "default");
        assert_eq!(settings.done_folder, PathBuf::from("/data/wi/done"));
        assert_eq!(settings.queue_of(Path::new("/srv/fax/a.tif")), "claims");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let bad = serde_json::from_value::<Settings>(serde_json::json!({ "stable": 1 }));
        assert!(bad.is_err());
    }
}
