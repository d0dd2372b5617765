//! SIP messages (RFC 3261 §7): parsing what arrives on the wire (never panicking on hostile
//! input), building what we send, and the few header grammars the user agent needs (URIs, tags,
//! `Via` branches, `CSeq`, name-addr).

use std::fmt::Write as _;

/// The largest datagram we accept (and so the largest message).
pub const MAX_MESSAGE: usize = 65_535;

/// Why a datagram is not a SIP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not UTF-8 in the head, no blank line, or an empty datagram.
    #[error("not a SIP message: {0}")]
    NotSip(&'static str),
    /// The start line is not a request line nor a status line.
    #[error("bad start line `{0}`")]
    StartLine(String),
    /// A header line without a colon.
    #[error("bad header line `{0}`")]
    Header(String),
    /// Content-Length is not a number, larger than the body, or given twice.
    #[error("bad Content-Length")]
    ContentLength,
    /// A request line of another SIP version (answered 505).
    #[error("SIP version `{0}`")]
    Version(String),
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// The method, as sent (methods are case-sensitive).
        method: String,
        /// The Request-URI.
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// A SIP request or response: start line, headers in order (names in their full form), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    /// Headers in order; names expanded from compact forms.
    pub headers: Vec<(String, String)>,
    /// The body (SDP, sipfrag...).
    pub body: Vec<u8>,
}

/// The full name of a compact header form (RFC 3261 §7.3.3).
fn full_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "k" | "K" => "Supported",
        "s" | "S" => "Subject",
        "r" | "R" => "Refer-To",
        "b" | "B" => "Referred-By",
        "e" | "E" => "Content-Encoding",
        "o" | "O" => "Event",
        other => other,
    }
}

impl Message {
    /// Parses one datagram.
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        let split = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| (p, p + 4))
            .or_else(|| {
                data.windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|p| (p, p + 2))
            })
            .ok_or(ParseError::NotSip("no end of headers"))?;
        let head = std::str::from_utf8(&data[..split.0])
            .map_err(|_| ParseError::NotSip("head is not UTF-8"))?;
        let mut lines: Vec<String> = Vec::new();
        for line in head.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if (line.starts_with(' ') || line.starts_with('\t')) && lines.len() > 1 {
                // Header folding: a continuation of the previous header's value.
                if let Some(last) = lines.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            } else {
                lines.push(line.to_string());
            }
        }
        let first = lines
            .first()
            .filter(|l| !l.trim().is_empty())
            .ok_or(ParseError::NotSip("empty"))?;
        let start = parse_start(first)?;
        let mut headers = Vec::with_capacity(lines.len());
        for line in &lines[1..] {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::Header(truncate(line)))?;
            let name = name.trim();
            if name.is_empty() || name.contains(' ') {
                return Err(ParseError::Header(truncate(line)));
            }
            headers.push((full_name(name).to_string(), value.trim().to_string()));
        }
        let rest = &data[split.1..];
        let mut message = Message {
            start,
            headers,
            body: Vec::new(),
        };
        if message.headers_named("Content-Length").nth(1).is_some() {
            // Two lengths: the framing is ambiguous (RFC 4475 §3.1.2.18).
            return Err(ParseError::ContentLength);
        }
        let body = match message.header("Content-Length") {
            Some(len) => {
                let len: usize = len.trim().parse().map_err(|_| ParseError::ContentLength)?;
                if len > rest.len() {
                    return Err(ParseError::ContentLength);
                }
                &rest[..len]
            }
            None => rest,
        };
        message.body = body.to_vec();
        Ok(message)
    }

    /// A new request with no headers.
    pub fn request(method: &str, uri: &str) -> Message {
        Message {
            start: StartLine::Request {
                method: method.into(),
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` copying Via, From, To (with `to_tag` added when it has none),
    /// Call-ID and CSeq, as RFC 3261 §8.2.6 requires.
    pub fn response(request: &Message, code: u16, to_tag: Option<&str>) -> Message {
        let mut response = Message {
            start: StartLine::Response {
                code,
                reason: reason(code).into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for (name, value) in &request.headers {
            match name.as_str() {
                "Via" | "From" | "Call-ID" | "CSeq" | "Record-Route" => {
                    response.headers.push((name.clone(), value.clone()))
                }
                "To" => {
                    let value = match to_tag {
                        Some(tag) if tag_of(value).is_none() && code != 100 => {
                            format!("{value};tag={tag}")
                        }
                        _ => value.clone(),
                    };
                    response.headers.push((name.clone(), value));
                }
                _ => {}
            }
        }
        response
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Message {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body and its type.
    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Message {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.body = body;
        self
    }

    /// The first value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, including comma-separated ones in one line (not for headers
    /// whose values may contain commas inside quotes, such as authentication headers).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces (or adds) a header.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.into(), value)),
        }
    }

    /// The method of a request, or of the request a response answers (from CSeq).
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self.cseq().map(|(_, m)| m),
        }
    }

    /// The status code of a response.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let value = self.header("CSeq")?;
        let mut parts = value.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        let method = parts.next()?;
        Some((number, method))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }

    /// The top Via: the first value of the first Via header.
    pub fn top_via(&self) -> Option<&str> {
        let first = self.header("Via")?;
        Some(first.split(',').next().unwrap_or(first).trim())
    }

    /// The branch parameter of the top Via.
    pub fn branch(&self) -> Option<&str> {
        param(self.top_via()?, "branch")
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&str> {
        tag_of(self.header("From")?)
    }

    /// The To tag.
    pub fn to_tag(&self) -> Option<&str> {
        tag_of(self.header("To")?)
    }

    /// What a request lacks of the headers every request must carry (RFC 3261 §8.1.1), if any.
    pub fn missing_mandatory(&self) -> Option<&'static str> {
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.header(name).is_none() {
                return Some(name);
            }
        }
        if self.cseq().is_none() {
            return Some("CSeq");
        }
        if self.call_id().is_none() {
            return Some("Call-ID");
        }
        if let (Some((_, m)), Some(method)) = (self.cseq(), self.method())
            && self.is_request()
            && m != method
            && method != "ACK"
            && method != "CANCEL"
        {
            return Some("CSeq");
        }
        None
    }

    /// The wire form, with Content-Length set.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(head, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(head, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn truncate(line: &str) -> String {
    line.chars().take(60).collect()
}

fn parse_start(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(truncate(line));
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| bad())?;
        if !(100..700).contains(&code) {
            return Err(bad());
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    };
    if !token(method) {
        return Err(bad());
    }
    if version != "SIP/2.0" {
        return match version.strip_prefix("SIP/") {
            Some(number)
                if !number.is_empty()
                    && number.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                Err(ParseError::Version(truncate(version)))
            }
            _ => Err(bad()),
        };
    }
    // A Request-URI is bare: `<sip:...>` belongs in headers only (RFC 4475 §3.1.2.11).
    if !uri.contains(':') || uri.contains(['<', '>']) {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: method.into(),
        uri: uri.into(),
    })
}

/// A `;name=value` parameter of a header value (outside the `<...>` of a name-addr).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The tag of a From or To value.
pub fn tag_of(value: &str) -> Option<&str> {
    param(value, "tag").filter(|t| !t.is_empty())
}

/// The URI inside a name-addr (`"Name" <sip:a@b>;tag=x` gives `sip:a@b`) or an addr-spec.
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The display name of a name-addr, if any.
pub fn display_name_of(value: &str) -> Option<String> {
    let start = value.find('<')?;
    let name = value[..start].trim().trim_matches('"').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The parts of a `sip:` URI that routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The user part (an extension or number), if any.
    pub user: Option<String>,
    /// The host.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

impl SipUri {
    /// Parses `sip:user@host:port;params?headers` (also `sips:` and `tel:` are refused).
    pub fn parse(uri: &str) -> Option<SipUri> {
        let rest = uri.trim().strip_prefix("sip:")?;
        let rest = rest.split(['?', ';']).next()?;
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.split(':').next()?.to_string()), hostport),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, Some(port.parse().ok()?))
            }
            _ => (hostport, None),
        };
        if host.is_empty() {
            return None;
        }
        Some(SipUri {
            user: user.filter(|u| !u.is_empty()),
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        })
    }
}

/// The standard reason phrase of a status code.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A random token for tags, branches and Call-IDs (hex, 16 characters).
pub fn token() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: fall back to the clock; tokens only need to be unique.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().fold(String::with_capacity(16), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:2001@127.0.0.1:5060 SIP/2.0\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\n\
        From: \"Jo Bloggs\" <sip:jo@127.0.0.1:5999>;tag=abc\r\n\
        To: <sip:2001@127.0.0.1>\r\n\
        Call-ID: c1@x\r\n\
        CSeq: 1 INVITE\r\n\
        Subject: a\r\n folded\r\n\
        Content-Length: 4\r\n\r\nv=0\nEXTRA";

    #[test]
    fn a_request_parses_with_compact_and_folded_headers_and_its_body_length() {
        let m = Message::parse(INVITE.as_bytes()).expect("parses");
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.branch(), Some("z9hG4bK-1"));
        assert_eq!(m.from_tag(), Some("abc"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.header("subject"), Some("a folded"));
        assert_eq!(m.body, b"v=0\n");
        assert_eq!(m.missing_mandatory(), None);
        assert_eq!(
            display_name_of(m.header("From").unwrap()).as_deref(),
            Some("Jo Bloggs")
        );
    }

    #[test]
    fn a_response_copies_the_dialog_headers_and_adds_the_to_tag() {
        let m = Message::parse(INVITE.as_bytes()).expect("parses");
        let r = Message::response(&m, 180, Some("t1"));
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
        assert!(
            text.contains("To: <sip:2001@127.0.0.1>;tag=t1\r\n"),
            "{text}"
        );
        let back = Message::parse(text.as_bytes()).expect("round trip");
        assert_eq!(back.code(), Some(180));
        assert_eq!(back.method(), Some("INVITE"));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"hello\r\n\r\n",
            b"INVITE sip:a SIP/3.0\r\n\r\n",
            b"SIP/2.0 99 x\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nno colon\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 99\r\n\r\nshort",
            b"INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n",
            &[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n'],
        ] {
            assert!(Message::parse(bad).is_err(), "{bad:?}");
        }
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n").expect("parses");
        assert_eq!(m.missing_mandatory(), Some("From"));
    }

    #[test]
    fn sip_uris_give_user_host_and_port() {
        let u = SipUri::parse("sip:2001@127.0.0.1:5070;transport=udp").expect("uri");
        assert_eq!(u.user.as_deref(), Some("2001"));
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, Some(5070));
        let u = SipUri::parse("sip:example.com").expect("uri");
        assert_eq!((u.user, u.port), (None, None));
        assert!(SipUri::parse("tel:+1555").is_none());
        assert_eq!(uri_of("\"A\" <sip:a@b>;tag=1"), "sip:a@b");
        assert_eq!(uri_of("sip:a@b;tag=1"), "sip:a@b");
    }
}
