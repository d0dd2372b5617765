//! What a request must be before the user agent serves it (RFC 3261 §8.2, answered as RFC 4475's
//! torture tests expect): each refusal with its status and the headers it owes. Pure functions of
//! the message; no transaction, dialog or socket here.

use crate::sip::{self, Message, ParseError};

/// The extensions (option tags) we support: none, so any `Require` is refused with 420.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// Headers that a request carries at most once (RFC 3261 §7.3.1: only headers defined as
/// comma-separated lists may be repeated).
const SINGLE: &[&str] = &[
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

/// Why a request is refused, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub code: u16,
    /// The reason phrase, saying what was wrong.
    pub reason: String,
    /// Headers the status requires (`Unsupported` for 420, `Accept` for 415...).
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(code: u16, why: impl std::fmt::Display) -> Refusal {
        Refusal {
            code,
            reason: format!("{} ({why})", sip::reason(code)),
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Refusal {
        self.headers.push((name, value.into()));
        self
    }
}

/// The answer to a datagram that did not parse as a request: 505 for another SIP version, 400
/// for the rest.
pub fn unparsable(error: &ParseError) -> Refusal {
    match error {
        ParseError::Version(version) => Refusal::new(505, format!("{version} is not SIP/2.0")),
        other => Refusal::new(400, other),
    }
}

/// Syntax a request must have to be answered at all (RFC 3261 §7, §8.1.1, RFC 4475 §3.1.2):
/// the mandatory headers, no second copy of a single-valued header, no unterminated quoted
/// string.
pub fn syntax(request: &Message) -> Result<(), Refusal> {
    for name in SINGLE {
        let values: Vec<&str> = request.headers_named(name).collect();
        if values.len() > 1 {
            return Err(Refusal::new(
                400,
                format!("{} {name} headers", values.len()),
            ));
        }
    }
    for (name, value) in &request.headers {
        if !quotes_balanced(value) {
            return Err(Refusal::new(
                400,
                format!("unterminated quoted string in {name}"),
            ));
        }
    }
    if let Some(missing) = request.missing_mandatory() {
        return Err(Refusal::new(400, format!("missing or bad {missing}")));
    }
    Ok(())
}

/// What a request we serve must ask only of what we can do (RFC 3261 §8.2.2 and §8.2.3): a
/// `sip:` Request-URI (416), no extension we lack (420), a body we understand (415).
/// `accepted` are the body types its method may carry.
pub fn semantics(request: &Message, accepted: &[&str]) -> Result<(), Refusal> {
    let method = request.method().unwrap_or_default();
    let uri = request.uri().unwrap_or_default();
    let scheme = uri.split(':').next().unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("sip") {
        return Err(Refusal::new(
            416,
            format!("`{scheme}:` URIs are not served"),
        ));
    }
    if method != "CANCEL" && method != "ACK" {
        let unknown: Vec<&str> = request
            .headers_named("Require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .filter(|tag| {
                !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(tag))
            })
            .collect();
        if !unknown.is_empty() {
            let list = unknown.join(", ");
            return Err(Refusal::new(420, format!("unsupported {list}")).with("Unsupported", list));
        }
    }
    if !request.body.is_empty() {
        let accept = accepted.join(", ");
        let Some(content_type) = request.header("Content-Type") else {
            return Err(Refusal::new(415, "a body without Content-Type").with("Accept", accept));
        };
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !accepted.iter().any(|a| *a == media_type) {
            return Err(
                Refusal::new(415, format!("{media_type} is not understood")).with("Accept", accept)
            );
        }
        if let Some(encoding) = request
            .headers_named("Content-Encoding")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        {
            return Err(Refusal::new(415, format!("content encoding {encoding}"))
                .with("Accept-Encoding", "identity")
                .with("Accept", accept));
        }
    }
    Ok(())
}

/// Whether every `"` of a header value is closed (a backslash escapes inside quotes).
fn quotes_balanced(value: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

/// The headers of an unparsable request that an error answer needs, if present.
pub fn salvage(data: &[u8]) -> Option<Message> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let first = lines.next()?;
    if first.starts_with("SIP/") || !first.contains("SIP/") {
        return None;
    }
    let method = first.split(' ').next()?.to_string();
    if method == "ACK" {
        return None;
    }
    let mut message = Message::request(&method, "sip:invalid");
    for line in lines {
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = match name.trim() {
                "v" => "Via",
                "f" => "From",
                "t" => "To",
                "i" => "Call-ID",
                other => other,
            };
            // The first of each: a refused request may carry two.
            if ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
                && message.header(name).is_none()
            {
                message
                    .headers
                    .push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    message.header("Via")?;
    message.header("Call-ID")?;
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Message {
        Message::parse(text.replace('\n', "\r\n").as_bytes()).expect("parses")
    }

    const HEAD: &str = "INVITE sip:2001@h SIP/2.0\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK-1\n\
        From: <sip:a@h>;tag=1\nTo: <sip:2001@h>\nCall-ID: c\nCSeq: 1 INVITE\n";

    #[test]
    fn a_second_call_id_cseq_to_or_from_is_a_bad_request() {
        for extra in [
            "Call-ID: d\n",
            "CSeq: 2 INVITE\n",
            "To: <sip:x@h>\n",
            "From: <sip:b@h>;tag=2\n",
        ] {
            let refusal = syntax(&parse(&format!("{HEAD}{extra}\n"))).expect_err(extra);
            assert_eq!(refusal.code, 400, "{extra}");
        }
        assert_eq!(syntax(&parse(&format!("{HEAD}\n"))), Ok(()));
    }

    #[test]
    fn an_unterminated_quoted_string_is_a_bad_request() {
        let text = HEAD.replace("From: <sip:a@h>", "From: \"Mr. J. User <sip:a@h>");
        let refusal = syntax(&parse(&format!("{text}\n"))).expect_err("refused");
        assert_eq!(refusal.code, 400);
        assert!(refusal.reason.contains("quoted"), "{}", refusal.reason);
        let escaped = HEAD.replace("From: <sip:a@h>", "From: \"J. \\\"Q\\\" User\" <sip:a@h>");
        assert_eq!(syntax(&parse(&format!("{escaped}\n"))), Ok(()));
    }

    #[test]
    fn unknown_schemes_extensions_and_bodies_get_416_420_and_415() {
        let sdp = ["application/sdp"];
        let tel = parse(&format!(
            "{}\n",
            HEAD.replace("sip:2001@h SIP", "tel:+1555 SIP")
        ));
        assert_eq!(semantics(&tel, &sdp).map_err(|r| r.code), Err(416));
        let require = parse(&format!("{HEAD}Require: nothingwecando, 100rel\n\n"));
        let refusal = semantics(&require, &sdp).expect_err("420");
        assert_eq!(refusal.code, 420);
        assert_eq!(
            refusal.headers,
            vec![("Unsupported", "nothingwecando, 100rel".to_string())]
        );
        let body = parse(&format!(
            "{HEAD}Content-Type: application/unknownformat\nContent-Length: 3\n\nabc"
        ));
        let refusal = semantics(&body, &sdp).expect_err("415");
        assert_eq!(refusal.code, 415);
        assert_eq!(refusal.headers, vec![("Accept", "application/sdp".into())]);
        let gzip = parse(&format!(
            "{HEAD}Content-Type: application/sdp\nContent-Encoding: gzip\nContent-Length: 3\n\nabc"
        ));
        assert_eq!(semantics(&gzip, &sdp).map_err(|r| r.code), Err(415));
        let fine = parse(&format!(
            "{HEAD}Content-Type: Application/SDP;charset=x\nContent-Length: 3\n\nabc"
        ));
        assert_eq!(semantics(&fine, &sdp), Ok(()));
    }

    #[test]
    fn another_sip_version_is_505_and_other_garbage_400() {
        let error = Message::parse(b"INVITE sip:a@h SIP/7.0\r\nVia: x\r\n\r\n").expect_err("7.0");
        assert_eq!(unparsable(&error).code, 505);
        let error = Message::parse(b"INVITE <sip:a@h> SIP/2.0\r\nVia: x\r\n\r\n").expect_err("<>");
        assert_eq!(unparsable(&error).code, 400);
    }

    #[test]
    fn a_garbled_request_still_yields_what_an_answer_needs() {
        let m = salvage(
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9\r\nCall-ID: 1\r\nCall-ID: 2\r\ngarbage\r\n\r\n",
        )
        .expect("salvaged");
        assert_eq!(m.header("Call-ID"), Some("1"));
        assert_eq!(m.headers_named("Call-ID").count(), 1);
        assert!(salvage(b"\x00\x01").is_none());
    }
}
