//! What a document is (by its bytes, not its name) and what can be read from it: metadata, text,
//! and the problems an agent must know about. The decoding itself happens in outside tools.

pub mod pdf;
pub mod tiff;

use crate::settings::Settings;
use std::path::Path;

/// The formats the channel understands, decided from the first bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PDF document (`%PDF-`).
    Pdf,
    /// A TIFF image, usually a fax (`II*\0` or `MM\0*`).
    Tiff,
    /// Anything else.
    Unknown,
}

impl Format {
    /// The format the bytes say.
    pub fn sniff(head: &[u8]) -> Format {
        // PDF readers accept the header anywhere in the first kilobyte.
        let window = &head[..head.len().min(1024)];
        if window.windows(5).any(|w| w == b"%PDF-") {
            Format::Pdf
        } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            Format::Tiff
        } else {
            Format::Unknown
        }
    }

    /// The format a file name claims, by its extension.
    pub fn claimed_by(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pdf" => Some(Format::Pdf),
            "tif" | "tiff" | "fax" => Some(Format::Tiff),
            _ => None,
        }
    }

    /// The words an agent reads.
    pub fn label(self) -> &'static str {
        match self {
            Format::Pdf => "PDF document",
            Format::Tiff => "fax (TIFF image)",
            Format::Unknown => "unknown",
        }
    }

    /// The content type of the original file.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Tiff => "image/tiff",
            Format::Unknown => "application/octet-stream",
        }
    }
}

/// What was learnt about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The format of its content.
    pub format: Format,
    /// Metadata as (key, label, value), in the order an agent reads them.
    pub metadata: Vec<(String, String, String)>,
    /// The document's title, if it has one.
    pub title: Option<String>,
    /// Who sent it (a fax's station id), if known.
    pub sender: Option<String>,
    /// Number of pages.
    pub pages: Option<u32>,
    /// Its text (extracted or recognised); may be empty.
    pub text: String,
    /// Where the text came from, or why there is none.
    pub text_source: String,
    /// Reasons an agent must look at the file itself; empty for a good file.
    pub problems: Vec<String>,
}

impl Inspection {
    fn new(format: Format) -> Self {
        Inspection {
            format,
            metadata: Vec::new(),
            title: None,
            sender: None,
            pages: None,
            text: String::new(),
            text_source: String::new(),
            problems: Vec::new(),
        }
    }

    /// Adds a metadata field.
    pub fn field(&mut self, key: &str, label: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() {
            self.metadata
                .push((key.to_string(), label.to_string(), value.trim().to_string()));
        }
    }

    /// Keeps at most `max` bytes of text (on a character boundary) and says so when it cuts.
    fn cap_text(&mut self, max: usize) {
        if self.text.len() > max {
            let mut cut = max;
            while !self.text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.truncate(cut);
            self.text_source
                .push_str(&format!(" (cut after {max} bytes; the file has more)"));
        }
    }
}

/// Inspects the document at `path`, whose first bytes are `head` and length `len`.
pub fn inspect(path: &Path, head: &[u8], len: u64, settings: &Settings) -> Inspection {
    let format = Format::sniff(head);
    let mut inspection = Inspection::new(format);
    inspection.field("format", "Format", format.label());
    if len == 0 {
        inspection
            .problems
            .push("the file is empty (0 bytes)".into());
        inspection.text_source = "no text: the file is empty".into();
        return inspection;
    }
    let claimed = Format::claimed_by(path);
    match (format, claimed) {
        (Format::Unknown, _) => {
            inspection.problems.push(format!(
                "not a PDF or TIFF file: its content {}",
                describe_content(head)
            ));
            inspection.text_source = "no text: the format is not supported".into();
            return inspection;
        }
        (actual, Some(claimed)) if actual != claimed => {
            inspection.problems.push(format!(
                "the name says {} but the content is a {}; read as what it is",
                claimed.label(),
                actual.label()
            ));
        }
        _ => {}
    }
    match format {
        Format::Pdf => pdf::inspect(path, settings, &mut inspection),
        Format::Tiff => tiff::inspect(path, settings, &mut inspection),
        Format::Unknown => {}
    }
    inspection.cap_text(settings.max_text_bytes);
    inspection
}

/// A few words on what unknown content looks like, for the agent.
fn describe_content(head: &[u8]) -> String {
    let known: [(&[u8], &str); 6] = [
        (b"\x89PNG", "is a PNG image"),
        (b"\xff\xd8\xff", "is a JPEG image"),
        (b"GIF8", "is a GIF image"),
        (b"PK\x03\x04", "is a ZIP archive (or an Office document)"),
        (b"{\\rtf", "is an RTF document"),
        (b"\xd0\xcf\x11\xe0", "is an old Office document"),
    ];
    if let Some((_, what)) = known.iter().find(|(magic, _)| head.starts_with(magic)) {
        return (*what).to_string();
    }
    if std::str::from_utf8(head).is_ok() {
        "looks like plain text".into()
    } else {
        "is not a known format".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_bytes_not_the_name() {
        assert_eq!(Format::sniff(b"%PDF-1.7\n"), Format::Pdf);
        assert_eq!(Format::sniff(b"II*\0\x08\0\0\0"), Format::Tiff);
        assert_eq!(Format::sniff(b"MM\0*\0\0\0\x08"), Format::Tiff);
        assert_eq!(Format::sniff(b"hello"), Format::Unknown);
        assert_eq!(
            Format::claimed_by(Path::new("/in/FAX.TIF")),
            Some(Format::Tiff)
        );
        assert_eq!(Format::claimed_by(Path::new("/in/a.txt")), None);
    }

    #[test]
    fn a_text_file_named_pdf_is_flagged_with_what_it_is() {
        let settings = Settings::default();
        let inspection = inspect(Path::new("/x/invoice.pdf"), b"Dear Sir", 8, &settings);
        assert_eq!(inspection.format, Format::Unknown);
        assert_eq!(
            inspection.problems,
            vec!["not a PDF or TIFF file: its content looks like plain text".to_string()]
        );
    }

    #[test]
    fn an_empty_file_is_flagged_as_empty() {
        let inspection = inspect(Path::new("/x/a.pdf"), b"", 0, &Settings::default());
        assert_eq!(inspection.problems, vec!["the file is empty (0 bytes)"]);
    }

    #[test]
    fn text_is_cut_on_a_character_boundary_and_the_cut_is_said() {
        let mut inspection = Inspection::new(Format::Pdf);
        inspection.text = "ééé".into();
        inspection.cap_text(3);
        assert_eq!(inspection.text, "é");
        assert!(inspection.text_source.contains("cut after 3 bytes"));
    }
}
