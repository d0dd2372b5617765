//! PDF documents through poppler-utils: `pdfinfo` for title, author, pages and encryption,
//! `pdftotext` for the text. Nothing here parses PDF bytes itself.

use super::Inspection;
use crate::settings::Settings;
use crate::tools::{PDFINFO, PDFTOTEXT, ToolError};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Fills `inspection` from the PDF at `path`.
pub fn inspect(path: &Path, settings: &Settings, inspection: &mut Inspection) {
    let tools = settings.toolbox();
    let file = path.as_os_str();
    if !ends_with_eof_marker(path) {
        inspection
            .problems
            .push("truncated or damaged PDF: it does not end with %%EOF".into());
    }
    let info = match tools.run(PDFINFO, &["-enc".as_ref(), "UTF-8".as_ref(), file]) {
        Ok(out) => String::from_utf8_lossy(&out).into_owned(),
        Err(ToolError::Failed { stderr, .. }) if stderr.contains("Incorrect password") => {
            inspection
                .problems
                .push("encrypted PDF: it needs a password to open".into());
            inspection.text_source = "no text: the PDF is encrypted".into();
            return;
        }
        Err(e @ ToolError::Missing { .. }) => {
            inspection.text_source = format!("no text: {e}");
            return;
        }
        Err(e) => {
            if inspection.problems.is_empty() {
                inspection
                    .problems
                    .push(format!("damaged PDF: it cannot be read ({e})"));
            }
            inspection.text_source = "no text: the PDF cannot be read".into();
            return;
        }
    };
    for line in info.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Title" => {
                inspection.field("title", "Title", value);
                inspection.title = Some(value.to_string()).filter(|t| !t.is_empty());
            }
            "Author" => inspection.field("author", "Author", value),
            "Pages" => {
                inspection.pages = value.parse().ok();
                inspection.field("pages", "Pages", value);
            }
            "Page size" => inspection.field("page_size", "Page size", value),
            "Encrypted" if value.starts_with("yes") => inspection.field(
                "encrypted",
                "Encrypted",
                "yes (readable without a password)",
            ),
            _ => {}
        }
    }
    match tools.run(
        PDFTOTEXT,
        &["-enc".as_ref(), "UTF-8".as_ref(), file, "-".as_ref()],
    ) {
        Ok(out) => {
            inspection.text = String::from_utf8_lossy(&out).trim().to_string();
            inspection.text_source = if inspection.text.is_empty() {
                "no text: the PDF has no text layer (a scan?)".into()
            } else {
                "text of the PDF".into()
            };
        }
        Err(e) => inspection.text_source = format!("no text: {e}"),
    }
}

/// Whether `%%EOF` is in the last kilobyte (a PDF cut short while copying lacks it).
fn ends_with_eof_marker(path: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = file.seek(SeekFrom::End(0)) else {
        return false;
    };
    let start = len.saturating_sub(1024);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start)).is_ok()
        && file.read_to_end(&mut tail).is_ok()
        && tail.windows(5).any(|w| w == b"%%EOF")
}
