//! What the desk remembers between runs besides what eframe keeps itself (the window's size and
//! position, and egui's memory: panel widths): the tab that was open. Saved as versioned JSON in
//! eframe's storage; a value saved by another version or damaged is ignored with a log line, and
//! the desk starts as new.

use super::{Desk, Tab};
use serde::{Deserialize, Serialize};

/// The key the layout is saved under in eframe's storage.
pub const KEY: &str = "agentdesk.desk-layout";

/// The format version written.
const VERSION: u32 = 1;

/// The desk's remembered layout. Every field has a default, so a layout saved by an older build
/// (fewer fields) still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layout {
    /// The format version.
    pub version: u32,
    /// The tab open ("interactions", "my-channels", "history", "diagnostics").
    pub tab: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            version: VERSION,
            tab: tab_name(Tab::Work).into(),
        }
    }
}

impl Layout {
    /// Reads a saved layout; `None` (nothing saved) and anything unreadable give the default,
    /// the latter with a warning in the log.
    pub fn load(saved: Option<&str>) -> Self {
        let Some(saved) = saved else {
            return Layout::default();
        };
        match serde_json::from_str::<Layout>(saved) {
            Ok(layout) if layout.version <= VERSION => layout,
            Ok(layout) => {
                tracing::warn!(
                    "the saved desk layout is of a newer version ({}): ignored",
                    layout.version
                );
                Layout::default()
            }
            Err(e) => {
                tracing::warn!("the saved desk layout is unreadable and was ignored: {e}");
                Layout::default()
            }
        }
    }

    /// As saved.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "version": VERSION, "tab": self.tab }).to_string()
    }
}

fn tab_name(tab: Tab) -> &'static str {
    match tab {
        Tab::Work => "interactions",
        Tab::MyChannels => "my-channels",
        Tab::History => "history",
        Tab::Diagnostics => "diagnostics",
    }
}

impl Desk {
    /// The layout to remember.
    pub fn layout(&self) -> Layout {
        Layout {
            version: VERSION,
            tab: tab_name(self.tab).into(),
        }
    }

    /// Takes up a remembered layout (an unknown tab name is left as it is).
    pub fn restore_layout(&mut self, layout: &Layout) {
        let known = [Tab::Work, Tab::MyChannels, Tab::History, Tab::Diagnostics];
        match known.into_iter().find(|t| tab_name(*t) == layout.tab) {
            Some(tab) => self.tab = tab,
            None => tracing::info!("the saved tab {:?} is unknown: ignored", layout.tab),
        }
    }

    /// The tab open.
    pub fn tab(&self) -> Tab {
        self.tab
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_layout_reads_back_and_a_damaged_or_newer_one_gives_the_default() {
        let layout = Layout {
            version: VERSION,
            tab: "history".into(),
        };
        assert_eq!(Layout::load(Some(&layout.to_json())), layout);
        assert_eq!(Layout::load(None), Layout::default());
        assert_eq!(Layout::load(Some("{\"tab\": ")), Layout::default());
        assert_eq!(Layout::load(Some("[1, 2]")), Layout::default());
        let newer = "{\"version\": 99, \"tab\": \"history\"}";
        assert_eq!(Layout::load(Some(newer)), Layout::default());
    }

    #[test]
    fn fields_missing_from_an_older_layout_take_their_defaults() {
        assert_eq!(Layout::load(Some("{}")), Layout::default());
        let old = Layout::load(Some("{\"tab\": \"my-channels\"}"));
        assert_eq!(old.tab, "my-channels");
    }
}
