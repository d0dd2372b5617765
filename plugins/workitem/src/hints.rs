//! Priority, due date and queue of a document from its sidecar file (`<name>.json`) or, failing
//! that, from the admin's filename patterns. The sidecar wins over the name, the name over the folder.

use regex::Regex;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A filename pattern that is not a valid regular expression.
#[derive(Debug, Error)]
#[error("filename pattern `{pattern}` is not a valid regular expression: {source}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub source: regex::Error,
}

/// What the sender of a document asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hints {
    /// Higher first.
    pub priority: Option<i32>,
    /// Due date (`YYYY-MM-DD` or any text the sender wrote).
    pub due: Option<String>,
    /// The queue, instead of the folder's.
    pub queue: Option<String>,
    /// A subject, instead of the title or file name.
    pub subject: Option<String>,
}

impl Hints {
    /// `self`, with gaps filled from `other`.
    fn or(self, other: Hints) -> Hints {
        Hints {
            priority: self.priority.or(other.priority),
            due: self.due.or(other.due),
            queue: self.queue.or(other.queue),
            subject: self.subject.or(other.subject),
        }
    }
}

/// The admin's filename patterns, compiled.
#[derive(Debug, Clone)]
pub struct FilenamePatterns(Vec<Regex>);

impl FilenamePatterns {
    /// Compiles the patterns.
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        patterns
            .iter()
            .map(|p| {
                Regex::new(p).map_err(|source| PatternError {
                    pattern: p.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()
            .map(FilenamePatterns)
    }

    /// What the file name says (groups `priority`, `due`, `queue`; the first match of each wins).
    pub fn read(&self, name: &str) -> Hints {
        let mut hints = Hints::default();
        for pattern in &self.0 {
            let Some(found) = pattern.captures(name) else {
                continue;
            };
            let group = |g: &str| found.name(g).map(|m| m.as_str().to_string());
            hints = hints.or(Hints {
                priority: group("priority").and_then(|p| p.parse().ok()),
                due: group("due"),
                queue: group("queue"),
                subject: None,
            });
        }
        hints
    }
}

/// The sidecar of `document`: the same name with `.json` appended.
pub fn sidecar_of(document: &Path) -> PathBuf {
    let mut name = document.as_os_str().to_os_string();
    name.push(".json");
    PathBuf::from(name)
}

/// Whether `path` is a sidecar (not a document of its own).
pub fn is_sidecar(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// The hints for `document`: its sidecar's, then its name's. A sidecar that cannot be read is a
/// problem for the agent (returned as text), never a lost file.
pub fn hints_for(document: &Path, patterns: &FilenamePatterns) -> (Hints, Option<String>) {
    let name = document
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let from_name = patterns.read(&name);
    let sidecar = sidecar_of(document);
    match std::fs::read(&sidecar) {
        Ok(bytes) => match serde_json::from_slice::<Hints>(&bytes) {
            Ok(hints) => (hints.or(from_name), None),
            Err(e) => (
                from_name,
                Some(format!("the sidecar file {name}.json cannot be read: {e}")),
            ),
        },
        Err(_) => (from_name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn the_default_patterns_read_priority_and_due_date_from_the_name() {
        let patterns = FilenamePatterns::new(&Settings::default().filename_patterns).expect("ok");
        let hints = patterns.read("claim_prio7_due2026-12-01.pdf");
        assert_eq!(hints.priority, Some(7));
        assert_eq!(hints.due.as_deref(), Some("2026-12-01"));
        assert_eq!(patterns.read("portfolio3.pdf"), Hints::default());
    }

    #[test]
    fn the_sidecar_wins_over_the_name() {
        let dir = tempfile::tempdir().expect("dir");
        let doc = dir.path().join("fax_prio2.tif");
        std::fs::write(
            sidecar_of(&doc),
            r#"{"priority": 9, "queue": "claims", "due": "tomorrow"}"#,
        )
        .expect("sidecar");
        let patterns = FilenamePatterns::new(&Settings::default().filename_patterns).expect("ok");
        let (hints, problem) = hints_for(&doc, &patterns);
        assert_eq!(problem, None);
        assert_eq!(hints.priority, Some(9));
        assert_eq!(hints.queue.as_deref(), Some("claims"));
        std::fs::write(sidecar_of(&doc), "{ not json").expect("sidecar");
        let (hints, problem) = hints_for(&doc, &patterns);
        assert_eq!(hints.priority, Some(2), "the name still counts");
        assert!(problem.is_some_and(|p| p.contains("sidecar")));
    }

    #[test]
    fn a_bad_pattern_is_an_error_naming_it() {
        let error = FilenamePatterns::new(&["(".to_string()]).expect_err("bad");
        assert!(error.to_string().contains("`(`"));
    }
}
