//! Reading a received message: headers (encoded words and charsets decoded), the body as plain
//! text (HTML converted), attachments, loop protection. Pure: bytes in, an [`Inbound`] out.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};

/// The most raw source shown as text for a message that cannot be parsed.
const RAW_SHOWN: usize = 64 * 1024;

/// One attachment of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The file name (as sent, not yet made safe).
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
}

/// A received message as the channel uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// The subject (decoded).
    pub subject: String,
    /// The sender's name, when given.
    pub from_name: Option<String>,
    /// The sender's address (Reply-To when given, else From).
    pub from: Option<String>,
    /// To and Cc addresses.
    pub to: Vec<String>,
    /// Cc addresses.
    pub cc: Vec<String>,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// References, then In-Reply-To, without angle brackets (the thread so far).
    pub references: Vec<String>,
    /// The Date header as sent.
    pub date: Option<String>,
    /// The body as plain text.
    pub text: String,
    /// The attachments.
    pub attachments: Vec<Part>,
    /// Why this looks machine-sent (auto-reply, bounce, list), if it does.
    pub automatic: Option<String>,
    /// Why the message could not be read properly, if so (its raw source is kept).
    pub problem: Option<String>,
}

fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|a| a.address())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|i| i.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Reads a message. Never fails: what cannot be read is described in `problem`.
pub fn read(raw: &[u8]) -> Inbound {
    let Some(message) = MessageParser::default().parse(raw) else {
        return unreadable(raw, "the message has no header the parser could read", None);
    };
    let mut inbound = Inbound {
        subject: message.subject().unwrap_or_default().to_string(),
        message_id: message.message_id().map(str::to_string),
        date: message.header_raw("Date").map(|d| d.trim().to_string()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        ..Inbound::default()
    };
    if let Some(sender) = message.from().and_then(|a| a.first()) {
        inbound.from_name = sender.name().map(str::to_string).filter(|n| !n.is_empty());
        inbound.from = sender.address().map(str::to_string);
    }
    if let Some(reply_to) = message
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
    {
        inbound.from = Some(reply_to.to_string());
    }
    inbound.references = ids(message.references());
    for id in ids(message.in_reply_to()) {
        if !inbound.references.contains(&id) {
            inbound.references.push(id);
        }
    }
    inbound.automatic = automatic(&message, inbound.from.as_deref());
    // A well-formed message without From or Message-ID is readable: it is offered with the
    // sender "unknown".
    if message.headers().is_empty() {
        return unreadable(raw, "the message has no headers", Some(inbound));
    }
    if let Some(problem) = broken_structure(&message, raw) {
        return unreadable(raw, &problem, Some(inbound));
    }
    let texts: Vec<String> = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .map(|t| t.replace("\r\n", "\n").trim_end().to_string())
        .collect();
    inbound.text = texts.join("\n\n");
    for part in message.attachments() {
        let bytes = match &part.body {
            PartType::Message(inner) => inner.raw_message().to_vec(),
            _ => part.contents().to_vec(),
        };
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let name = part
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| match content_type.as_str() {
                "message/rfc822" => "message.eml".into(),
                _ => "attachment".into(),
            });
        inbound.attachments.push(Part {
            name,
            content_type: content_type.to_ascii_lowercase(),
            bytes,
        });
    }
    inbound
}

/// A multipart message whose boundary never appears, or whose parts could not be separated.
fn broken_structure(message: &mail_parser::Message<'_>, raw: &[u8]) -> Option<String> {
    let ctype = message.content_type()?;
    if !ctype.ctype().eq_ignore_ascii_case("multipart") {
        return None;
    }
    let Some(boundary) = ctype.attribute("boundary") else {
        return Some("the message says it is multipart but names no boundary".into());
    };
    let marker = format!("--{boundary}");
    let found = raw
        .windows(marker.len().max(1))
        .any(|w| w == marker.as_bytes());
    if !found {
        return Some(format!(
            "the MIME structure is broken: the boundary `{boundary}` never appears"
        ));
    }
    None
}

/// Why the message is machine-sent (RFC 3834 and common practice), if it is.
fn automatic(message: &mail_parser::Message<'_>, from: Option<&str>) -> Option<String> {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(value) = header("Auto-Submitted")
        && value != "no"
    {
        return Some(format!("Auto-Submitted: {value}"));
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"] {
        if header(name).is_some() {
            return Some(format!("{name} header"));
        }
    }
    if let Some(value) = header("Precedence")
        && ["bulk", "junk", "list", "auto_reply"].contains(&value.as_str())
    {
        return Some(format!("Precedence: {value}"));
    }
    if let Some(ctype) = message.content_type()
        && ctype.ctype().eq_ignore_ascii_case("multipart")
        && ctype
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return Some("a delivery or disposition report (bounce)".into());
    }
    let return_path = header("Return-Path").unwrap_or_default();
    if return_path == "<>" {
        return Some("empty Return-Path (bounce)".into());
    }
    let local = from
        .and_then(|f| f.split('@').next())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if local == "mailer-daemon" || local == "postmaster" {
        return Some(format!("sent by {local} (bounce)"));
    }
    None
}

/// A message that cannot be read: offered with a clear note, its raw source as text and as a file.
fn unreadable(raw: &[u8], why: &str, parsed: Option<Inbound>) -> Inbound {
    let mut inbound = parsed.unwrap_or_default();
    let source = String::from_utf8_lossy(&raw[..raw.len().min(RAW_SHOWN)]).replace("\r\n", "\n");
    let cut = if raw.len() > RAW_SHOWN {
        "\n[… cut; the whole source is attached]"
    } else {
        ""
    };
    inbound.text = format!(
        "[This message could not be read: {why}. Its raw source follows and is attached as \
         original.eml.]\n\n{source}{cut}"
    );
    inbound.attachments = vec![Part {
        name: "original.eml".into(),
        content_type: "message/rfc822".into(),
        bytes: raw.to_vec(),
    }];
    inbound.problem = Some(why.to_string());
    if inbound.subject.is_empty() {
        inbound.subject = "(unreadable message)".into();
    }
    inbound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_headers_and_a_latin1_body_are_decoded() {
        let raw = b"From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <jm@example.de>\r\n\
Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\nMessage-ID: <x1@example.de>\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Sch\xf6ne Gr\xfc\xdfe\r\n";
        let m = read(raw);
        assert_eq!(m.subject, "Grüße");
        assert_eq!(m.from_name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(m.text, "Schöne Grüße");
        assert_eq!(m.problem, None);
    }

    #[test]
    fn html_becomes_text_without_scripts_and_auto_replies_are_recognised() {
        let raw = b"From: a@example.com\r\nMessage-ID: <h@x>\r\nAuto-Submitted: auto-replied\r\n\
Content-Type: text/html\r\n\r\n<html><script>evil()</script><p>Hello <b>there</b></p></html>\r\n";
        let m = read(raw);
        assert!(m.text.contains("Hello there"), "{}", m.text);
        assert!(!m.text.contains("evil"), "{}", m.text);
        assert_eq!(m.automatic.as_deref(), Some("Auto-Submitted: auto-replied"));
    }

    #[test]
    fn a_multipart_without_its_boundary_keeps_its_raw_source() {
        let raw = b"From: b@example.com\r\nSubject: broken\r\nMessage-ID: <b@x>\r\n\
Content-Type: multipart/mixed; boundary=\"NOPE\"\r\n\r\nsome text\r\n";
        let m = read(raw);
        assert!(m.problem.as_deref().unwrap_or_default().contains("NOPE"));
        assert!(m.text.contains("could not be read") && m.text.contains("some text"));
        assert_eq!(m.attachments[0].bytes, raw.to_vec());
        assert_eq!(m.subject, "broken");
    }
}
