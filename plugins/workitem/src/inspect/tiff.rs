//! Fax images (multi-page TIFF, CCITT G3/G4) through libtiff's `tiffinfo` for pages, compression,
//! resolution and sender, and `tesseract` for their text. Nothing here decodes TIFF bytes itself.

use super::Inspection;
use crate::settings::Settings;
use crate::tools::{TESSERACT, TIFFINFO, ToolError};
use std::collections::BTreeSet;
use std::path::Path;

/// Compressions libtiff (and so tesseract and tiff2pdf) decodes; anything else is flagged.
const DECODABLE: [&str; 9] = [
    "None",
    "CCITT modified Huffman RLE",
    "CCITT Group 3",
    "CCITT Group 4",
    "LZW",
    "PackBits",
    "Deflate",
    "AdobeDeflate",
    "JPEG",
];

/// What `tiffinfo` says about a TIFF file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TiffFacts {
    /// Directories (pages).
    pub pages: u32,
    /// Compression of each page, as tiffinfo names it.
    pub compressions: Vec<String>,
    /// Resolution of the first page, as written ("204, 196 pixels/inch").
    pub resolution: Option<String>,
    /// The sender: ImageDescription (fax servers put the station id there), else Artist.
    pub sender: Option<String>,
}

/// Reads tiffinfo's report.
pub fn parse_tiffinfo(report: &str) -> TiffFacts {
    let mut facts = TiffFacts::default();
    let (mut description, mut artist) = (None, None);
    for line in report.lines() {
        let line = line.trim();
        if line.starts_with("TIFF Directory at offset") {
            facts.pages += 1;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        let first_page = facts.pages == 1;
        match key {
            "Compression Scheme" => facts.compressions.push(value),
            "Resolution" if first_page => facts.resolution = Some(value),
            "ImageDescription" if first_page && !value.is_empty() => description = Some(value),
            "Artist" if first_page && !value.is_empty() => artist = Some(value),
            _ => {}
        }
    }
    facts.sender = description.or(artist);
    facts
}

/// Fills `inspection` from the TIFF at `path`.
pub fn inspect(path: &Path, settings: &Settings, inspection: &mut Inspection) {
    let tools = settings.toolbox();
    let report = match tools.run(TIFFINFO, &[path.as_os_str()]) {
        Ok(out) => String::from_utf8_lossy(&out).into_owned(),
        Err(e @ ToolError::Missing { .. }) => {
            inspection.text_source = format!("no text: {e}");
            return;
        }
        Err(e) => {
            inspection
                .problems
                .push(format!("damaged TIFF: it cannot be read ({e})"));
            inspection.text_source = "no text: the TIFF cannot be read".into();
            return;
        }
    };
    let facts = parse_tiffinfo(&report);
    if facts.pages == 0 {
        inspection
            .problems
            .push("damaged TIFF: it has no readable page".into());
        inspection.text_source = "no text: the TIFF cannot be read".into();
        return;
    }
    inspection.pages = Some(facts.pages);
    inspection.field("pages", "Pages", facts.pages.to_string());
    let distinct: BTreeSet<&str> = facts.compressions.iter().map(String::as_str).collect();
    inspection.field(
        "compression",
        "Compression",
        distinct.iter().copied().collect::<Vec<_>>().join(", "),
    );
    if let Some(resolution) = &facts.resolution {
        inspection.field("resolution", "Resolution", resolution.clone());
    }
    if let Some(sender) = &facts.sender {
        inspection.field("sender", "Sender", sender.clone());
        inspection.sender = Some(sender.clone());
    }
    let unknown: Vec<&str> = distinct
        .iter()
        .copied()
        .filter(|c| !DECODABLE.contains(c))
        .collect();
    if !unknown.is_empty() {
        inspection.problems.push(format!(
            "TIFF with an unsupported compression ({}): it cannot be decoded",
            unknown.join(", ")
        ));
        inspection.text_source = "no text: the compression is not supported".into();
        return;
    }
    if !settings.ocr {
        inspection.text_source = "no text: OCR is turned off in the settings".into();
        return;
    }
    let args = [
        path.as_os_str(),
        "stdout".as_ref(),
        "-l".as_ref(),
        settings.ocr_language.as_ref(),
    ];
    match tools.run(TESSERACT, &args) {
        Ok(out) => {
            inspection.text = String::from_utf8_lossy(&out).trim().to_string();
            inspection.text_source =
                "recognised by OCR (tesseract); check it against the image".into();
        }
        Err(e @ ToolError::Missing { .. }) => {
            inspection.text_source = format!("no text: faxes are made searchable by OCR, but {e}");
        }
        Err(e) => inspection.text_source = format!("no text: OCR failed ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "=== TIFF directory 0 ===\nTIFF Directory at offset 0x8 (8)\n  \
        Resolution: 204, 196 pixels/inch\n  Compression Scheme: CCITT Group 3\n  \
        ImageDescription: +1 555 0100 ACME\n\n=== TIFF directory 1 ===\n\
        TIFF Directory at offset 0x2fee (12270)\n  Resolution: 204, 98 pixels/inch\n  \
        Compression Scheme: 12345 (0x3039)\n  ImageDescription: other\n";

    #[test]
    fn tiffinfo_gives_pages_compressions_resolution_and_sender_of_the_first_page() {
        let facts = parse_tiffinfo(REPORT);
        assert_eq!(facts.pages, 2);
        assert_eq!(
            facts.compressions,
            vec!["CCITT Group 3".to_string(), "12345 (0x3039)".to_string()]
        );
        assert_eq!(facts.resolution.as_deref(), Some("204, 196 pixels/inch"));
        assert_eq!(facts.sender.as_deref(), Some("+1 555 0100 ACME"));
    }
}
