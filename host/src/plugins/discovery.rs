//! Finding plugins: every `*.plugin.toml` in the configured directories, plus libraries that
//! have no manifest (reported, never loaded). Reads files only; never opens a library.

use super::manifest::{MANIFEST_SUFFIX, Manifest, ManifestError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One thing found in a plugin directory.
#[derive(Debug)]
pub enum Found {
    /// A manifest, parsed or not.
    Manifest {
        /// Where it is.
        path: PathBuf,
        /// What it says.
        manifest: Result<Box<Manifest>, ManifestError>,
    },
    /// A shared library that no manifest names.
    OrphanLibrary {
        /// Where it is.
        path: PathBuf,
    },
    /// A configured directory that cannot be read.
    UnreadableDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Scans the directories in order; entries of one directory are sorted by name.
pub fn discover(directories: &[PathBuf]) -> Vec<Found> {
    let mut found = Vec::new();
    for dir in directories {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            // A missing directory is normal (nothing installed there yet).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                found.push(Found::UnreadableDirectory {
                    path: dir.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut named_libraries = BTreeSet::new();
        let mut libraries = Vec::new();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(MANIFEST_SUFFIX) {
                let manifest = Manifest::read(&path).map(Box::new);
                if let Ok(m) = &manifest {
                    named_libraries.insert(m.library_path(&path));
                }
                found.push(Found::Manifest { path, manifest });
            } else if is_library(&path) {
                libraries.push(path);
            }
        }
        for path in libraries {
            if !named_libraries.contains(&path) {
                found.push(Found::OrphanLibrary { path });
            }
        }
    }
    found
}

fn is_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    )
}
