//! Secrets (app secrets, tokens, consumer keys) from the environment or from a secrets file the
//! admin names; never from the config itself, never in a log line or a `Debug` output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A secret value. `Debug` and `Display` print `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for signing or a request header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Why a secret could not be found. Names where it was looked for, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secrets file could not be read.
    #[error("cannot read the secrets file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secrets file is not `NAME=value` lines.
    #[error("{path}, line {line}: expected NAME=value")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
    },
    /// Neither the file nor the environment has it.
    #[error("the secret {name} is not set (neither in the environment nor in {file})")]
    Missing {
        /// The variable name.
        name: String,
        /// The secrets file, or "no secrets file".
        file: String,
    },
}

/// Where secrets come from: a `NAME=value` file (blank lines and `#` comments allowed) when the
/// admin names one, then the process environment.
#[derive(Debug, Default)]
pub struct Secrets {
    file: Option<PathBuf>,
    values: BTreeMap<String, Secret>,
}

impl Secrets {
    /// Reads `file` if given (a file that cannot be read is an error, not an empty set).
    pub fn load(file: Option<&Path>) -> Result<Self, SecretError> {
        let mut values = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, value) = line.split_once('=').ok_or_else(|| SecretError::Syntax {
                    path: path.to_path_buf(),
                    line: n + 1,
                })?;
                values.insert(name.trim().to_string(), Secret::new(value.trim()));
            }
        }
        Ok(Secrets {
            file: file.map(Path::to_path_buf),
            values,
        })
    }

    /// The secret `name`: from the file, else from the environment.
    pub fn get(&self, name: &str) -> Result<Secret, SecretError> {
        if let Some(value) = self.values.get(name) {
            return Ok(value.clone());
        }
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => Err(SecretError::Missing {
                name: name.to_string(),
                file: self
                    .file
                    .as_ref()
                    .map_or_else(|| "no secrets file".into(), |p| p.display().to_string()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_comes_from_the_file_and_never_shows_in_debug_output() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secrets.env");
        std::fs::write(&path, "# Meta\nFB_APP_SECRET = abc123\n\nFB_TOKEN=t=1\n").expect("write");
        let secrets = Secrets::load(Some(&path)).expect("load");
        let secret = secrets.get("FB_APP_SECRET").expect("secret");
        assert_eq!(secret.expose(), "abc123");
        assert_eq!(secrets.get("FB_TOKEN").expect("token").expose(), "t=1");
        assert_eq!(format!("{secret:?} {secret}"), "<secret> <secret>");
        let missing = secrets
            .get("AGENTDESK_TEST_SURELY_UNSET")
            .expect_err("missing");
        assert!(missing.to_string().contains("AGENTDESK_TEST_SURELY_UNSET"));
        std::fs::write(&path, "no equals sign\n").expect("write");
        assert!(matches!(
            Secrets::load(Some(&path)),
            Err(SecretError::Syntax { line: 1, .. })
        ));
    }
}
