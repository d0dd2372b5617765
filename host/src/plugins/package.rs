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
    };
    let manifest_path = out_dir.join(format!("{}{MANIFEST_SUFFIX}", descriptor.id));
    std::fs::write(&manifest_path, manifest.to_toml()).map_err(io(&manifest_path))?;
    Ok(manifest_path)
}
