//! Page previews as PNG files, rendered by poppler's `pdftoppm` (a TIFF is first wrapped as a PDF
//! by libtiff's `tiff2pdf`, which keeps G3/G4 data as it is). Holds no decoding of its own.

use crate::inspect::Format;
use crate::settings::Settings;
use crate::tools::{PDFTOPPM, TIFF2PDF};
use std::path::{Path, PathBuf};

/// Renders the first pages of `document` into `out_dir` (`page-1.png`, ...). Returns the
/// previews in page order, or a sentence saying why there are none.
pub fn render(
    document: &Path,
    format: Format,
    out_dir: &Path,
    settings: &Settings,
) -> Result<Vec<PathBuf>, String> {
    if settings.preview_pages == 0 {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("no preview: cannot create {}: {e}", out_dir.display()))?;
    let tools = settings.toolbox();
    let wrapped = out_dir.join("document.pdf");
    let pdf = match format {
        Format::Pdf => document.to_path_buf(),
        Format::Tiff => {
            tools
                .run(
                    TIFF2PDF,
                    &["-o".as_ref(), wrapped.as_os_str(), document.as_os_str()],
                )
                .map_err(|e| format!("no preview: {e}"))?;
            wrapped.clone()
        }
        Format::Unknown => return Err("no preview: the format is not supported".into()),
    };
    let (dpi, last) = (
        settings.preview_dpi.to_string(),
        settings.preview_pages.to_string(),
    );
    let prefix = out_dir.join("page");
    let result = tools.run(
        PDFTOPPM,
        &[
            "-png".as_ref(),
            "-r".as_ref(),
            dpi.as_ref(),
            "-f".as_ref(),
            "1".as_ref(),
            "-l".as_ref(),
            last.as_ref(),
            pdf.as_os_str(),
            prefix.as_os_str(),
        ],
    );
    let _ = std::fs::remove_file(&wrapped);
    result.map_err(|e| format!("no preview: {e}"))?;
    let mut pages: Vec<(u32, PathBuf)> = std::fs::read_dir(out_dir)
        .map_err(|e| format!("no preview: {e}"))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let number = name
                .strip_prefix("page-")?
                .strip_suffix(".png")?
                .parse()
                .ok()?;
            Some((number, path))
        })
        .collect();
    pages.sort();
    if pages.is_empty() {
        return Err("no preview: the renderer produced no page".into());
    }
    Ok(pages.into_iter().map(|(_, path)| path).collect())
}
