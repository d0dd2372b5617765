//! The admin's policy and integrity checks, decided from the manifest alone, before any library
//! is opened: allowlist, version requirement, plugin-api major, sha256 (manifest and admin pin).

use super::manifest::{Manifest, sha256_file};
use crate::config::AdminConfig;
use std::path::Path;

/// Checks whether a plugin may be opened. The error is the refusal reason in plain words.
pub fn admit(
    manifest: &Manifest,
    manifest_path: &Path,
    config: &AdminConfig,
    host_api: &semver::Version,
) -> Result<(), String> {
    let Some(rule) = config.plugins.allow.get(&manifest.id) else {
        return Err(format!(
            "not on the admin's allowlist: add [plugins.allow.\"{}\"] to the configuration to allow it",
            manifest.id
        ));
    };
    if !rule.version.matches(&manifest.version) {
        return Err(format!(
            "version {} does not satisfy the admin's requirement `{}`",
            manifest.version, rule.version
        ));
    }
    if manifest.api_version.major != host_api.major {
        return Err(format!(
            "built against plugin-api {}, but this host speaks plugin-api {}.x ({host_api})",
            manifest.api_version, host_api.major
        ));
    }
    let library = manifest.library_path(manifest_path);
    let actual = sha256_file(&library)
        .map_err(|e| format!("cannot read its library {}: {e}", library.display()))?;
    if !actual.eq_ignore_ascii_case(&manifest.sha256) {
        return Err(format!(
            "the library does not match its manifest (sha256 {actual}, manifest says {}): \
             it was changed or damaged after packaging",
            manifest.sha256
        ));
    }
    if let Some(pin) = &rule.sha256
        && !pin.eq_ignore_ascii_case(&actual)
    {
        return Err(format!(
            "sha256 {actual} does not match the admin's pin {pin} (plugins.allow.\"{}\".sha256)",
            manifest.id
        ));
    }
    Ok(())
}

/// The first of the plugin's channels that some agent of this host has, if any.
pub fn assigned_channel<'a>(channels: &'a [String], config: &AdminConfig) -> Option<&'a str> {
    channels
        .iter()
        .map(String::as_str)
        .find(|c| config.channel_assigned(c))
}
