//! Outside programs (poppler-utils, libtiff-tools, tesseract) found on `PATH` at run time and run
//! as subprocesses with a deadline, so a hang or a crash on a hostile file cannot stop the channel.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Output beyond this is dropped (a tool's output never grows without bound in memory).
const MAX_OUTPUT: u64 = 16 * 1024 * 1024;

/// Why a tool run gave no usable result.
#[derive(Debug, Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error("`{tool}` is not installed (Debian package {package})")]
    Missing {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// It could not be started.
    #[error("cannot run `{tool}`: {source}")]
    Spawn {
        /// The program.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// It ran past its deadline and was killed.
    #[error("`{tool}` did not finish within {secs:.1} s and was stopped")]
    Timeout {
        /// The program.
        tool: &'static str,
        /// The deadline.
        secs: f64,
    },
    /// It exited with a failure status.
    #[error("`{tool}` failed ({status}): {stderr}")]
    Failed {
        /// The program.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// The last lines it wrote to standard error.
        stderr: String,
    },
}

/// A program and the Debian package it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The program name.
    pub name: &'static str,
    /// The Debian package.
    pub package: &'static str,
}

/// `pdfinfo` (metadata, page count, encryption).
pub const PDFINFO: Tool = Tool {
    name: "pdfinfo",
    package: "poppler-utils",
};
/// `pdftotext` (text of a PDF).
pub const PDFTOTEXT: Tool = Tool {
    name: "pdftotext",
    package: "poppler-utils",
};
/// `pdftoppm` (page previews).
pub const PDFTOPPM: Tool = Tool {
    name: "pdftoppm",
    package: "poppler-utils",
};
/// `tiffinfo` (pages, compression, resolution, tags).
pub const TIFFINFO: Tool = Tool {
    name: "tiffinfo",
    package: "libtiff-tools",
};
/// `tiff2pdf` (a TIFF as PDF, so poppler renders its previews).
pub const TIFF2PDF: Tool = Tool {
    name: "tiff2pdf",
    package: "libtiff-tools",
};
/// `tesseract` (OCR of faxes).
pub const TESSERACT: Tool = Tool {
    name: "tesseract",
    package: "tesseract-ocr",
};

/// Where tools are looked for and how long each run may take.
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// Directories searched, or `None` for `PATH`.
    pub dirs: Option<Vec<PathBuf>>,
    /// The deadline of one run.
    pub timeout: Duration,
}

impl Toolbox {
    /// The program's path, if installed.
    pub fn find(&self, tool: Tool) -> Option<PathBuf> {
        let dirs: Vec<PathBuf> = match &self.dirs {
            Some(dirs) => dirs.clone(),
            None => std::env::split_paths(&std::env::var_os("PATH")?).collect(),
        };
        dirs.iter()
            .map(|dir| dir.join(tool.name))
            .find(|candidate| is_executable(candidate))
    }

    /// Runs `tool` with `args` and returns its standard output, or why not.
    pub fn run(&self, tool: Tool, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, ToolError> {
        let program = self.find(tool).ok_or(ToolError::Missing {
            tool: tool.name,
            package: tool.package,
        })?;
        tool.run_program(&program, args, self.timeout)
    }
}

impl Tool {
    fn run_program(
        self,
        program: &Path,
        args: &[&std::ffi::OsStr],
        timeout: Duration,
    ) -> Result<Vec<u8>, ToolError> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("OMP_THREAD_LIMIT", "1")
            .spawn()
            .map_err(|source| ToolError::Spawn {
                tool: self.name,
                source,
            })?;
        // Both pipes are drained on their own threads: a chatty tool must not block on a full
        // pipe while we wait for it to exit.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        let Some(status) = status else {
            // The drain threads are left to end on their own: a child the tool started may still
            // hold the pipes open, and waiting for it would be the hang the deadline is for.
            return Err(ToolError::Timeout {
                tool: self.name,
                secs: timeout.as_secs_f64(),
            });
        };
        let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            Err(ToolError::Failed {
                tool: self.name,
                status: status.to_string(),
                stderr: last_lines(&stderr),
            })
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut pipe).take(MAX_OUTPUT).read_to_end(&mut out);
        // Keep reading past the cap so the tool is never blocked on a full pipe.
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        out
    })
}

fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join(" / ")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolbox(ms: u64) -> Toolbox {
        Toolbox {
            dirs: None,
            timeout: Duration::from_millis(ms),
        }
    }

    const SLEEP: Tool = Tool {
        name: "sleep",
        package: "coreutils",
    };
    const FALSE: Tool = Tool {
        name: "false",
        package: "coreutils",
    };

    #[test]
    fn a_tool_that_hangs_is_stopped_at_its_deadline() {
        let started = Instant::now();
        let result = toolbox(200).run(SLEEP, &["30".as_ref()]);
        assert!(
            matches!(result, Err(ToolError::Timeout { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_failing_tool_and_a_missing_tool_are_errors_that_say_so() {
        assert!(matches!(
            toolbox(5000).run(FALSE, &[]),
            Err(ToolError::Failed { .. })
        ));
        let missing = Tool {
            name: "no-such-tool-agentdesk",
            package: "nothing",
        };
        let error = toolbox(1000).run(missing, &[]).expect_err("missing");
        assert!(error.to_string().contains("not installed"), "{error}");
    }
}
