//! The HTTP side: one listener serving the customer's script, rrweb, the viewer page, and two
//! WebSockets (`/ws/customer`, `/ws/view/<token>`) with origin checks, size and rate limits.
//! The session rules are in `sessions`, what messages do in `relay`; this module only carries
//! them.

use crate::assets;
use crate::protocol::{CustomerMessage, ToCustomer, ToViewer, ViewerMessage, text};
use crate::relay::{Shared, on_customer, on_viewer, tell};
use agentdesk_web::http::{
    self, Head, Origins, client_address, close_frame, origin_allowed, read_head,
};
use agentdesk_web::limits::{ConnectionSlot, LimitExceeded, RateLimiter, check_size};
use futures_util::{SinkExt, StreamExt};
use plugin_api::EndReason;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

/// Messages waiting for one connection; a viewer that falls this far behind starts over from a
/// full snapshot.
const QUEUE: usize = 256;
/// The pages' policy: our own scripts only; the mirrored page's styles are inline and its images
/// come from the customer's site; nothing may be framed or posted.
const VIEWER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                          img-src http: https: data:; font-src http: https: data:; \
                          connect-src 'self'; frame-src 'self'; base-uri 'none'; \
                          form-action 'none'; frame-ancestors 'none'";
const SCRIPT_CSP: &str = "default-src 'none'";

/// Accepts connections until `stop` turns true.
pub async fn listen(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    tokio::spawn(async move { serve(stream, peer, shared).await });
                }
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = stop.changed() => return,
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let csp = if content_type.starts_with("text/html") {
        VIEWER_CSP
    } else {
        SCRIPT_CSP
    };
    http::respond(stream, status, content_type, csp, body).await;
}

async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    // Small frames should go at once (pointer, mirroring latency); a failure only costs latency.
    let _ = stream.set_nodelay(true);
    let Some(head) = read_head(&mut stream).await else {
        respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
        )
        .await;
        return;
    };
    if head.method != "GET" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
        )
        .await;
        return;
    }
    let js = "text/javascript; charset=utf-8";
    match head.path.as_str() {
        "/cobrowse.js" => respond(&mut stream, "200 OK", js, assets::CUSTOMER_JS.as_bytes()).await,
        "/rrweb.js" => respond(&mut stream, "200 OK", js, assets::RRWEB_JS).await,
        "/rrweb.css" => {
            respond(
                &mut stream,
                "200 OK",
                "text/css; charset=utf-8",
                assets::RRWEB_CSS,
            )
            .await;
        }
        "/viewer.js" => respond(&mut stream, "200 OK", js, assets::VIEWER_JS.as_bytes()).await,
        "/viewer.css" => {
            let css = "text/css; charset=utf-8";
            respond(&mut stream, "200 OK", css, assets::VIEWER_CSS.as_bytes()).await;
        }
        "/ws/customer" => {
            let origins = shared.settings.customer_origins();
            if let Some((ws, slot)) = upgrade(stream, peer.ip(), &head, &origins, &shared).await {
                customer(ws, shared, slot).await;
            }
        }
        path => {
            if let Some(token) = path.strip_prefix("/view/").filter(|t| is_token(t)) {
                let _ = token;
                let page = "text/html; charset=utf-8";
                respond(&mut stream, "200 OK", page, assets::VIEWER_HTML.as_bytes()).await;
            } else if let Some(token) = path.strip_prefix("/ws/view/").filter(|t| is_token(t)) {
                let token = token.to_string();
                let origins = shared.settings.viewer_origins();
                if let Some((ws, slot)) = upgrade(stream, peer.ip(), &head, &origins, &shared).await
                {
                    viewer(ws, shared, slot, token).await;
                }
            } else {
                respond(&mut stream, "404 Not Found", "text/plain", b"not found\n").await;
            }
        }
    }
}

fn is_token(t: &str) -> bool {
    t.len() == 48 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn upgrade(
    mut stream: TcpStream,
    peer: IpAddr,
    head: &Head,
    origins: &Origins,
    shared: &Shared,
) -> Option<(WebSocketStream<TcpStream>, ConnectionSlot)> {
    let Some(key) = head.ws_key.clone().filter(|_| head.upgrade) else {
        respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            b"WebSocket only\n",
        )
        .await;
        return None;
    };
    if head.ws_version.as_deref() != Some("13") {
        respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            b"WebSocket 13 only\n",
        )
        .await;
        return None;
    }
    if !origin_allowed(peer, head, origins) {
        respond(
            &mut stream,
            "403 Forbidden",
            "text/plain",
            b"origin not allowed\n",
        )
        .await;
        return None;
    }
    let address = client_address(peer, head, origins);
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    let mut config = WebSocketConfig::default();
    let ceiling = shared.settings.max_message_bytes.saturating_mul(2);
    config.max_message_size = Some(ceiling);
    config.max_frame_size = Some(ceiling);
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    match shared.limits.open(address) {
        Ok(slot) => Some((ws, slot)),
        Err(refused) => {
            let code = match refused {
                LimitExceeded::Full => CloseCode::Again,
                _ => CloseCode::Policy,
            };
            // Refused either way; a failed close only means the peer left first.
            let _ = ws
                .close(Some(close_frame(code, &refused.to_string())))
                .await;
            None
        }
    }
}

/// Reads the next text message within the limits; `Err` is the close to send.
async fn next_text(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<TcpStream>>,
    bucket: &mut RateLimiter,
    limit: usize,
) -> Result<Option<String>, CloseFrame> {
    loop {
        let text = match stream.next().await {
            None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return Ok(None),
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(Message::Binary(_))) => {
                return Err(close_frame(
                    CloseCode::Unsupported,
                    "binary messages are not accepted",
                ));
            }
            Some(Ok(_)) => continue,
        };
        check_size(&text, limit).map_err(|e| close_frame(CloseCode::Size, &e.to_string()))?;
        bucket
            .take(Instant::now())
            .map_err(|e| close_frame(CloseCode::Policy, &e.to_string()))?;
        return Ok(Some(text));
    }
}

/// One customer page's WebSocket.
async fn customer(ws: WebSocketStream<TcpStream>, shared: Arc<Shared>, slot: ConnectionSlot) {
    let _slot = slot;
    let connection = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let settings = &shared.settings;
    let mut bucket = RateLimiter::new(
        settings.messages_per_second,
        settings.message_burst,
        Instant::now(),
    );
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    let mut code: Option<String> = None;
    let close: Option<CloseFrame> = loop {
        tokio::select! {
            incoming = next_text(&mut stream, &mut bucket, settings.max_message_bytes) => {
                let incoming = match incoming {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) => break None,
                    Err(close) => break Some(close),
                };
                let message = match serde_json::from_str::<CustomerMessage>(&incoming) {
                    Ok(m) => m,
                    Err(_) => break Some(close_frame(CloseCode::Invalid, "message not understood")),
                };
                match on_customer(&shared, &mut code, connection, &tx, message) {
                    Ok(Some(reply)) => {
                        if sink.send(Message::text(reply)).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => {}
                    Err(refusal) => {
                        let reply = text(&ToCustomer::Error { code: refusal.code(), message: &refusal.to_string() });
                        if sink.send(Message::text(reply)).await.is_err() {
                            break None;
                        }
                    }
                }
            }
            out = rx.recv() => {
                let Some(out) = out else { break None };
                let ended = out.starts_with("{\"type\":\"ended\"");
                if sink.send(Message::text(out)).await.is_err() {
                    break None;
                }
                if ended {
                    break Some(close_frame(CloseCode::Normal, "session ended"));
                }
            }
        }
    };
    if let Some(frame) = close {
        // The connection ends either way; a failed close means the page left first.
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    // Gone: the session waits for the page to come back (a reload, another page of the site).
    if let Some(code) = code {
        let mut sessions = shared.sessions();
        if let Some(s) = sessions.get_mut(&code)
            && s.customer_connection == connection
        {
            s.customer = None;
            s.customer_gone_since = Some(Instant::now());
            tell(&s.viewer, text(&ToViewer::Customer { state: "away" }));
        }
    }
}

/// The agent's viewer WebSocket, opened with a one-time token.
async fn viewer(
    ws: WebSocketStream<TcpStream>,
    shared: Arc<Shared>,
    slot: ConnectionSlot,
    token: String,
) {
    let _slot = slot;
    let connection = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    let opened = {
        let mut sessions = shared.sessions();
        let opened = sessions.open_view(&token, Instant::now());
        if let Ok(code) = &opened
            && let Some(s) = sessions.get_mut(code)
        {
            // One viewer at a time: an older one is told and closes.
            tell(&s.viewer, text(&ToViewer::Ended { reason: "replaced" }));
            s.viewer = Some(tx.clone());
            s.viewer_connection = connection;
            let state = if s.customer.is_some() {
                "connected"
            } else {
                "away"
            };
            tell(&s.viewer, text(&ToViewer::Customer { state }));
            tell(&s.customer, text(&ToCustomer::Snapshot));
        }
        opened
    };
    let code = match opened {
        Ok(code) => code,
        Err(refusal) => {
            let reply = text(&ToViewer::Error {
                code: refusal.code(),
                message: &refusal.to_string(),
            });
            // Refused either way; the page shows the reason if it can still read it.
            let _ = sink.send(Message::text(reply)).await;
            let _ = sink
                .send(Message::Close(Some(close_frame(
                    CloseCode::Policy,
                    refusal.code(),
                ))))
                .await;
            return;
        }
    };
    let settings = &shared.settings;
    let mut bucket = RateLimiter::new(
        settings.messages_per_second,
        settings.message_burst,
        Instant::now(),
    );
    let close: Option<CloseFrame> = loop {
        tokio::select! {
            incoming = next_text(&mut stream, &mut bucket, 64 * 1024) => {
                let incoming = match incoming {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) => break None,
                    Err(close) => break Some(close),
                };
                match serde_json::from_str::<ViewerMessage>(&incoming) {
                    Ok(ViewerMessage::Stop) => {
                        shared.end(&code, "agent-ended", Some(EndReason::AgentEnded));
                    }
                    Ok(message) => {
                        if let Err(refusal) = on_viewer(&shared, &code, connection, message) {
                            let reply = text(&ToViewer::Error {
                                code: refusal.code(),
                                message: &refusal.to_string(),
                            });
                            if sink.send(Message::text(reply)).await.is_err() {
                                break None;
                            }
                        }
                    }
                    Err(_) => break Some(close_frame(CloseCode::Invalid, "message not understood")),
                }
            }
            out = rx.recv() => {
                let Some(out) = out else { break None };
                let ended = out.starts_with("{\"type\":\"ended\"");
                if sink.send(Message::text(out)).await.is_err() {
                    break None;
                }
                if ended {
                    break Some(close_frame(CloseCode::Normal, "session ended"));
                }
            }
        }
    };
    if let Some(frame) = close {
        // The connection ends either way.
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let mut sessions = shared.sessions();
    if let Some(s) = sessions.get_mut(&code)
        && s.viewer_connection == connection
    {
        s.viewer = None;
        tell(&s.customer, text(&ToCustomer::Pause));
    }
}
