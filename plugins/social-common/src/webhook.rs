//! The webhook server: HTTP/1.1 on a TCP port (TLS ends at the reverse proxy in front), one
//! request per connection, a size limit on heads and bodies. The plugin's handler sees the raw
//! body (signatures are over raw bytes) and runs on a blocking thread, so it may sync to disk
//! before it answers. No platform rules here.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One request, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query's decoded name/value pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The HTTP status.
    pub status: u16,
    /// The content type of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl WebhookResponse {
    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        WebhookResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }
    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        WebhookResponse {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }
}

/// What the plugin does with a request; runs on a blocking thread.
pub type Handler = Arc<dyn Fn(WebhookRequest) -> WebhookResponse + Send + Sync>;

/// Decodes `a=1&b=x%20y` (`+` is a space, as in forms).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((n, v)) => (decode(n), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Why a request could not be read; answered with the status and never passed to the handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not HTTP, or cut off.
    #[error("malformed request")]
    Malformed,
    /// The head is larger than we accept.
    #[error("request head too large")]
    HeadTooLarge,
    /// A body without `Content-Length` (chunked uploads are not accepted).
    #[error("Content-Length required")]
    LengthRequired,
    /// The body is larger than the configured limit.
    #[error("body of {0} bytes is over the limit")]
    TooLarge(usize),
}

impl ReadError {
    fn status(&self) -> u16 {
        match self {
            ReadError::Malformed => 400,
            ReadError::HeadTooLarge => 431,
            ReadError::LengthRequired => 411,
            ReadError::TooLarge(_) => 413,
        }
    }
}

async fn read_request(
    stream: &mut TcpStream,
    max_body: usize,
) -> Result<WebhookRequest, ReadError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let (head_len, method, target, headers) = loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| ReadError::Malformed)?;
        if n == 0 {
            return Err(ReadError::Malformed);
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut slots);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(len)) => {
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    len,
                    request.method.unwrap_or_default().to_string(),
                    request.path.unwrap_or_default().to_string(),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(ReadError::HeadTooLarge),
            Err(_) => return Err(ReadError::Malformed),
        }
    };
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let length = match find("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ReadError::Malformed)?,
        None if find("transfer-encoding").is_some() => return Err(ReadError::LengthRequired),
        None => 0,
    };
    if length > max_body {
        return Err(ReadError::TooLarge(length));
    }
    let mut body = buffer.split_off(head_len);
    if body.len() > length {
        body.truncate(length);
    }
    while body.len() < length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| ReadError::Malformed)?;
        if n == 0 {
            return Err(ReadError::Malformed);
        }
        let wanted = (length - body.len()).min(n);
        body.extend_from_slice(&chunk[..wanted]);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target, vec![]),
    };
    Ok(WebhookRequest {
        method,
        path,
        query,
        headers,
        body,
    })
}

async fn write_response(stream: &mut TcpStream, response: &WebhookResponse) {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    // The peer may have gone (it then sends the webhook again): nothing else to do here.
    if stream.write_all(head.as_bytes()).await.is_ok() {
        let _sent = stream.write_all(&response.body).await;
    }
    let _closed = stream.shutdown().await;
}

async fn serve(mut stream: TcpStream, handler: Handler, max_body: usize) {
    let request = tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream, max_body)).await;
    let response = match request {
        Ok(Ok(request)) => match tokio::task::spawn_blocking(move || handler(request)).await {
            Ok(response) => response,
            Err(_) => WebhookResponse::text(500, "the handler failed"),
        },
        Ok(Err(e)) => WebhookResponse::text(e.status(), e.to_string()),
        Err(_) => return,
    };
    write_response(&mut stream, &response).await;
}

/// Accepts connections until `stop` turns true; each is served on its own task.
pub async fn listen(
    listener: TcpListener,
    handler: Handler,
    max_body: usize,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, handler.clone(), max_body));
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_decoded_like_a_form() {
        assert_eq!(
            parse_query("hub.mode=subscribe&hub.challenge=a%20b+c&flag"),
            vec![
                ("hub.mode".to_string(), "subscribe".to_string()),
                ("hub.challenge".to_string(), "a b c".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
    }

    async fn ask(port: u16, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.write_all(raw).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn the_handler_sees_the_raw_body_and_oversized_bodies_never_reach_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handler: Handler = Arc::new(|r: WebhookRequest| {
            WebhookResponse::text(200, format!("{} {} {}", r.method, r.path, r.body.len()))
        });
        let (_stop, stopped) = watch::channel(false);
        tokio::spawn(listen(listener, handler, 10, stopped));
        let ok = ask(
            port,
            b"POST /hook?a=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("POST /hook 5"), "{ok}");
        let big = ask(
            port,
            b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
        )
        .await;
        assert!(big.starts_with("HTTP/1.1 413"), "{big}");
        let bad = ask(port, b"\x00\x01 nonsense\r\n\r\n").await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    }
}
