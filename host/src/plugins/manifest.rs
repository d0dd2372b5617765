//! The manifest file beside each plugin library, read *before* the library is opened.
//! Format and file naming only; policy decisions live in `policy`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Manifest files are named `<anything>.plugin.toml`; the library they describe sits beside them.
pub const MANIFEST_SUFFIX: &str = ".plugin.toml";

/// The manifest format version this host reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What a manifest says about its plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of this file (1).
    pub manifest_version: u32,
    /// The plugin's unique id.
    pub id: String,
    /// The name to show.
    pub name: String,
    /// Who made it.
    pub vendor: String,
    /// The plugin's own version.
    pub version: semver::Version,
    /// The plugin-api version the library was built against.
    pub api_version: semver::Version,
    /// The channel kinds it serves.
    pub channels: Vec<String>,
    /// The library's file name, relative to the manifest.
    pub library: String,
    /// The library's sha256, lowercase hex.
    pub sha256: String,
    /// One sentence about the plugin.
    #[serde(default)]
    pub description: String,
    /// The plugin's settings schema (JSON Schema as JSON text), checked against the admin's
    /// `[plugins.settings."<id>"]` when the configuration loads (`settings_schema`). Optional:
    /// an older host ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_schema: Option<String>,
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest: {0}")]
    Read(std::io::Error),
    /// The file is not a valid manifest.
    #[error("the manifest is not valid: {0}")]
    Parse(String),
    /// A format version this host does not read.
    #[error("manifest_version {0} is not supported (this host reads version {MANIFEST_VERSION})")]
    Version(u32),
    /// A bad value.
    #[error("the manifest is not valid: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(ManifestError::Read)?;
        Self::parse(&text)
    }

    /// Parses and checks manifest text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string().trim().into()))?;
        if manifest.manifest_version != MANIFEST_VERSION {
            return Err(ManifestError::Version(manifest.manifest_version));
        }
        if !valid_id(&manifest.id) {
            return Err(ManifestError::Invalid(format!(
                "id `{}` must be lowercase letters, digits, '.', '-' or '_'",
                manifest.id
            )));
        }
        if manifest.library.contains('/') || manifest.library.contains('\\') {
            return Err(ManifestError::Invalid(format!(
                "library `{}` must be a file name beside the manifest",
                manifest.library
            )));
        }
        Ok(manifest)
    }

    /// The library path for a manifest found at `manifest_path`.
    pub fn library_path(&self, manifest_path: &Path) -> PathBuf {
        manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.library)
    }

    /// The manifest as TOML text.
    pub fn to_toml(&self) -> String {
        // A struct of strings, versions and a list always serializes.
        toml::to_string(self).unwrap_or_default()
    }
}

/// Whether a plugin id is well formed.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// The sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
manifest_version = 1
id = "acme.sms"
name = "SMS"
vendor = "Acme"
version = "1.2.0"
api_version = "1.0.0"
channels = ["sms"]
library = "libacme_sms.so"
sha256 = "00"
"#;

    #[test]
    fn a_good_manifest_round_trips() {
        let m = Manifest::parse(GOOD).expect("valid");
        assert_eq!(m.version, semver::Version::new(1, 2, 0));
        assert_eq!(Manifest::parse(&m.to_toml()).expect("round trip"), m);
    }

    #[test]
    fn bad_manifests_say_why() {
        let e = Manifest::parse(&GOOD.replace("manifest_version = 1", "manifest_version = 9"));
        assert!(e.unwrap_err().to_string().contains("manifest_version 9"));
        let e = Manifest::parse(&GOOD.replace("acme.sms", "Acme SMS"));
        assert!(e.unwrap_err().to_string().contains("lowercase"));
        let e = Manifest::parse(&GOOD.replace("libacme_sms.so", "../evil.so"));
        assert!(e.unwrap_err().to_string().contains("beside the manifest"));
        let e = Manifest::parse(&GOOD.replace("\"1.2.0\"", "\"one\""));
        assert!(e.unwrap_err().to_string().contains("version"));
    }
}
