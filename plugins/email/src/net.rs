//! Connections to the mail servers: TCP, TLS from the first byte or after STARTTLS, with the
//! certificate authorities of a configured PEM file (or the system's). No protocol here.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why talking to a mail server failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The network failed (refused, reset, closed).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The TLS set-up failed (CA file, server name, handshake).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered something the protocol does not allow here.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The server refused a command.
    #[error("{command} refused: {answer}")]
    Refused {
        /// The command (without secrets).
        command: String,
        /// The server's answer.
        answer: String,
    },
    /// No answer in time.
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
}

/// Anything a connection can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The TLS client configuration: the roots of `ca_file`, or the system bundle.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    let path = ca_file.unwrap_or(Path::new("/etc/ssl/certs/ca-certificates.crt"));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| NetError::Tls(format!("cannot read CA file {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(NetError::Tls(format!(
            "no certificate in CA file {}",
            path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A line-oriented connection to a server.
pub struct Conn {
    reader: BufReader<Box<dyn Io>>,
    timeout: Duration,
    // A line read only in part when a wait ran out: kept, so a timeout never loses bytes.
    partial: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects over TCP, with TLS from the first byte when `tls` is given.
    pub async fn connect(
        host: &str,
        port: u16,
        tls: Option<&Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Conn, NetError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| NetError::Timeout(timeout))??;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match tls {
            Some(config) => Box::new(handshake(Box::new(tcp), host, config, timeout).await?),
            None => Box::new(tcp),
        };
        Ok(Conn {
            reader: BufReader::new(io),
            timeout,
            partial: Vec::new(),
        })
    }

    /// Switches to TLS (after the server agreed to STARTTLS).
    pub async fn starttls(
        self,
        host: &str,
        config: &Arc<rustls::ClientConfig>,
    ) -> Result<Conn, NetError> {
        if !self.reader.buffer().is_empty() || !self.partial.is_empty() {
            return Err(NetError::Protocol(
                "the server sent data before the TLS handshake".into(),
            ));
        }
        let timeout = self.timeout;
        let io = self.reader.into_inner();
        let tls = handshake(io, host, config, timeout).await?;
        Ok(Conn {
            reader: BufReader::new(Box::new(tls)),
            timeout,
            partial: Vec::new(),
        })
    }

    /// Reads one line including its CRLF (an error at the end of the stream).
    pub async fn line(&mut self) -> Result<Vec<u8>, NetError> {
        self.line_within(self.timeout).await
    }

    /// Reads one line, waiting at most `wait`.
    pub async fn line_within(&mut self, wait: Duration) -> Result<Vec<u8>, NetError> {
        let read = tokio::time::timeout(wait, self.reader.read_until(b'\n', &mut self.partial))
            .await
            .map_err(|_| NetError::Timeout(wait))??;
        let line = std::mem::take(&mut self.partial);
        if read == 0 || !line.ends_with(b"\n") {
            return Err(NetError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        Ok(line)
    }

    /// Reads exactly `n` bytes (an IMAP literal).
    pub async fn exact(&mut self, n: usize) -> Result<Vec<u8>, NetError> {
        let mut bytes = vec![0; n];
        tokio::time::timeout(self.timeout, self.reader.read_exact(&mut bytes))
            .await
            .map_err(|_| NetError::Timeout(self.timeout))??;
        Ok(bytes)
    }

    /// Writes and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        let stream = self.reader.get_mut();
        tokio::time::timeout(self.timeout, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| NetError::Timeout(self.timeout))??;
        Ok(())
    }
}

async fn handshake(
    io: Box<dyn Io>,
    host: &str,
    config: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<Box<dyn Io>>, NetError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| NetError::Tls(format!("`{host}` is not a valid server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    tokio::time::timeout(timeout, connector.connect(name, io))
        .await
        .map_err(|_| NetError::Timeout(timeout))?
        .map_err(|e| NetError::Tls(e.to_string()))
}
