//! `agentdesk package`: writes the manifest for a built plugin library (id, versions, channels and
//! the library's sha256, taken from the library itself) and copies the library beside it.

use super::loader;
use super::manifest::{MANIFEST_SUFFIX, MANIFEST_VERSION, Manifest, sha256_file};
use std::path::{Path, PathBuf};

/// Why a library could not be packaged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The library could not be opened as a plugin of this host's plugin-api major.
    #[error("{path}: {source}")]
    Load {
        /// The library.
        path: PathBuf,
        /// abi_stable's refusal.
        source: loader::LoadError,
    },
    /// The library's `describe` failed or answered nonsense.
    #[error("{path}: {message}")]
    Describe {
        /// The library.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The settings schema is not a JSON object.
    #[error("{path}: not a settings schema: {message}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Reading or writing files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Packages `library` into `out_dir`: copies it there (unless it is already there) and writes
/// `<id>.plugin.toml`. Returns the manifest path.
pub fn package(library: &Path, out_dir: &Path) -> Result<PathBuf, PackageError> {
    package_with_schema(library, out_dir, None)
}

/// [`package`], with the plugin's settings schema (a JSON Schema file) in the manifest.
pub fn package_with_schema(
    library: &Path,
    out_dir: &Path,
    settings_schema: Option<&Path>,
) -> Result<PathBuf, PackageError> {
    let settings_schema = match settings_schema {
        Some(path) => Some(read_schema(path)?),
        None => None,
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackageError::Io { path, source }
    };
    let root = loader::open(library).map_err(|source| PackageError::Load {
        path: library.to_path_buf(),
        source,
    })?;
    let descriptor = loader::describe(root).map_err(|message| PackageError::Describe {
        path: library.to_path_buf(),
        message,
    })?;
    let describe_error = |message: String| PackageError::Describe {
        path: library.into(),
        message,
    };
    let version = semver::Version::parse(&descriptor.version)
        .map_err(|e| describe_error(format!("version `{}`: {e}", descriptor.version)))?;
    let api_version = semver::Version::parse(&descriptor.api_version)
        .map_err(|e| describe_error(format!("api_version `{}`: {e}", descriptor.api_version)))?;
    if !super::manifest::valid_id(&descriptor.id) {
        return Err(describe_error(format!(
            "id `{}` is not a valid plugin id",
            descriptor.id
        )));
    }
    let file_name = library
        .file_name()
        .ok_or_else(|| describe_error("the library path has no file name".into()))?;
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let target = out_dir.join(file_name);
    let same_file = match (library.canonicalize(), target.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_file {
        // Copy to a temporary name and rename, so a running host never sees half a library.
        let tmp = out_dir.join(format!(".{}.tmp", file_name.to_string_lossy()));
        std::fs::copy(library, &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
    }
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        id: descriptor.id.clone(),
        name: descriptor.name,
        vendor: descriptor.vendor,
        version,
        api_version,
        channels: descriptor.channels.into_iter().map(|c| c.0).collect(),
        library: file_name.to_string_lossy().into_owned(),
        sha256: sha256_file(&target).map_err(io(&target))?,
        description: descriptor.description,
        settings_schema,
    };
    let manifest_path = out_dir.join(format!("{}{MANIFEST_SUFFIX}", descriptor.id));
    std::fs::write(&manifest_path, manifest.to_toml()).map_err(io(&manifest_path))?;
    Ok(manifest_path)
}

/// A settings schema file: JSON, an object whose `type` (if given) is `object`. Kept as written.
fn read_schema(path: &Path) -> Result<String, PackageError> {
    let text = std::fs::read_to_string(path).map_err(|source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let schema = |message: String| PackageError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| schema(format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| schema("a schema is a JSON object".into()))?;
    if object
        .get("type")
        .is_some_and(|t| t != &serde_json::Value::from("object"))
    {
        return Err(schema(
            "the settings are a table: `type` must be \"object\"".into(),
        ));
    }
    Ok(text)
}
