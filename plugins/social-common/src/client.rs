//! Outbound HTTP/1.1 to a platform's API: plain TCP (the tests' fakes on loopback) or TLS with
//! rustls (production), one request per connection. The error says whether the request could
//! have reached the platform — the difference between "safe to retry" and "outcome unknown".

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response accepted (Messenger attachments are at most 25 MB).
const MAX_RESPONSE: usize = 32 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The request never left: a bad URL, no connection, a failed TLS handshake. Safe to retry.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request was (at least partly) written but no complete answer came: the platform may
    /// or may not have acted on it. Never simply resend a message after this.
    #[error("no answer (the request may have been carried out): {0}")]
    OutcomeUnknown(String),
}

/// A parsed URL: `http(s)://host[:port]/path?query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// True for https.
    pub tls: bool,
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

impl Url {
    /// Parses an absolute http or https URL.
    pub fn parse(url: &str) -> Result<Url, ClientError> {
        let bad = || ClientError::NotSent(format!("not an http(s) URL: {url}"));
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// `host`, or `host:port` when the port is not the scheme's default (the Host header).
    pub fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://host:port` followed by the path without the query (OAuth's base URL).
    pub fn base(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("/");
        let default = if self.tls { 443 } else { 80 };
        let scheme = if self.tls { "https" } else { "http" };
        if self.port == default {
            format!("{scheme}://{}{path}", self.host.to_ascii_lowercase())
        } else {
            format!(
                "{scheme}://{}:{}{path}",
                self.host.to_ascii_lowercase(),
                self.port
            )
        }
    }
}

/// One response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An HTTP client with a deadline per request.
#[derive(Clone)]
pub struct HttpClient {
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The TLS configuration with the roots of `ca_file` (the system bundle when `None`).
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let fail = |e: String| ClientError::NotSent(format!("TLS set-up: {e}"));
    let path = ca_file.unwrap_or(Path::new("/etc/ssl/certs/ca-certificates.crt"));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| fail(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl HttpClient {
    /// A client; `tls` is needed only for https URLs.
    pub fn new(timeout: Duration, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        HttpClient { timeout, tls }
    }

    async fn connect(&self, url: &Url) -> Result<Box<dyn Io>, ClientError> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| ClientError::NotSent(format!("{}:{}: {e}", url.host, url.port)))?;
        if !url.tls {
            return Ok(Box::new(tcp));
        }
        let config = self
            .tls
            .clone()
            .ok_or_else(|| ClientError::NotSent("https without a TLS configuration".into()))?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| ClientError::NotSent(format!("server name {}: {e}", url.host)))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::NotSent(format!("TLS with {}: {e}", url.host)))?;
        Ok(Box::new(tls))
    }

    /// Sends one request and reads the whole answer within the client's deadline.
    /// `headers` must not contain Host, Content-Length or Connection.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, ClientError> {
        let url = Url::parse(url)?;
        let mut stream = tokio::time::timeout(self.timeout, self.connect(&url))
            .await
            .map_err(|_| {
                ClientError::NotSent(format!("no connection within {:?}", self.timeout))
            })??;
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            url.target,
            url.authority(),
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let exchange = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await?;
            stream.flush().await?;
            let mut raw = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&chunk[..n]);
                if raw.len() > MAX_RESPONSE {
                    return Err(std::io::Error::other("response too large"));
                }
                if response_complete(&raw) {
                    break;
                }
            }
            Ok::<_, std::io::Error>(raw)
        };
        let raw = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                ClientError::OutcomeUnknown(format!("no answer within {:?}", self.timeout))
            })?
            .map_err(|e| ClientError::OutcomeUnknown(e.to_string()))?;
        parse_response(&raw).ok_or_else(|| {
            ClientError::OutcomeUnknown("the answer was cut off or is not HTTP".into())
        })
    }
}

/// Status, headers and the head's length.
type Head = (u16, Vec<(String, String)>, usize);

fn split_head(raw: &[u8]) -> Option<Head> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    match response.parse(raw) {
        Ok(httparse::Status::Complete(len)) => {
            let headers = response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            Some((response.code?, headers, len))
        }
        _ => None,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn response_complete(raw: &[u8]) -> bool {
    let Some((_, headers, len)) = split_head(raw) else {
        return false;
    };
    match header(&headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(length) => raw.len() >= len + length,
        None => false,
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if body.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let (status, headers, len) = split_head(raw)?;
    let rest = &raw[len..];
    let body = if header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(length) =
        header(&headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok())
    {
        rest.get(..length)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_port_and_the_oauth_base_drops_the_query() {
        let url =
            Url::parse("http://127.0.0.1:8080/v21.0/me/messages?access_token=x").expect("url");
        assert_eq!((url.tls, url.port), (false, 8080));
        assert_eq!(url.target, "/v21.0/me/messages?access_token=x");
        assert_eq!(url.base(), "http://127.0.0.1:8080/v21.0/me/messages");
        assert_eq!(url.authority(), "127.0.0.1:8080");
        let url = Url::parse("https://API.x.com/2/tweets").expect("url");
        assert_eq!(url.base(), "https://api.x.com/2/tweets");
        assert_eq!(url.authority(), "API.x.com");
        assert!(Url::parse("ftp://x").is_err());
    }

    #[test]
    fn chunked_and_sized_answers_are_read_whole() {
        let sized =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").expect("sized");
        assert_eq!((sized.status, sized.body.as_slice()), (200, &b"{}"[..]));
        let chunked = parse_response(
            b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nx-rate-limit-reset: 9\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!(chunked.body, b"abcde");
        assert_eq!(chunked.header("x-rate-limit-reset"), Some("9"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_none());
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_a_silent_server_is_outcome_unknown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let client = HttpClient::new(Duration::from_millis(300), None);
        let refused = client
            .request("POST", &format!("http://127.0.0.1:{port}/"), &[], b"{}")
            .await;
        assert!(
            matches!(refused, Err(ClientError::NotSent(_))),
            "{refused:?}"
        );
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let held = tokio::spawn(async move { silent.accept().await });
        let unknown = client
            .request("POST", &format!("http://127.0.0.1:{port}/"), &[], b"{}")
            .await;
        assert!(
            matches!(unknown, Err(ClientError::OutcomeUnknown(_))),
            "{unknown:?}"
        );
        held.abort();
    }
}
