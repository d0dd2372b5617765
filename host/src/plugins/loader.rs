//! Opening a plugin library through abi_stable and turning its refusals into plain words.
//! The only module that opens libraries; callers decide *whether* to open one (policy first).

use abi_stable::library::{LibraryError, RootModule, lib_header_from_path};
use plugin_api::{Message, PluginDescriptor, PluginRoot_Ref};
use std::path::Path;

/// A library that abi_stable refused, or whose root module failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{summary}")]
pub struct LoadError {
    /// The decisive lines, for the admin.
    pub summary: String,
    /// abi_stable's full report, for the log.
    pub full: String,
}

/// Opens the library (it stays loaded for the life of the process) and checks its plugin-api
/// major version and the recursive layout of every type in the ABI.
pub fn open(path: &Path) -> Result<PluginRoot_Ref, LoadError> {
    check_library_file(path).map_err(|summary| LoadError {
        full: summary.clone(),
        summary,
    })?;
    lib_header_from_path(path)
        .and_then(|header| header.init_root_module::<PluginRoot_Ref>())
        .map_err(|e| LoadError {
            summary: summarize(&e),
            full: e.to_string(),
        })
}

/// Calls the library's `describe` and decodes the answer.
pub fn describe(root: PluginRoot_Ref) -> Result<PluginDescriptor, String> {
    let envelope = (root.describe())()
        .into_result()
        .map_err(|e| format!("describe failed: {e}"))?;
    PluginDescriptor::from_envelope(&envelope).map_err(|e| format!("describe answered badly: {e}"))
}

/// The lines of abi_stable's error that decide the matter, in plain words.
pub fn summarize(error: &LibraryError) -> String {
    match error {
        LibraryError::OpenError { err, .. } => {
            format!("the file is not a loadable shared library ({err})")
        }
        LibraryError::GetSymbolError { .. } => {
            "the library is not an agentdesk plugin: it exports no abi_stable root module".into()
        }
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => {
            format!(
                "built against plugin-api {actual_version}, but this host speaks plugin-api {}.x \
                 ({expected_version}); rebuild the plugin against plugin-api {}",
                expected_version.major, expected_version.major
            )
        }
        LibraryError::ParseVersionError(e) => format!("unreadable plugin-api version: {e}"),
        LibraryError::RootModule { err, .. } => format!("the plugin's root module failed: {err}"),
        LibraryError::AbiInstability(report) => {
            format!(
                "incompatible ABI layout: {}",
                decisive_lines(&report.to_string())
            )
        }
        LibraryError::InvalidAbiHeader(_) => {
            format!(
                "built with an incompatible abi_stable; plugins must use abi_stable {}",
                ABI_STABLE_REQUIREMENT
            )
        }
        LibraryError::InvalidCAbi { .. } => {
            "built by a compiler whose C ABI differs from the host's".into()
        }
        LibraryError::Many(errors) => errors.iter().map(summarize).collect::<Vec<_>>().join("; "),
    }
}

/// The abi_stable version plugins must pin (the host's).
pub const ABI_STABLE_REQUIREMENT: &str = "=0.11.3";

/// Picks what decides a layout-mismatch report of hundreds of lines: each error with its expected
/// and found values, most specific first, and the chain of plugin-api types that leads to it, e.g.
/// `mismatched type / Expected: u8 / Found: u16 (in PluginRoot > HostServices_TO > LogLevel)`.
pub fn decisive_lines(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let mut errors: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(what) = line.strip_prefix("Error:") else {
            continue;
        };
        let expected = value_after(&lines, i, "Expected:");
        let found = value_after(&lines, i, "Found:");
        let entry = format!("{} / Expected: {expected} / Found: {found}", what.trim());
        if !errors.contains(&entry) {
            errors.push(entry);
        }
    }
    if errors.is_empty() {
        return lines
            .iter()
            .find(|l| !l.is_empty())
            .unwrap_or(&"no details")
            .to_string();
    }
    // Size and alignment differences follow from the real difference; show that first.
    errors.sort_by_key(|e| {
        e.starts_with("incompatible type size") || e.starts_with("incompatible type alignment")
    });
    errors.truncate(2);
    let path = mismatch_path(&lines);
    let mut summary = errors.join("; ");
    if !path.is_empty() {
        summary.push_str(&format!(" (in {})", path.join(" > ")));
    }
    summary
}

/// The value of `label` in the few lines after `from`: on the same line, or on the next non-empty.
fn value_after(lines: &[&str], from: usize, label: &str) -> String {
    let window = lines.iter().enumerate().skip(from + 1).take(8);
    for (i, line) in window {
        if line.starts_with("Error:") {
            break;
        }
        if let Some(rest) = line.strip_prefix(label) {
            if !rest.trim().is_empty() {
                return rest.trim().to_string();
            }
            return lines
                .iter()
                .skip(i + 1)
                .find(|l| !l.is_empty())
                .unwrap_or(&"?")
                .to_string();
        }
    }
    "?".into()
}

/// The plugin-api types on the way to the last reported mismatch.
fn mismatch_path(lines: &[&str]) -> Vec<String> {
    let Some(start) = lines.iter().rposition(|l| l.contains("error(s)inside:")) else {
        return Vec::new();
    };
    let mut path: Vec<String> = Vec::new();
    let block = &lines[start..];
    for (i, line) in block.iter().enumerate() {
        if line.starts_with("Layout of expected type:") {
            break;
        }
        let Some(ty) = line.strip_prefix("type:") else {
            continue;
        };
        let ours = block
            .iter()
            .skip(i + 1)
            .take(3)
            .any(|l| l.contains("package:'plugin-api'"));
        if ours && path.last().map(String::as_str) != Some(ty) {
            path.push(ty.to_string());
        }
    }
    path
}

/// Checks that a file is a complete ELF shared object before it is opened. dlopen maps segments
/// without checking that the file holds them: a truncated library can load and then crash the
/// whole process (SIGBUS) when code touches a page past the end of the file.
pub fn check_library_file(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the library: {e}"))?;
    check_elf(&bytes)
}

fn check_elf(bytes: &[u8]) -> Result<(), String> {
    let truncated = |what: &str| {
        Err(format!(
            "the file is not a loadable shared library: it is truncated or damaged ({what} lies \
             past the end of its {} bytes)",
            bytes.len()
        ))
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("the file is not a loadable shared library (no ELF header)".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(
            "the file is not a 64-bit little-endian ELF library, as this host needs".into(),
        );
    }
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u64)
    };
    let u64_at = |at: u64| {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    };
    let len = bytes.len() as u64;
    if u16_at(16) != Some(3) {
        return Err("the file is an ELF file but not a shared library".into());
    }
    let (Some(phoff), Some(shoff)) = (u64_at(32), u64_at(40)) else {
        return truncated("the header");
    };
    let (Some(phentsize), Some(phnum), Some(shentsize), Some(shnum)) =
        (u16_at(54), u16_at(56), u16_at(58), u16_at(60))
    else {
        return truncated("the header");
    };
    let within = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    if !within(phoff, phentsize * phnum) {
        return truncated("the program header table");
    }
    for n in 0..phnum {
        let entry = phoff + n * phentsize;
        let (Some(offset), Some(filesz)) = (u64_at(entry + 8), u64_at(entry + 32)) else {
            return truncated("a program header");
        };
        if !within(offset, filesz) {
            return truncated("a loadable segment");
        }
    }
    if shnum > 0 {
        if !within(shoff, shentsize * shnum) {
            return truncated("the section header table");
        }
        for n in 0..shnum {
            let entry = shoff + n * shentsize;
            let kind = bytes.get(entry as usize + 4).copied();
            let (Some(offset), Some(size)) = (u64_at(entry + 24), u64_at(entry + 32)) else {
                return truncated("a section header");
            };
            const SHT_NOBITS: u8 = 8;
            if kind != Some(SHT_NOBITS) && !within(offset, size) {
                return truncated("a section");
            }
        }
    }
    Ok(())
}

/// The plugin-api version this host was built against.
pub fn host_api_version() -> semver::Version {
    let strings = <PluginRoot_Ref as RootModule>::VERSION_STRINGS;
    semver::Version::parse(strings.version.as_str())
        .unwrap_or_else(|_| semver::Version::new(1, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_check_refuses_garbage_and_truncation_but_accepts_a_real_library() {
        assert!(check_elf(b"hello").unwrap_err().contains("no ELF header"));
        // This test binary's own dependencies include a real shared library: libc.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        let Some(libc) = libc else { return };
        let bytes = std::fs::read(libc).expect("libc");
        assert_eq!(check_elf(&bytes), Ok(()));
        let err = check_elf(&bytes[..bytes.len() - 100]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn decisive_lines_name_the_mismatch_and_where_it_is() {
        let report = "Error:incompatible type size\nExpected:\n    1\nFound:\n    2\n\n\
            1 error(s)inside:\n    <other>\n    field_name:0\n    type:PluginRoot\n    size:16 align:8\n\
            package:'plugin-api' version:'1.0.0'\n    field_name:param_1\n    type:LogLevel\n\
            size:2 align:2\n    package:'plugin-api' version:'1.0.0'\nLayout of expected type:\n\
            Error:mismatched type\nExpected:\n    u8\nFound:\n    u16\n";
        assert_eq!(
            decisive_lines(report),
            "mismatched type / Expected: u8 / Found: u16; incompatible type size / Expected: 1 / \
             Found: 2 (in PluginRoot > LogLevel)"
        );
        assert_eq!(
            decisive_lines("Error:too many fields\nExpected: 3\nFound: 2\n"),
            "too many fields / Expected: 3 / Found: 2"
        );
    }
}
