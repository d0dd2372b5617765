//! Writing messages: replies, reply-all and forwards with the quoted original and the signature,
//! and new messages. Pure: builds RFC 5322 bytes with `mail-builder`; sending is `smtp`'s job.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;

/// What the agent replies to, forwards or writes anew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// The sender's name.
    pub from_name: String,
    /// The sender's address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    pub cc: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The body text (quote and signature included).
    pub text: String,
    /// The Message-ID of the message answered, without brackets.
    pub in_reply_to: Option<String>,
    /// The thread's ids, oldest first, without brackets.
    pub references: Vec<String>,
    /// This message's own Message-ID, without brackets.
    pub message_id: String,
    /// Files to attach: name, MIME type, bytes.
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

/// The subject of a reply: `Re: ` once.
pub fn reply_subject(subject: &str) -> String {
    if subject.to_ascii_lowercase().starts_with("re:") {
        subject.to_string()
    } else {
        format!("Re: {subject}")
    }
}

/// The subject of a forward.
pub fn forward_subject(subject: &str) -> String {
    if subject.to_ascii_lowercase().starts_with("fwd:") {
        subject.to_string()
    } else {
        format!("Fwd: {subject}")
    }
}

/// The original quoted under a reply (`> ` before each line).
pub fn quoted(who: &str, date: Option<&str>, text: &str) -> String {
    let mut out = match date {
        Some(date) => format!("On {date}, {who} wrote:\n"),
        None => format!("{who} wrote:\n"),
    };
    for line in text.lines() {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The original below a forward, headers first.
pub fn forwarded(
    from: &str,
    date: Option<&str>,
    subject: &str,
    to: &[String],
    text: &str,
) -> String {
    format!(
        "---------- Forwarded message ----------\nFrom: {from}\nDate: {}\nSubject: {subject}\nTo: {}\n\n{text}\n",
        date.unwrap_or("(unknown)"),
        to.join(", ")
    )
}

/// The agent's text, a quote or forwarded original, and the signature, in that order.
pub fn body(text: &str, below: Option<&str>, signature: &str) -> String {
    let mut out = text.trim_end().to_string();
    out.push('\n');
    if !signature.trim().is_empty() {
        out.push_str("\n-- \n");
        out.push_str(signature.trim_end());
        out.push('\n');
    }
    if let Some(below) = below {
        out.push('\n');
        out.push_str(below);
    }
    out
}

/// The message's bytes.
pub fn build(o: &Outgoing) -> std::io::Result<Vec<u8>> {
    let to: Vec<Address<'_>> = o.to.iter().map(|a| Address::from(a.as_str())).collect();
    let mut builder = MessageBuilder::new()
        .from((o.from_name.as_str(), o.from.as_str()))
        .to(to)
        .subject(o.subject.as_str())
        .message_id(o.message_id.as_str())
        // Written by a person: RFC 3834 auto-responders may answer it, and our own loop
        // protection on the other side recognises it as not automatic.
        .header("Auto-Submitted", Raw::new("no"))
        .text_body(o.text.as_str());
    if !o.cc.is_empty() {
        let cc: Vec<Address<'_>> = o.cc.iter().map(|a| Address::from(a.as_str())).collect();
        builder = builder.cc(cc);
    }
    if let Some(parent) = &o.in_reply_to {
        builder = builder.in_reply_to(parent.as_str());
    }
    if !o.references.is_empty() {
        let refs: Vec<&str> = o.references.iter().map(String::as_str).collect();
        builder = builder.references(refs);
    }
    for (name, content_type, bytes) in &o.attachments {
        builder = builder.attachment(content_type.clone(), name.clone(), bytes.clone());
    }
    builder.write_to_vec()
}

/// Addresses in free text (`To: a@x, b@y` or just addresses), lower-cased host kept as written.
pub fn addresses_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>'))
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '\''))
        .filter(|w| {
            let mut parts = w.split('@');
            matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') || (!l.is_empty() && d == "localhost"))
        })
        .map(str::to_string)
        .collect()
}

/// The recipients at the start of a forward's text (`To:` optional, separated by spaces, commas
/// or semicolons), and the rest of the text: works in a one-line composer too.
pub fn leading_recipients(text: &str) -> (Vec<String>, String) {
    let mut to = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let token_end = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let found = addresses_in(token);
        if token.eq_ignore_ascii_case("to:") || (found.len() == 1 && !token.is_empty()) {
            to.extend(found);
            rest = rest[token_end..]
                .trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == ';');
        } else {
            return (to, rest.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_threads_and_quotes_and_signs() {
        let text = body(
            "Thanks!",
            Some(&quoted(
                "Ann <a@x.org>",
                Some("Mon, 1 Jan 2026"),
                "Hi\n\nthere",
            )),
            "Sam\nSupport",
        );
        assert_eq!(
            text,
            "Thanks!\n\n-- \nSam\nSupport\n\nOn Mon, 1 Jan 2026, Ann <a@x.org> wrote:\n> Hi\n>\n> there\n"
        );
        let bytes = build(&Outgoing {
            from_name: "Support".into(),
            from: "s@x.org".into(),
            to: vec!["a@x.org".into()],
            subject: reply_subject("Hello"),
            text,
            in_reply_to: Some("m1@x.org".into()),
            references: vec!["m0@x.org".into(), "m1@x.org".into()],
            message_id: "r1@x.org".into(),
            ..Outgoing::default()
        })
        .expect("built");
        let parsed = crate::inbound::read(&bytes);
        assert_eq!(parsed.subject, "Re: Hello");
        assert_eq!(parsed.message_id.as_deref(), Some("r1@x.org"));
        assert_eq!(parsed.references, vec!["m0@x.org", "m1@x.org"]);
        assert!(parsed.text.contains("> there"));
        assert_eq!(reply_subject("RE: x"), "RE: x");
    }

    #[test]
    fn a_forward_starts_with_its_recipients_on_one_line_or_several() {
        assert_eq!(
            leading_recipients("To: bob@example.com, c@d.org Please check.\nThanks"),
            (
                vec!["bob@example.com".to_string(), "c@d.org".to_string()],
                "Please check.\nThanks".to_string()
            )
        );
        assert_eq!(
            leading_recipients("bob@example.com\nSee below."),
            (
                vec!["bob@example.com".to_string()],
                "See below.".to_string()
            )
        );
        assert!(leading_recipients("Please forward this").0.is_empty());
    }

    #[test]
    fn addresses_are_found_in_a_line() {
        assert_eq!(
            addresses_in("To: bob@example.com, <c@d.org>; nope@ x@localhost"),
            vec!["bob@example.com", "c@d.org", "x@localhost"]
        );
    }
}
