//! HTTP/1.1 request heads, origin checks, trusted proxies and plain responses for the channels
//! that serve web pages and a WebSocket from one listener (web chat, co-browse). No web framework.

use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The largest HTTP request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may open the WebSocket, and whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    /// Origins (`scheme://host[:port]`) whose pages may connect. Empty: only the server's own
    /// origin. `"*"` allows any (development only).
    pub allowed_origins: Vec<String>,
    /// Peer addresses of reverse proxies whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<String>,
}

/// The parts of a request head this server looks at.
#[derive(Debug, Default, Clone)]
pub struct Head {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `Host`.
    pub host: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Upgrade: websocket` was asked for.
    pub upgrade: bool,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<String>,
    /// `X-Forwarded-Proto`.
    pub forwarded_proto: Option<String>,
    /// `X-Forwarded-Host`.
    pub forwarded_host: Option<String>,
}

/// Reads a request head (at most 8 KiB, within 10 s); `None` for garbage, a timeout or a close.
pub async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return parse_head(&buf);
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// Parses a complete request head.
pub fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let mut head = Head {
        method: request.method?.to_string(),
        path: request.path?.split('?').next().unwrap_or("/").to_string(),
        ..Head::default()
    };
    for h in request.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        match h.name.to_ascii_lowercase().as_str() {
            "host" => head.host = Some(value),
            "origin" => head.origin = Some(value),
            "upgrade" => head.upgrade |= value.eq_ignore_ascii_case("websocket"),
            "sec-websocket-key" => head.ws_key = Some(value),
            "sec-websocket-version" => head.ws_version = Some(value),
            "x-forwarded-for" => head.forwarded_for = Some(value),
            "x-forwarded-proto" => head.forwarded_proto = Some(value),
            "x-forwarded-host" => head.forwarded_host = Some(value),
            _ => {}
        }
    }
    Some(head)
}

/// Whether the peer is a reverse proxy whose forwarding headers are believed.
fn trusted(peer: IpAddr, settings: &Origins) -> bool {
    settings
        .trusted_proxies
        .iter()
        .any(|p| p.parse::<IpAddr>().is_ok_and(|p| p == peer))
}

/// The customer's address: the last `X-Forwarded-For` entry (the one the trusted proxy added)
/// when the peer is a trusted proxy, else the peer.
pub fn client_address(peer: IpAddr, head: &Head, settings: &Origins) -> IpAddr {
    if !trusted(peer, settings) {
        return peer;
    }
    head.forwarded_for
        .as_deref()
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

/// Whether a page from `head.origin` may open the WebSocket.
pub fn origin_allowed(peer: IpAddr, head: &Head, settings: &Origins) -> bool {
    let Some(origin) = head.origin.as_deref() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if settings.allowed_origins.iter().any(|o| o == "*") {
        return true;
    }
    if !settings.allowed_origins.is_empty() {
        return settings
            .allowed_origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    }
    // Same origin as the widget page.
    let behind_proxy = trusted(peer, settings);
    let scheme = match head.forwarded_proto.as_deref() {
        Some(p) if behind_proxy => p.to_ascii_lowercase(),
        _ => "http".into(),
    };
    let host = match (&head.forwarded_host, &head.host) {
        (Some(h), _) if behind_proxy => h.clone(),
        (_, Some(h)) => h.clone(),
        _ => return false,
    };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// Writes a whole response and closes. A peer that left gets nothing: the connection ends
/// either way and nothing of ours is lost, so a write error needs no handling.
pub async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    csp: &str,
    body: &[u8],
) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {csp}\r\nX-Content-Type-Options: nosniff\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// A close frame with `reason` cut to the 123 bytes a close frame can carry.
pub fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    // A close reason is at most 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Escapes text for an HTML text node or attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(origin: Option<&str>, host: &str) -> Head {
        Head {
            method: "GET".into(),
            path: "/ws".into(),
            host: Some(host.into()),
            origin: origin.map(String::from),
            ..Head::default()
        }
    }

    #[test]
    fn without_a_list_only_the_widgets_own_origin_may_connect() {
        let s = Origins::default();
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(origin_allowed(
            local,
            &head(Some("http://127.0.0.1:8780"), "127.0.0.1:8780"),
            &s
        ));
        assert!(!origin_allowed(
            local,
            &head(Some("http://evil.example"), "127.0.0.1:8780"),
            &s
        ));
        assert!(
            !origin_allowed(local, &head(None, "127.0.0.1:8780"), &s),
            "no origin, no entry"
        );
    }

    #[test]
    fn a_listed_origin_is_allowed_and_others_are_not() {
        let s = Origins {
            allowed_origins: vec!["https://shop.example".into()],
            ..Origins::default()
        };
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(origin_allowed(
            peer,
            &head(Some("https://shop.example"), "x"),
            &s
        ));
        assert!(!origin_allowed(
            peer,
            &head(Some("https://shop.example.evil"), "x"),
            &s
        ));
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let s = Origins {
            trusted_proxies: vec!["10.0.0.1".into()],
            ..Origins::default()
        };
        let mut h = head(Some("https://chat.example"), "127.0.0.1:8780");
        h.forwarded_for = Some("1.2.3.4, 203.0.113.9".into());
        h.forwarded_proto = Some("https".into());
        h.forwarded_host = Some("chat.example".into());
        assert_eq!(
            client_address(proxy, &h, &s),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        assert!(origin_allowed(proxy, &h, &s));
        let stranger: IpAddr = "10.9.9.9".parse().expect("ip");
        assert_eq!(
            client_address(stranger, &h, &s),
            stranger,
            "an untrusted peer's header is ignored"
        );
        assert!(!origin_allowed(stranger, &h, &s));
    }

    #[test]
    fn a_request_head_is_parsed_and_garbage_is_refused() {
        let raw = b"GET /ws?x=1 HTTP/1.1\r\nHost: a:1\r\nUpgrade: websocket\r\nOrigin: http://a:1\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let h = parse_head(raw).expect("head");
        assert_eq!(h.path, "/ws");
        assert!(h.upgrade);
        assert_eq!(h.ws_version.as_deref(), Some("13"));
        assert!(parse_head(b"\x00\x01\x02\r\n\r\n").is_none());
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape_html("<b>\"&'"), "&lt;b&gt;&quot;&amp;&#39;");
    }
}
