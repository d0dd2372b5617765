//! Crash-safe files in the plugin's data directory: a whole state value written atomically.
//! For IMAP UIDs, processed-file hashes and similar small durable state; not a database.

use serde::{Serialize, de::DeserializeOwned};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One serde value kept in a JSON file, replaced atomically on every save (write to a temporary
/// file, fsync, rename, fsync the directory): after a crash the file holds either the old or the
/// new value, never a mix.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// A state file at `dir/name` (usually `dir` is [`crate::Host::data_dir`]).
    pub fn new(dir: &Path, name: &str) -> Self {
        StateFile {
            path: dir.join(name),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the value, or `T::default()` when the file does not exist yet.
    pub fn load<T: DeserializeOwned + Default>(&self) -> std::io::Result<T> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(e),
        }
    }

    /// Saves the value atomically.
    pub fn save<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("tmp");
        {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        fs::File::open(dir)?.sync_all()
    }
}
