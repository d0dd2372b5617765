//! Files that plugins keep for interactions (an email's attachments, a workitem's page previews,
//! recordings), read for a desk: only by those taking part in the interaction, only files the
//! interaction carries (the core checks both: `Query::Attachment`), only inside the plugin's data
//! directory, and a piece at a time, so a remote desk gets any size through NATS.

use crate::in_process::InProcess;
use crate::{ClientError, Pending};
use agentdesk_host::service::{Answer, Query};
use plugin_api::AttachmentRef;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

impl InProcess {
    /// Bytes `offset..offset + limit` of a file interaction `key` carries, for `agent`, with the
    /// file's whole size. Waits for the core and reads off the caller's thread.
    pub fn file_piece(
        &self,
        agent: &str,
        key: u64,
        attachment: &AttachmentRef,
        offset: u64,
        limit: u64,
    ) -> Pending<(Vec<u8>, u64)> {
        let Some(data_dir) = self.data_dir().map(Path::to_path_buf) else {
            return Pending::ready(Err(ClientError::failed(
                "file",
                "this core keeps no files (no data directory)",
            )));
        };
        let allowed = self.core().submit_query(Query::Attachment {
            agent: agent.into(),
            key,
            path: attachment.path.clone(),
        });
        let wanted = attachment.path.clone();
        let (reply, answer) = crossbeam_channel::bounded(1);
        let read = std::thread::Builder::new()
            .name("client-file".into())
            .spawn(move || {
                let read = || {
                    let plugin = match allowed.recv() {
                        Ok(Ok(Answer::Plugin(plugin))) => plugin,
                        Ok(Ok(_)) => {
                            return Err(ClientError::Unexpected {
                                asked: "the file's plugin".into(),
                            });
                        }
                        Ok(Err(e)) => return Err(ClientError::from(e)),
                        Err(_) => return Err(ClientError::Stopped),
                    };
                    let path = plugin_file(&data_dir, &plugin, &wanted)?;
                    read_piece(&path, offset, limit)
                };
                let _ = reply.send(read());
            });
        match read {
            Ok(_) => Pending::from_channel(answer, |read| read),
            Err(e) => Pending::ready(Err(ClientError::failed(
                "file",
                format!("cannot start reading: {e}"),
            ))),
        }
    }
}

fn read_piece(path: &Path, offset: u64, limit: u64) -> Result<(Vec<u8>, u64), ClientError> {
    let failed = |e: std::io::Error| {
        ClientError::failed("file", format!("cannot read {}: {e}", path.display()))
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let total = file.metadata().map_err(failed)?.len();
    file.seek(SeekFrom::Start(offset.min(total)))
        .map_err(failed)?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(failed)?;
    Ok((bytes, total))
}

/// Where a plugin's file is: its path under the plugin's data directory. A path that leaves that
/// directory (`..`, or absolute elsewhere) is refused: a client reads only what plugins keep.
fn plugin_file(data_dir: &Path, plugin: &str, path: &str) -> Result<PathBuf, ClientError> {
    let root = data_dir.join("plugins").join(plugin);
    let path = Path::new(path);
    let relative = match path.strip_prefix(&root) {
        Ok(inside) => inside,
        Err(_) if path.is_absolute() => {
            return Err(ClientError::failed(
                "file-outside",
                format!("{} is not a file of plugin {plugin}", path.display()),
            ));
        }
        Err(_) => path,
    };
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ClientError::failed(
            "file-outside",
            format!(
                "{} leaves the data directory of plugin {plugin}",
                path.display()
            ),
        ));
    }
    Ok(root.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_file_stays_inside_the_plugins_data_directory() {
        let data = Path::new("/data");
        assert_eq!(
            plugin_file(data, "acme", "pages/1.png"),
            Ok(PathBuf::from("/data/plugins/acme/pages/1.png"))
        );
        assert_eq!(
            plugin_file(data, "acme", "/data/plugins/acme/x.pdf"),
            Ok(PathBuf::from("/data/plugins/acme/x.pdf"))
        );
        for outside in [
            "../other/secret",
            "/etc/passwd",
            "/data/plugins/other/x",
            "a/../../b",
        ] {
            let refused = plugin_file(data, "acme", outside).expect_err(outside);
            assert_eq!(refused.code(), "file-outside", "{outside}");
        }
    }
}
