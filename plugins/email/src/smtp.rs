//! A small SMTP client (RFC 5321): EHLO, STARTTLS, AUTH PLAIN, one message per connection.
//! Protocol only: the message is built elsewhere.

use crate::net::{Conn, NetError};
use crate::settings::{Security, Settings};
use std::sync::Arc;
use std::time::Duration;

/// One message to send: the envelope and the RFC 5322 bytes.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// MAIL FROM.
    pub from: &'a str,
    /// RCPT TO, each.
    pub to: &'a [String],
    /// The message.
    pub data: &'a [u8],
}

/// A reply: the code and the text of its lines.
async fn reply(conn: &mut Conn) -> Result<(u16, String), NetError> {
    let mut text = String::new();
    loop {
        let line = conn.line().await?;
        let line = String::from_utf8_lossy(&line);
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| NetError::Protocol(line.trim().to_string()))?;
        text.push_str(line.get(4..).unwrap_or("").trim_end());
        text.push('\n');
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

async fn expect(conn: &mut Conn, command: &str, want: u16) -> Result<String, NetError> {
    let (code, text) = reply(conn).await?;
    if code / 100 != want / 100 {
        return Err(NetError::Refused {
            command: command.into(),
            answer: format!("{code} {}", text.trim()),
        });
    }
    Ok(text)
}

async fn say(conn: &mut Conn, line: &str, name: &str, want: u16) -> Result<String, NetError> {
    conn.send(format!("{line}\r\n").as_bytes()).await?;
    expect(conn, name, want).await
}

/// Dot-stuffs a message and ends it with CRLF.CRLF (line ends normalised to CRLF).
pub fn dot_stuffed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut at_line_start = true;
    let mut previous = 0u8;
    for &b in data {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        previous = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends one message through the configured SMTP server.
pub async fn send(
    settings: &Settings,
    tls: Option<&Arc<rustls::ClientConfig>>,
    password: &str,
    message: Envelope<'_>,
) -> Result<(), NetError> {
    let host = settings.smtp_host.as_str();
    let implicit = match settings.smtp_security {
        Security::Tls => tls,
        _ => None,
    };
    let mut conn =
        Conn::connect(host, settings.smtp_port, implicit, Duration::from_secs(30)).await?;
    expect(&mut conn, "greeting", 220).await?;
    let domain = settings.address.rsplit('@').next().unwrap_or("localhost");
    let mut ehlo = say(&mut conn, &format!("EHLO {domain}"), "EHLO", 250).await?;
    if settings.smtp_security == Security::Starttls {
        let config = tls.ok_or_else(|| NetError::Tls("no TLS configuration".into()))?;
        say(&mut conn, "STARTTLS", "STARTTLS", 220).await?;
        conn = conn.starttls(host, config).await?;
        ehlo = say(&mut conn, &format!("EHLO {domain}"), "EHLO", 250).await?;
    }
    let offers_auth = ehlo
        .lines()
        .any(|l| l.to_ascii_uppercase().starts_with("AUTH") && l.contains("PLAIN"));
    if settings.smtp_auth && offers_auth && !password.is_empty() {
        let token = base64(format!("\0{}\0{password}", settings.account).as_bytes());
        say(&mut conn, &format!("AUTH PLAIN {token}"), "AUTH", 235).await?;
    }
    say(
        &mut conn,
        &format!("MAIL FROM:<{}>", message.from),
        "MAIL FROM",
        250,
    )
    .await?;
    for to in message.to {
        say(
            &mut conn,
            &format!("RCPT TO:<{to}>"),
            &format!("RCPT TO {to}"),
            250,
        )
        .await?;
    }
    say(&mut conn, "DATA", "DATA", 354).await?;
    conn.send(&dot_stuffed(message.data)).await?;
    expect(&mut conn, "the message", 250).await?;
    let _ = say(&mut conn, "QUIT", "QUIT", 221).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_dot_is_doubled_and_the_end_is_marked() {
        assert_eq!(dot_stuffed(b"a\n.b\r\n"), b"a\r\n..b\r\n.\r\n".to_vec());
        assert_eq!(dot_stuffed(b".x"), b"..x\r\n.\r\n".to_vec());
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
