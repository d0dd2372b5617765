//! Attachments copied from Meta's links into the plugin's data directory before the webhook is
//! acknowledged (Meta's links expire), synced, and referenced in the message. A failed download
//! is logged and the agent sees the kind and the link instead.

use crate::Shared;
use crate::payload::Item;
use plugin_api::AttachmentRef;
use std::io::Write;
use std::path::Path;

/// The folder in the data directory.
pub const FOLDER: &str = "attachments";

fn extension(content_type: &str, url: &str) -> &'static str {
    match content_type.split(';').next().unwrap_or("").trim() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "audio/mpeg" => "mp3",
        "audio/mp4" | "audio/aac" => "m4a",
        "application/pdf" => "pdf",
        _ if url.split('?').next().is_some_and(|p| p.ends_with(".png")) => "png",
        _ if url.split('?').next().is_some_and(|p| p.ends_with(".jpg")) => "jpg",
        _ => "bin",
    }
}

/// A file name from Meta's message id (which contains characters unsafe in paths).
fn safe(mid: &str) -> String {
    mid.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(80)
        .collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Downloads the attachments of customers' messages not stored yet.
pub fn download(shared: &Shared, items: &mut [Item]) {
    let dir = shared.host.data_dir();
    for item in items.iter_mut() {
        let Item::Customer {
            mid, attachments, ..
        } = item
        else {
            continue;
        };
        if attachments.is_empty() || shared.conversations().has_seen(mid) {
            continue;
        }
        for (n, attachment) in attachments.iter_mut().enumerate() {
            let Some(url) = attachment.url.clone() else {
                continue;
            };
            let fetched =
                shared
                    .runtime
                    .block_on(shared.graph.client.request("GET", &url, &[], b""));
            let response = match fetched {
                Ok(r) if r.status == 200 => r,
                Ok(r) => {
                    shared.host.warn(&format!(
                        "attachment of {mid} not downloaded: HTTP {}",
                        r.status
                    ));
                    continue;
                }
                Err(e) => {
                    shared
                        .host
                        .warn(&format!("attachment of {mid} not downloaded: {e}"));
                    continue;
                }
            };
            let content_type = response
                .header("content-type")
                .unwrap_or("application/octet-stream")
                .to_string();
            let name = format!("{}-{n}.{}", safe(mid), extension(&content_type, &url));
            let relative = format!("{FOLDER}/{name}");
            if let Err(e) = write_synced(&dir.join(&relative), &response.body) {
                shared
                    .host
                    .error(&format!("cannot store an attachment of {mid}: {e}"));
                continue;
            }
            attachment.file = Some(AttachmentRef {
                name: format!("{}.{}", attachment.kind, extension(&content_type, &url)),
                path: relative,
                content_type,
                size: response.body.len() as u64,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_typed() {
        assert_eq!(safe("m_AbC/../x:1"), "m_AbC____x_1");
        assert_eq!(extension("image/jpeg", "https://cdn/x"), "jpg");
        assert_eq!(extension("", "https://cdn/photo.png?sig=1"), "png");
        assert_eq!(extension("text/x-unknown", "https://cdn/x"), "bin");
    }
}
