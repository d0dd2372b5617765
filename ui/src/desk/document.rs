//! A document (workitem: a PDF, a fax): its text, its files, and page previews. The channel sends
//! the document as a message whose attachments are the original file and one PNG per previewed
//! page, by path relative to the plugin's data directory.

use super::{Desk, DeskInfo};
use agentdesk_host::service::InteractionView;
use eframe::egui;
use plugin_api::AttachmentRef;
use std::path::PathBuf;

/// Page previews decoded so far, by file (a failed decode is remembered with its reason).
#[derive(Default)]
pub(super) struct Previews {
    loaded: std::collections::BTreeMap<PathBuf, Result<egui::TextureHandle, String>>,
}

impl std::fmt::Debug for Previews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previews")
            .field("loaded", &self.loaded.len())
            .finish()
    }
}

impl DeskInfo {
    /// Where a plugin's attachment is: its path joined onto the plugin's data directory
    /// (an absolute path stays as it is).
    pub fn attachment_path(&self, plugin: &str, attachment: &AttachmentRef) -> Option<PathBuf> {
        let root = self.data_dir.as_ref()?.join("plugins").join(plugin);
        Some(root.join(&attachment.path))
    }
}

impl Desk {
    pub(super) fn document(&mut self, ui: &mut egui::Ui, i: &InteractionView) {
        let key = i.key;
        ui.heading(i.subject.clone().unwrap_or_else(|| "Document".into()));
        let (text, files, pages) = {
            let lines = self.views.get(&key).map_or(&[][..], |v| &v.lines[..]);
            let text: Vec<String> = lines.iter().map(|l| l.line.text.clone()).collect();
            let attachments: Vec<AttachmentRef> =
                lines.iter().flat_map(|l| l.attachments.clone()).collect();
            let (pages, files): (Vec<_>, Vec<_>) = attachments
                .into_iter()
                .partition(|a| a.content_type == "image/png");
            (text, files, pages)
        };
        for file in &files {
            ui.label(format!("File: {} ({})", file.name, file.content_type));
        }
        let view = self.views.entry(key).or_default();
        if !pages.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label("Pages:");
                for n in 0..pages.len() {
                    ui.selectable_value(&mut view.page, n, format!("Page {}", n + 1));
                }
            });
        }
        let page = view.page.min(pages.len().saturating_sub(1));
        egui::ScrollArea::vertical()
            .id_salt(("document", key))
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if let Some(attachment) = pages.get(page) {
                    self.preview(ui, &i.plugin, attachment);
                }
                ui.separator();
                for block in &text {
                    ui.label(block);
                }
            });
    }

    /// Shows one page preview, decoding it the first time.
    fn preview(&mut self, ui: &mut egui::Ui, plugin: &str, attachment: &AttachmentRef) {
        let Some(path) = self.info.attachment_path(plugin, attachment) else {
            ui.label("previews need the data directory");
            return;
        };
        let ctx = ui.ctx().clone();
        let loaded = self
            .previews
            .loaded
            .entry(path.clone())
            .or_insert_with(|| load_png(&ctx, &path));
        match loaded {
            Ok(texture) => {
                let width = ui.available_width().min(texture.size_vec2().x);
                ui.add(
                    egui::Image::new(&*texture)
                        .max_width(width)
                        .alt_text(attachment.name.clone()),
                );
            }
            Err(reason) => {
                ui.label(format!("{}: {reason}", attachment.name));
            }
        }
    }
}

fn load_png(ctx: &egui::Context, path: &std::path::Path) -> Result<egui::TextureHandle, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| format!("not a PNG image: {e}"))?
        .to_rgba8();
    let size = [image.width() as usize, image.height() as usize];
    let pixels = egui::ColorImage::from_rgba_unmultiplied(size, image.as_raw());
    Ok(ctx.load_texture(path.to_string_lossy(), pixels, egui::TextureOptions::LINEAR))
}
