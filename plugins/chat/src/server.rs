//! The HTTP side: one listener serving the widget's files and its WebSocket endpoint (`/ws`),
//! with the origin check, the trusted-proxy headers and the per-address connection limit.
//! What a message does to a chat is in `session.rs`; this module only carries it.

use crate::protocol::{ClientMessage, ParseError, ServerMessage};
use crate::session::{Chats, OUTBOX, Outbox};
use crate::settings::Settings;
pub use agentdesk_web::http::escape_html;
use agentdesk_web::http::{self, Head, client_address, close_frame, origin_allowed, read_head};
use agentdesk_web::limits::{
    ConnectionLimits, ConnectionSlot, LimitExceeded, RateLimiter, check_size,
};
use futures_util::{SinkExt, StreamExt};
use plugin_api::{Event, OrderedEmitter};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

/// The widget page, its script and its style sheet: compiled in, nothing fetched at run time.
const WIDGET_HTML: &str = include_str!("widget.html");
const WIDGET_JS: &str = include_str!("widget.js");
const WIDGET_CSS: &str = include_str!("widget.css");
/// How long a connection closed for a limit waits for its messages to be stored (and acked).
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// What every connection shares: settings, the chats, limits and the way to the host.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub settings: Settings,
    /// Every chat.
    pub chats: Mutex<Chats>,
    /// Open connections.
    pub limits: Arc<ConnectionLimits>,
    /// Events for the host, in order (retried while the host's queue is full).
    pub events: OrderedEmitter,
    /// Wakes the store's writer: something changed.
    pub dirty: Notify,
    /// The number of the last batch stored.
    stored: watch::Sender<u64>,
    next_connection: AtomicU64,
    page: String,
}

impl Shared {
    /// Shared state around `chats`.
    pub fn new(settings: Settings, chats: Chats, events: OrderedEmitter) -> Self {
        let limits = Arc::new(ConnectionLimits::new(
            settings.max_connections_per_address,
            settings.max_connections,
        ));
        let page = WIDGET_HTML.replace("{{TITLE}}", &escape_html(&settings.title));
        Shared {
            settings,
            chats: Mutex::new(chats),
            limits,
            events,
            dirty: Notify::new(),
            stored: watch::Sender::new(0),
            next_connection: AtomicU64::new(1),
            page,
        }
    }

    /// The chats, locked (a panic elsewhere never makes them unusable).
    pub fn chats(&self) -> MutexGuard<'_, Chats> {
        self.chats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues events for the host; they go once what they report is stored.
    pub fn emit(&self, events: Vec<Event>) {
        if !events.is_empty() {
            self.chats().report(events);
        }
        self.dirty.notify_one();
    }

    /// Hands stored events to the host in order; returns how many could not go (only after the
    /// emitter stopped: the next start tells the host again, see `Chats::redeliver`).
    pub fn release(&self, events: Vec<Event>) -> usize {
        let total = events.len();
        for (n, event) in events.into_iter().enumerate() {
            if self.events.emit(event).is_err() {
                return total - n;
            }
        }
        0
    }

    /// Notes that batch `number` is stored and wakes whoever waits for it.
    pub fn mark_stored(&self, number: u64) {
        self.stored.send_if_modified(|last| {
            let newer = number > *last;
            *last = (*last).max(number);
            newer
        });
    }

    /// Waits until every change made so far is stored; false when that took longer than
    /// `timeout`.
    pub async fn wait_stored(&self, timeout: Duration) -> bool {
        let wanted = self.chats().taken() + 1;
        let mut stored = self.stored.subscribe();
        self.dirty.notify_one();
        tokio::time::timeout(timeout, stored.wait_for(|last| *last >= wanted))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }
}

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

/// Answers with the chat's own content security policy (its pages load nothing from elsewhere).
async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *";
    http::respond(stream, status, content_type, CSP, body.as_bytes()).await;
}

async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Some(head) = read_head(&mut stream).await else {
        respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
        )
        .await;
        return;
    };
    if head.method != "GET" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        )
        .await;
        return;
    }
    match head.path.as_str() {
        "/" | "/chat" => {
            respond(
                &mut stream,
                "200 OK",
                "text/html; charset=utf-8",
                &shared.page,
            )
            .await;
        }
        "/widget.js" => {
            respond(
                &mut stream,
                "200 OK",
                "text/javascript; charset=utf-8",
                WIDGET_JS,
            )
            .await;
        }
        "/widget.css" => {
            respond(&mut stream, "200 OK", "text/css; charset=utf-8", WIDGET_CSS).await;
        }
        "/ws" => upgrade(stream, peer.ip(), head, shared).await,
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await,
    }
}

async fn upgrade(mut stream: TcpStream, peer: IpAddr, head: Head, shared: Arc<Shared>) {
    let settings = &shared.settings;
    let Some(key) = head.ws_key.clone().filter(|_| head.upgrade) else {
        respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            "WebSocket only\n",
        )
        .await;
        return;
    };
    if head.ws_version.as_deref() != Some("13") {
        respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            "WebSocket 13 only\n",
        )
        .await;
        return;
    }
    if !origin_allowed(peer, &head, &settings.origins()) {
        respond(
            &mut stream,
            "403 Forbidden",
            "text/plain",
            "origin not allowed\n",
        )
        .await;
        return;
    }
    let address = client_address(peer, &head, &settings.origins());
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let mut config = WebSocketConfig::default();
    // Frames far above the message limit are refused by tungstenite itself before buffering;
    // anything up to this size gets our own clear "too large" close.
    let ceiling = settings.max_message_bytes.saturating_mul(4).max(16 * 1024);
    config.max_message_size = Some(ceiling);
    config.max_frame_size = Some(ceiling);
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    let slot = match shared.limits.open(address) {
        Ok(slot) => slot,
        Err(refused) => {
            let code = match refused {
                LimitExceeded::Full => CloseCode::Again,
                _ => CloseCode::Policy,
            };
            let _ = ws
                .close(Some(close_frame(code, &refused.to_string())))
                .await;
            return;
        }
    };
    converse(ws, shared, slot).await;
}

async fn next_out(rx: &mut Option<mpsc::Receiver<ServerMessage>>) -> Option<ServerMessage> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One widget's WebSocket, from the handshake to the close.
async fn converse(ws: WebSocketStream<TcpStream>, shared: Arc<Shared>, slot: ConnectionSlot) {
    let _slot = slot;
    let connection = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let settings = &shared.settings;
    let mut bucket = RateLimiter::new(
        settings.messages_per_second,
        settings.message_burst,
        Instant::now(),
    );
    let mut chat: Option<String> = None;
    let mut outbox: Option<mpsc::Receiver<ServerMessage>> = None;
    let close: Option<CloseFrame> = loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                        break Some(close_frame(CloseCode::Size, &format!("message too large: {e}")));
                    }
                    Some(Err(tokio_tungstenite::tungstenite::Error::Utf8(_))) => {
                        break Some(close_frame(CloseCode::Invalid, "text is not valid UTF-8"));
                    }
                    Some(Err(_)) => break None,
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        break Some(close_frame(CloseCode::Unsupported, "binary messages are not accepted"));
                    }
                    Some(Ok(_)) => continue,
                };
                let now = Instant::now();
                if let Err(e) = bucket.take(now).and_then(|()| check_size(text.as_str(), settings.max_message_bytes.saturating_add(256))) {
                    let code = if matches!(e, LimitExceeded::TooLarge { .. }) { CloseCode::Size } else { CloseCode::Policy };
                    // The acknowledgements already earned go out before the close.
                    if !flush_acknowledged(&shared, &mut sink, &mut outbox).await {
                        break None;
                    }
                    break Some(close_frame(code, &e.to_string()));
                }
                let request = match ClientMessage::parse(text.as_str()) {
                    Ok(request) => request,
                    Err(ParseError::UnknownType(kind)) => {
                        // From a newer widget, say: refused, and the conversation goes on.
                        let reply = ServerMessage::Error { message: format!("unknown message type `{kind}`") }.to_json();
                        if sink.send(Message::text(reply)).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                    Err(ParseError::Malformed) => {
                        break Some(close_frame(CloseCode::Invalid, "message not understood"));
                    }
                };
                match act(&shared, connection, &mut chat, &mut outbox, request, now) {
                    Ok(()) => {}
                    Err(Stop::Close(frame)) => break Some(frame),
                    Err(Stop::Refuse(message)) => {
                        let reply = ServerMessage::Error { message }.to_json();
                        if sink.send(Message::text(reply)).await.is_err() {
                            break None;
                        }
                    }
                }
            }
            out = next_out(&mut outbox) => match out {
                Some(message) => {
                    if sink.send(Message::text(message.to_json())).await.is_err() {
                        break None;
                    }
                }
                // The chat dropped this connection: it fell behind, or another one took over.
                None => break Some(close_frame(CloseCode::Again, "the chat continued on another connection; reconnect to resume")),
            },
        }
    };
    if let Some(id) = &chat {
        shared.chats().detach(id, connection, Instant::now());
    }
    if let Some(frame) = close {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

/// Waits (briefly) for what this connection's chat recorded to be stored, then sends everything
/// the chat has for the widget, acknowledgements included. False when the widget is gone.
async fn flush_acknowledged(
    shared: &Shared,
    sink: &mut futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>,
    outbox: &mut Option<mpsc::Receiver<ServerMessage>>,
) -> bool {
    if !shared.wait_stored(FLUSH_WAIT).await {
        return true;
    }
    let Some(outbox) = outbox else {
        return true;
    };
    while let Ok(message) = outbox.try_recv() {
        if sink.send(Message::text(message.to_json())).await.is_err() {
            return false;
        }
    }
    true
}

enum Stop {
    /// Close the connection with this frame.
    Close(CloseFrame),
    /// Answer with an error; the connection stays open.
    Refuse(String),
}

/// Carries out one widget request.
fn act(
    shared: &Shared,
    connection: u64,
    chat: &mut Option<String>,
    outbox: &mut Option<mpsc::Receiver<ServerMessage>>,
    request: ClientMessage,
    now: Instant,
) -> Result<(), Stop> {
    let settings = &shared.settings;
    let attach = |chats: &mut Chats, id: &str, last_seq: u64| {
        let (tx, rx) = mpsc::channel(OUTBOX);
        chats
            .attach(
                id,
                Outbox { id: connection, tx },
                last_seq,
                settings.max_message_bytes,
            )
            .map(|()| rx)
    };
    let refuse = |e: crate::session::SessionError| Stop::Refuse(e.to_string());
    match request {
        ClientMessage::Start { name, email } => {
            if let Some(previous) = chat.as_deref() {
                let mut chats = shared.chats();
                if chats.is_open(previous) {
                    return Err(Stop::Refuse(
                        "a chat is already open on this connection".into(),
                    ));
                }
                // A new chat after the previous one ended.
                chats.detach(previous, connection, now);
                drop(chats);
                *chat = None;
                *outbox = None;
            }
            check_size(&name, 1000)
                .and_then(|()| check_size(&email, 1000))
                .map_err(|e| Stop::Close(close_frame(CloseCode::Size, &e.to_string())))?;
            let mut chats = shared.chats();
            let (id, events) = chats
                .start(&name, &email, &settings.greeting, &settings.queue, now)
                .map_err(refuse)?;
            *outbox = Some(attach(&mut chats, &id, 0).map_err(refuse)?);
            drop(chats);
            *chat = Some(id);
            shared.emit(events);
        }
        ClientMessage::Resume { token, last_seq } => {
            let mut chats = shared.chats();
            let id = chats.by_token(&token).map_err(refuse)?;
            if let Some(previous) = chat.take() {
                chats.detach(&previous, connection, now);
            }
            *outbox = Some(attach(&mut chats, &id, last_seq).map_err(refuse)?);
            *chat = Some(id);
        }
        ClientMessage::Message { cid, text } => {
            let id = chat
                .as_deref()
                .ok_or_else(|| Stop::Refuse("start a chat first".into()))?;
            check_size(&text, settings.max_message_bytes)
                .map_err(|e| Stop::Close(close_frame(CloseCode::Size, &e.to_string())))?;
            let events = shared
                .chats()
                .customer_message(id, &cid, &text, now)
                .map_err(refuse)?;
            shared.emit(events);
        }
        ClientMessage::Typing { typing } => {
            if let Some(id) = chat.as_deref() {
                let events = shared.chats().customer_typing(id, typing).map_err(refuse)?;
                shared.emit(events);
            }
        }
        ClientMessage::Cobrowse { code } => {
            let id = chat
                .as_deref()
                .ok_or_else(|| Stop::Refuse("start a chat first".into()))?;
            let events = shared.chats().cobrowse_code(id, &code).map_err(refuse)?;
            shared.emit(events);
        }
        ClientMessage::Leave => {
            let id = chat
                .as_deref()
                .ok_or_else(|| Stop::Refuse("no chat to leave".into()))?;
            let events = shared
                .chats()
                .customer_left(id, "The customer ended the chat", now);
            shared.emit(events);
        }
    }
    Ok(())
}
