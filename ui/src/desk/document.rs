//! A document (workitem: a PDF, a fax): its text, its files, and page previews. The channel sends
//! the document as a message whose attachments are the original file and one PNG per previewed
//! page, by path relative to the plugin's data directory; the desk fetches them through the
//! client.

use super::Desk;
use agentdesk_client::{InteractionView, Pending};
use eframe::egui;
use plugin_api::AttachmentRef;

/// A page preview: on its way, or decoded (a failure is remembered with its reason).
enum Preview {
    Coming(Pending<Vec<u8>>),
    Loaded(Result<egui::TextureHandle, String>),
}

/// Page previews by plugin and file.
#[derive(Default)]
pub(super) struct Previews {
    loaded: std::collections::BTreeMap<(String, String), Preview>,
}

impl Previews {
    /// Whether a preview is on its way.
    pub(super) fn coming(&self) -> bool {
        self.loaded
            .values()
            .any(|p| matches!(p, Preview::Coming(_)))
    }
}

impl std::fmt::Debug for Previews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previews")
            .field("loaded", &self.loaded.len())
            .finish()
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
                    self.preview(ui, key, &i.plugin, attachment);
                }
                ui.separator();
                for block in &text {
                    ui.label(block);
                }
            });
    }

    /// Shows one page preview, fetching and decoding it the first time.
    fn preview(&mut self, ui: &mut egui::Ui, key: u64, plugin: &str, attachment: &AttachmentRef) {
        let ctx = ui.ctx().clone();
        let preview = self
            .previews
            .loaded
            .entry((plugin.to_string(), attachment.path.clone()))
            .or_insert_with(|| Preview::Coming(self.client.file(key, attachment)));
        if let Preview::Coming(coming) = preview
            && let Some(answer) = coming.poll()
        {
            let name = format!("{plugin}/{}", attachment.path);
            *preview = Preview::Loaded(
                answer
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| decode_png(&ctx, &name, &bytes)),
            );
        }
        match preview {
            Preview::Coming(_) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("{}: loading", attachment.name));
                });
            }
            Preview::Loaded(Ok(texture)) => {
                let width = ui.available_width().min(texture.size_vec2().x);
                ui.add(
                    egui::Image::new(&*texture)
                        .max_width(width)
                        .alt_text(attachment.name.clone()),
                );
            }
            Preview::Loaded(Err(reason)) => {
                ui.label(format!("{}: {reason}", attachment.name));
            }
        }
    }
}

fn decode_png(
    ctx: &egui::Context,
    name: &str,
    bytes: &[u8],
) -> Result<egui::TextureHandle, String> {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| format!("not a PNG image: {e}"))?
        .to_rgba8();
    let size = [image.width() as usize, image.height() as usize];
    let pixels = egui::ColorImage::from_rgba_unmultiplied(size, image.as_raw());
    Ok(ctx.load_texture(name, pixels, egui::TextureOptions::LINEAR))
}
