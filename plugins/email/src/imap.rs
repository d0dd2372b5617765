//! A small IMAP4rev1 client: exactly the commands the channel uses (LOGIN, CAPABILITY, SELECT,
//! UID SEARCH/FETCH/STORE, APPEND, CREATE, IDLE). Protocol only: no parsing of messages here.

use crate::net::{Conn, NetError};
use crate::settings::{Security, Settings};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One untagged response: its text (literals replaced by `{n}`) and its literals, in order.
#[derive(Debug, Default)]
pub struct Untagged {
    /// The text of the response without the literals' bytes.
    pub text: String,
    /// The literals.
    pub literals: Vec<Vec<u8>>,
}

/// The state of a selected folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// UIDVALIDITY: when it changes, every UID of the folder means something else.
    pub uidvalidity: u32,
    /// How many messages the folder holds.
    pub exists: u32,
}

/// What ended an IDLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The server announced new messages.
    NewMail,
    /// The wait ran out.
    Timeout,
    /// The plugin is stopping.
    Stopping,
}

/// A logged-in IMAP session.
#[derive(Debug)]
pub struct Imap {
    conn: Conn,
    tag: u32,
    /// Whether the server offers IDLE.
    pub idle: bool,
}

/// Quotes a string for an IMAP command.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `{n}` or `{n+}` literal announced at the end of a line, if any.
fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The number after `word ` in `text` (e.g. `UID 17`).
pub fn number_after(text: &str, word: &str) -> Option<u32> {
    let start = text.find(word)? + word.len();
    let digits: String = text[start..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Imap {
    /// Connects, protects (per the settings), logs in and reads the capabilities.
    pub async fn open(
        settings: &Settings,
        tls: Option<&Arc<rustls::ClientConfig>>,
        password: &str,
    ) -> Result<Imap, NetError> {
        let timeout = Duration::from_secs(30);
        let host = settings.imap_host.as_str();
        let implicit = match settings.imap_security {
            Security::Tls => tls,
            _ => None,
        };
        let conn = Conn::connect(host, settings.imap_port, implicit, timeout).await?;
        let mut imap = Imap {
            conn,
            tag: 0,
            idle: false,
        };
        let greeting = imap.conn.line().await?;
        if !greeting.starts_with(b"* OK") && !greeting.starts_with(b"* PREAUTH") {
            return Err(NetError::Protocol(
                String::from_utf8_lossy(&greeting).trim().to_string(),
            ));
        }
        if settings.imap_security == Security::Starttls {
            let config = tls.ok_or_else(|| NetError::Tls("no TLS configuration".into()))?;
            imap.command("STARTTLS").await?;
            imap.conn = imap.conn.starttls(host, config).await?;
        }
        imap.command_named(
            &format!("LOGIN {} {}", quoted(&settings.account), quoted(password)),
            "LOGIN",
        )
        .await?;
        let capabilities = imap.command("CAPABILITY").await?;
        imap.idle = capabilities.iter().any(|u| {
            u.text
                .to_ascii_uppercase()
                .split_whitespace()
                .any(|w| w == "IDLE")
        });
        Ok(imap)
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("A{}", self.tag)
    }

    /// Reads one response (a line and the literals it announces).
    async fn response(&mut self) -> Result<Untagged, NetError> {
        let mut out = Untagged::default();
        loop {
            let line = self.conn.line().await?;
            out.text.push_str(&String::from_utf8_lossy(&line));
            match literal_size(&line) {
                Some(n) => out.literals.push(self.conn.exact(n).await?),
                None => return Ok(out),
            }
        }
    }

    /// Sends a command and collects the untagged responses until its tagged OK.
    pub async fn command(&mut self, command: &str) -> Result<Vec<Untagged>, NetError> {
        let name = command.split(' ').take(2).collect::<Vec<_>>().join(" ");
        self.command_named(command, &name).await
    }

    /// As [`Imap::command`], naming the command as `name` in errors (to keep secrets out).
    async fn command_named(
        &mut self,
        command: &str,
        name: &str,
    ) -> Result<Vec<Untagged>, NetError> {
        let tag = self.next_tag();
        self.conn
            .send(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.finish(&tag, name).await
    }

    async fn finish(&mut self, tag: &str, name: &str) -> Result<Vec<Untagged>, NetError> {
        let mut untagged = Vec::new();
        loop {
            let response = self.response().await?;
            if let Some(status) = response.text.strip_prefix(&format!("{tag} ")) {
                if status.starts_with("OK") {
                    return Ok(untagged);
                }
                return Err(NetError::Refused {
                    command: name.to_string(),
                    answer: status.trim().to_string(),
                });
            }
            untagged.push(response);
        }
    }

    /// Selects a folder (read-write).
    pub async fn select(&mut self, folder: &str) -> Result<Selected, NetError> {
        let untagged = self.command(&format!("SELECT {}", quoted(folder))).await?;
        let mut selected = Selected {
            uidvalidity: 0,
            exists: 0,
        };
        for u in &untagged {
            if let Some(v) = number_after(&u.text, "[UIDVALIDITY") {
                selected.uidvalidity = v;
            }
            if u.text.trim_end().ends_with(" EXISTS") {
                selected.exists = number_after(&u.text, "*").unwrap_or(0);
            }
        }
        if selected.uidvalidity == 0 {
            return Err(NetError::Protocol(format!(
                "SELECT {folder} answered no UIDVALIDITY"
            )));
        }
        Ok(selected)
    }

    /// The UIDs above `after`, ascending.
    pub async fn uids_after(&mut self, after: u32) -> Result<Vec<u32>, NetError> {
        let untagged = self
            .command(&format!("UID SEARCH UID {}:*", after.saturating_add(1)))
            .await?;
        let mut uids: Vec<u32> = untagged
            .iter()
            .filter_map(|u| u.text.strip_prefix("* SEARCH"))
            .flat_map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok())
            })
            .filter(|uid| *uid > after)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The full source of each message in `uids` (without marking them seen), by UID.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, NetError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let untagged = self
            .command(&format!("UID FETCH {} (UID BODY.PEEK[])", set.join(",")))
            .await?;
        let mut out = Vec::new();
        for mut u in untagged {
            if !u.text.contains(" FETCH ") || u.literals.is_empty() {
                continue;
            }
            if let Some(uid) = number_after(&u.text, "UID") {
                out.push((uid, u.literals.swap_remove(0)));
            }
        }
        out.sort_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// Adds `\Answered` to a message of the selected folder.
    pub async fn mark_answered(&mut self, uid: u32) -> Result<(), NetError> {
        self.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Answered)"))
            .await
            .map(|_| ())
    }

    /// Creates a folder; a folder that already exists is fine.
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<(), NetError> {
        match self.command(&format!("CREATE {}", quoted(folder))).await {
            Ok(_) => Ok(()),
            Err(NetError::Refused { answer, .. })
                if answer.contains("ALREADYEXISTS") || answer.to_lowercase().contains("exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Appends a message to a folder with the given flags (e.g. `\Seen`).
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &str,
        message: &[u8],
    ) -> Result<(), NetError> {
        let tag = self.next_tag();
        self.conn
            .send(
                format!(
                    "{tag} APPEND {} ({flags}) {{{}}}\r\n",
                    quoted(folder),
                    message.len()
                )
                .as_bytes(),
            )
            .await?;
        let go_ahead = self.conn.line().await?;
        if !go_ahead.starts_with(b"+") {
            return Err(NetError::Refused {
                command: "APPEND".into(),
                answer: String::from_utf8_lossy(&go_ahead).trim().to_string(),
            });
        }
        self.conn.send(message).await?;
        self.conn.send(b"\r\n").await?;
        self.finish(&tag, "APPEND").await.map(|_| ())
    }

    /// Waits in IDLE for new messages, at most `wait`, or until `stop` says so.
    pub async fn idle(
        &mut self,
        wait: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Woken, NetError> {
        let tag = self.next_tag();
        self.conn.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        let go_ahead = self.conn.line().await?;
        if !go_ahead.starts_with(b"+") {
            return Err(NetError::Refused {
                command: "IDLE".into(),
                answer: String::from_utf8_lossy(&go_ahead).trim().to_string(),
            });
        }
        let deadline = Instant::now() + wait;
        let woken = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Woken::Timeout;
            }
            tokio::select! {
                line = self.conn.line_within(left) => match line {
                    Ok(line) => {
                        let line = String::from_utf8_lossy(&line);
                        if line.trim_end().ends_with(" EXISTS") || line.trim_end().ends_with(" RECENT") {
                            break Woken::NewMail;
                        }
                    }
                    Err(NetError::Timeout(_)) => break Woken::Timeout,
                    Err(e) => return Err(e),
                },
                _ = stop.changed() => break Woken::Stopping,
            }
        };
        self.conn.send(b"DONE\r\n").await?;
        self.finish(&tag, "IDLE").await?;
        Ok(woken)
    }

    /// Keeps the session alive and lets the server report changes.
    pub async fn noop(&mut self) -> Result<(), NetError> {
        self.command("NOOP").await.map(|_| ())
    }

    /// Logs out (best effort).
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_numbers_are_read_from_response_lines() {
        assert_eq!(
            literal_size(b"* 1 FETCH (UID 7 BODY[] {362}\r\n"),
            Some(362)
        );
        assert_eq!(literal_size(b"A1 APPEND x {12+}\r\n"), Some(12));
        assert_eq!(literal_size(b"* OK [UIDVALIDITY 5]\r\n"), None);
        assert_eq!(number_after("* 1 FETCH (UID 7 BODY[]", "UID"), Some(7));
        assert_eq!(
            number_after("* OK [UIDVALIDITY 1795564409] UIDs", "[UIDVALIDITY"),
            Some(1795564409)
        );
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
