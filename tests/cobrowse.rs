//! The co-browse channel end to end: the packaged `agentdesk.cobrowse` and `agentdesk.chat`
//! plugins in a real `PluginHost` and core service; the customer in one headless Chromium on an
//! example site this test serves (with the plugin's one script tag), the agent's viewer in a
//! second one; raw WebSockets where a test needs to see or forge the frames themselves.

use crate::browser::{Browser, free_port};
use crate::support::Install;
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::{AgentSession, AgentSnapshot, CoreHandle, CoreService};
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::first_party_library;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CHAT: &str = "agentdesk.chat";
const COBROWSE: &str = "agentdesk.cobrowse";
const WAIT: Duration = Duration::from_secs(15);

fn until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    crate::support::wait_for(WAIT, what, probe)
}

/// The company's example site: two pages carrying the co-browse script tag, served on a port
/// chosen now until dropped.
struct Site {
    origin: String,
    stop: Arc<AtomicBool>,
    /// Requests for the checkout form's action: a form submitted.
    orders: Arc<AtomicUsize>,
}

fn page(cobrowse: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Acme Shop</title></head>\
         <body>{body}<script src=\"{cobrowse}/cobrowse.js\"></script></body></html>"
    )
}

impl Site {
    fn serve(cobrowse: &str) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("site port");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let first = page(
            cobrowse,
            "<h1>Welcome to Acme Shop</h1><p id=\"news\">Nothing new</p>\
             <form id=\"checkout\" action=\"/ordered\">\
             <label>Name <input id=\"name\" name=\"name\"></label>\
             <label>Password <input id=\"password\" name=\"password\" type=\"password\"></label>\
             <label>Card <input id=\"card\" name=\"card\" class=\"ad-mask\"></label>\
             <label>Coupon <input id=\"coupon\" data-ad-restricted></label>\
             <button id=\"bare\">Bare</button>\
             <button type=\"submit\" id=\"pay\">Pay</button></form>\
             <button type=\"button\" id=\"like\" onclick=\"this.textContent='Liked'\">Like</button>\
             <div id=\"secret\" data-ad-block>Loyalty number BLOCKED-4711</div>\
             <a id=\"next\" href=\"/page2\">Next page</a>\
             <div style=\"height:3000px\"></div><p id=\"bottom\">End of the shop</p>",
        );
        let second = page(cobrowse, "<h1>Second page of the shop</h1>");
        // The shop's help page with the web chat widget in a frame (`/chat?widget=<its URL>`).
        let chat = page(
            cobrowse,
            "<h1>Acme help</h1><iframe id=\"widget\" width=\"400\" height=\"500\"></iframe>\
             <script>document.getElementById('widget').src = \
             new URLSearchParams(location.search).get('widget');</script>",
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let orders = Arc::new(AtomicUsize::new(0));
        let ordered = orders.clone();
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut line = String::new();
                let mut reader = BufReader::new(&mut stream);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head is not needed.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                if path.starts_with("/ordered") {
                    ordered.fetch_add(1, Ordering::SeqCst);
                }
                let (status, body) = match path.split('?').next().unwrap_or("/") {
                    "/" => ("200 OK", first.as_str()),
                    "/page2" => ("200 OK", second.as_str()),
                    "/chat" => ("200 OK", chat.as_str()),
                    _ => ("404 Not Found", "not found"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Site {
            origin,
            stop,
            orders,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Chat and co-browse plugins, the core, and agent Ann with both channels.
struct Rig {
    _install: Install,
    _plugins: Arc<PluginHost>,
    service: Option<CoreService>,
    core: CoreHandle,
    /// The co-browse server, e.g. `http://127.0.0.1:40123`.
    cobrowse: String,
    /// The chat's WebSocket and its page's origin.
    chat_ws: String,
    chat_origin: String,
    site: Site,
}

fn endpoint(install: &Install, id: &str) -> Value {
    let path = install.data.join("plugins").join(id).join("endpoint.json");
    let text = std::fs::read_to_string(&path).expect("endpoint.json");
    serde_json::from_str(&text).expect("endpoint json")
}

impl Rig {
    fn new(settings: &str) -> Self {
        let install = Install::new();
        package(&first_party_library("agentdesk_chat"), &install.plugins).expect("package chat");
        package(&first_party_library("agentdesk_cobrowse"), &install.plugins)
            .expect("package co-browse");
        // The site's port must be in the settings before the plugin starts: serve it first,
        // from the plugin's port picked now.
        let port = free_port();
        let cobrowse = format!("http://127.0.0.1:{port}");
        let site = Site::serve(&cobrowse);
        let extra = format!(
            "[plugins.settings.\"{CHAT}\"]\nport = 0\n\
             [plugins.settings.\"{COBROWSE}\"]\nport = {port}\nallowed_origins = [\"{}\"]\n{}\n\
             [channels.chat]\ncapacity = 2\n\
             [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\", \"cobrowse\"]\n",
            site.origin,
            settings.replace("{port}", &port.to_string())
        );
        let path = install.write_config(&[CHAT, COBROWSE], &extra);
        let config = AdminConfig::load(&path).expect("config");
        let policy = Policy::from_config(&config, &["chat".to_string(), "cobrowse".to_string()]);
        let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
        assert_eq!(
            plugins.running_ids(),
            vec![CHAT.to_string(), COBROWSE.to_string()],
            "{:#?}",
            plugins.reports()
        );
        let service = agentdesk_tests::start_core(&install.data, policy, Some(plugins.clone()));
        let core = service.handle();
        let chat = endpoint(&install, CHAT);
        let chat_url = chat["url"].as_str().expect("url").to_string();
        Rig {
            chat_ws: format!("{}ws", chat_url.replacen("http://", "ws://", 1)),
            chat_origin: chat_url.trim_end_matches('/').to_string(),
            cobrowse,
            core,
            service: Some(service),
            _plugins: plugins,
            _install: install,
            site,
        }
    }

    fn ready(&self) -> AgentSession {
        let session = self.core.login("ann").expect("log in");
        for channel in ["chat", "cobrowse"] {
            session
                .send(AgentCommand::LogOnChannel {
                    channel: channel.into(),
                })
                .expect("log on");
            session
                .send(AgentCommand::SetReady {
                    channel: channel.into(),
                })
                .expect("ready");
        }
        session
    }

    fn snapshot(&self) -> AgentSnapshot {
        self.core.snapshot("ann").expect("snapshot").expect("ann")
    }

    /// Waits for an offer on `channel` and accepts it; returns its key.
    fn accept(&self, channel: &str) -> u64 {
        let key = until(&format!("a {channel} offer"), || {
            self.snapshot()
                .interactions
                .iter()
                .find(|i| {
                    i.channel == channel && matches!(i.state, InteractionState::Offered { .. })
                })
                .map(|i| i.key)
        });
        self.core
            .execute("ann", AgentCommand::Accept { key })
            .expect("accept");
        key
    }

    /// The viewer link the plugin put in the co-browse interaction's case data.
    fn view_link(&self, key: u64, not: &str) -> String {
        until("the viewer link", || {
            let snapshot = self.snapshot();
            let i = snapshot.interactions.iter().find(|i| i.key == key)?;
            i.detail
                .case_data
                .iter()
                .find(|f| f.key == "view" && f.value != not)
                .map(|f| f.value.clone())
        })
    }

    /// The co-browse interaction `key` and `carrier` are linked, both ways.
    fn assert_linked(&self, key: u64, carrier: u64) {
        let snapshot = self.snapshot();
        let linked = |a: u64, b: u64| {
            snapshot
                .interactions
                .iter()
                .any(|i| i.key == a && i.linked.contains(&b))
        };
        assert!(linked(key, carrier), "#{key} linked to #{carrier}");
        assert!(linked(carrier, key), "#{carrier} linked to #{key}");
    }

    fn state(&self, key: u64) -> Option<InteractionState> {
        self.snapshot()
            .interactions
            .into_iter()
            .find(|i| i.key == key)
            .map(|i| i.state)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client for the frames themselves.
struct Raw {
    runtime: tokio::runtime::Runtime,
    socket: Socket,
    /// Every text frame received, in order.
    frames: Vec<String>,
}

impl Raw {
    fn connect(url: &str, origin: &str) -> Raw {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let socket = runtime.block_on(async {
            let mut request = url.into_client_request().expect("request");
            request
                .headers_mut()
                .insert("Origin", origin.parse().expect("origin"));
            tokio_tungstenite::connect_async(request)
                .await
                .map(|(socket, _)| socket)
                .expect("connect")
        });
        Raw {
            runtime,
            socket,
            frames: Vec::new(),
        }
    }

    fn send(&mut self, message: Value) {
        self.runtime
            .block_on(self.socket.send(Message::text(message.to_string())))
            .expect("send");
    }

    /// Reads until a frame passes `test` (or the socket closes: `None`).
    fn until(&mut self, test: impl Fn(&Value) -> bool) -> Option<Value> {
        let Raw {
            runtime,
            socket,
            frames,
        } = self;
        runtime.block_on(async {
            let read = async {
                while let Some(Ok(message)) = socket.next().await {
                    if let Message::Text(text) = message {
                        frames.push(text.to_string());
                        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        if test(&value) {
                            return Some(value);
                        }
                    }
                }
                None
            };
            tokio::time::timeout(WAIT, read).await.ok().flatten()
        })
    }

    /// Reads until the server closes; its close code (`None`: no close within the wait).
    fn close_code(&mut self) -> Option<u16> {
        let Raw {
            runtime, socket, ..
        } = self;
        runtime.block_on(async {
            let read = async {
                while let Some(message) = socket.next().await {
                    match message {
                        Ok(Message::Close(Some(frame))) => return Some(u16::from(frame.code)),
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
                None
            };
            tokio::time::timeout(WAIT, read).await.ok().flatten()
        })
    }

    /// Reads whatever arrives for `wait`.
    fn drain(&mut self, wait: Duration) {
        let Raw {
            runtime,
            socket,
            frames,
        } = self;
        runtime.block_on(async {
            let _ = tokio::time::timeout(wait, async {
                while let Some(Ok(message)) = socket.next().await {
                    if let Message::Text(text) = message {
                        frames.push(text.to_string());
                    }
                }
            })
            .await;
        });
    }
}

/// A chat started by a customer on the chat's WebSocket and accepted by Ann; returns the chat's
/// socket and key.
fn accepted_chat(rig: &Rig) -> (Raw, u64) {
    let mut chat = Raw::connect(&rig.chat_ws, &rig.chat_origin);
    chat.send(json!({"type": "start", "name": "Cora", "email": "cora@example.com"}));
    let key = rig.accept("chat");
    chat.until(|m| m["kind"] == "joined")
        .expect("the agent joined the chat");
    (chat, key)
}

impl Browser {
    fn customer_code(&self) -> String {
        until("the co-browse code on the page", || {
            self.eval("return window.AgentdeskCobrowse ? window.AgentdeskCobrowse.code : null;")
                .as_str()
                .map(str::to_string)
        })
    }

    fn customer_state(&self) -> String {
        self.eval("return window.AgentdeskCobrowse ? window.AgentdeskCobrowse.state : '';")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text of the customer's page as the agent's viewer shows it.
    fn mirrored_text(&self) -> String {
        self.eval(
            "const f = document.querySelector('#screen iframe');\
             const d = f && f.contentDocument;\
             return d && d.body ? d.body.innerText + ' ' + [...d.querySelectorAll('input')]\
               .map(i => i.value).join(' ') : '';",
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    fn wait_mirrored(&self, text: &str) {
        until(&format!("`{text}` in the agent's view"), || {
            self.mirrored_text().contains(text).then_some(())
        });
    }
}

/// The customer opens the site and starts co-browsing from their chat: the code goes to the chat
/// (which records it on its interaction), then the session is offered, linked by it. Ann accepts.
/// Returns the co-browse key and its viewer link.
fn linked_session(rig: &Rig, customer: &Browser, chat: &mut Raw, chat_key: u64) -> (u64, String) {
    customer.goto(&format!("{}/", rig.site.origin));
    until("the co-browse button", || {
        let button = customer.eval(
            "const b = document.getElementById('ad-cobrowse-button'); return !!(b && !b.hidden);",
        );
        (button == json!(true)).then_some(())
    });
    customer.click("#ad-cobrowse-button");
    let code = customer.customer_code();
    assert_eq!(code.len(), 9, "{code}");
    // The page's button offered the session already; it waits for the chat to carry the code.
    chat.send(json!({"type": "cobrowse", "code": code}));
    let key = rig.accept("cobrowse");
    rig.assert_linked(key, chat_key);
    until("the customer's banner", || {
        (customer.customer_state() == "active").then_some(())
    });
    (key, rig.view_link(key, ""))
}

#[test]
fn the_agent_sees_the_page_follow_a_change_and_a_navigation_and_the_customers_stop_ends_the_view() {
    // Viewer links name the public address, not the listening one.
    let rig = Rig::new("public_url = \"http://localhost:{port}\"");
    let _ann = rig.ready();
    let (mut chat, chat_key) = accepted_chat(&rig);
    let customer = Browser::open();
    let agent = Browser::open();
    let (key, link) = linked_session(&rig, &customer, &mut chat, chat_key);
    let public = rig.cobrowse.replace("127.0.0.1", "localhost");
    assert!(link.starts_with(&format!("{public}/view/")), "{link}");
    agent.goto(&link);
    agent.wait_mirrored("Welcome to Acme Shop");
    customer.eval("document.getElementById('news').textContent = 'Price drop today'; return null;");
    agent.wait_mirrored("Price drop today");
    // A scroll, and a window of another size: the view follows both.
    customer.eval("window.scrollTo(0, 900); return null;");
    until("the view scrolled with the page", || {
        let top = agent.eval(
            "const f = document.querySelector('#screen iframe'); const d = f && f.contentDocument;\
             return d && d.scrollingElement ? d.scrollingElement.scrollTop : 0;",
        );
        (top.as_f64().unwrap_or(0.0) >= 800.0).then_some(())
    });
    let before = customer
        .eval("return window.innerWidth;")
        .as_u64()
        .unwrap_or(0);
    customer.resize(640, 560);
    let width = until("the customer's window resized", || {
        let w = customer.eval("return window.innerWidth;").as_u64()?;
        (w != before).then_some(w)
    });
    until("the view as wide as the customer's window", || {
        let shown = agent.eval(
            "const f = document.querySelector('#screen iframe'); return f ? f.getAttribute('width') : null;",
        );
        (shown.as_str() == Some(width.to_string().as_str())).then_some(())
    });
    // Another page of the same site: the script resumes the session there.
    customer.click("#next");
    agent.wait_mirrored("Second page of the shop");
    // The link was for one opening.
    let again = Browser::open();
    again.goto(&link);
    until("the used link refused", || {
        (again.eval("return window.viewerState && window.viewerState.error;")
            == json!("bad-view-link"))
        .then_some(())
    });
    until("the Stop button", || {
        (customer.eval("return !document.getElementById('ad-cobrowse-stop').hidden;")
            == json!(true))
        .then_some(())
    });
    customer.click("#ad-cobrowse-stop");
    until("the view ended", || {
        (agent.eval("return window.viewerState.ended;") == json!("customer-stopped")).then_some(())
    });
    until("nothing of the page left on the agent's screen", || {
        agent.mirrored_text().is_empty().then_some(())
    });
    until("the co-browse interaction ended", || {
        matches!(
            rig.state(key),
            Some(InteractionState::Ended | InteractionState::Done) | None
        )
        .then_some(())
    });
    assert!(
        matches!(rig.state(chat_key), Some(InteractionState::Active)),
        "the chat goes on"
    );
}

/// Every string in a decoded frame, and the frame's text, for searching.
fn decoded(frames: &[String]) -> Vec<String> {
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = frames.to_vec();
    for f in frames {
        if let Ok(v) = serde_json::from_str::<Value>(f) {
            strings(&v, &mut out);
        }
    }
    out
}

#[test]
fn masked_fields_and_blocked_elements_never_leave_the_customers_browser_while_others_do() {
    let rig = Rig::new("");
    let _ann = rig.ready();
    let (mut chat, chat_key) = accepted_chat(&rig);
    let customer = Browser::open();
    let (key, link) = linked_session(&rig, &customer, &mut chat, chat_key);
    // A viewer on a raw WebSocket sees exactly what the relay sends.
    let token = link.rsplit('/').next().expect("token").to_string();
    let viewer_ws = format!(
        "{}/ws/view/{token}",
        rig.cobrowse.replacen("http://", "ws://", 1)
    );
    let mut viewer = Raw::connect(&viewer_ws, &rig.cobrowse);
    viewer
        .until(|m| {
            m["type"] == "events" && m["events"].to_string().contains("Welcome to Acme Shop")
        })
        .expect("the full snapshot");
    let name = "Cora Customer-Unmasked";
    let password = "Zq8!hunter-Vx";
    let card = "4929 5839 7710 2468";
    customer.type_into("#name", name);
    customer.type_into("#password", password);
    customer.type_into("#card", card);
    // The positive control: the unmasked field's last value arrives.
    viewer
        .until(|m| m.to_string().contains(name))
        .expect("the unmasked value is relayed");
    viewer.drain(Duration::from_millis(700));
    let all = decoded(&viewer.frames);
    assert!(
        all.iter().any(|s| s.contains("********")),
        "masked input events were sent, masked"
    );
    for (secret, shortest) in [(password, 3), (card, 6)] {
        for end in shortest..=secret.len() {
            let prefix = &secret[..end];
            assert!(
                !all.iter().any(|s| s.contains(prefix)),
                "`{prefix}` (typed into a masked field) left the customer's browser"
            );
        }
    }
    assert!(
        !all.iter().any(|s| s.contains("BLOCKED-4711")),
        "a blocked element was sent"
    );
    // The agent's own viewer (a new one-time link) shows the same: masks, no blocked element.
    rig.core
        .interact(
            "ann",
            key,
            agentdesk_host::service::Interact::Action("new-view-link".into()),
        )
        .expect("new link");
    let second = rig.view_link(key, &link);
    let agent = Browser::open();
    agent.goto(&second);
    agent.wait_mirrored(name);
    let shown = agent.mirrored_text();
    assert!(
        !shown.contains(password) && !shown.contains("4929") && !shown.contains("BLOCKED-4711"),
        "{shown}"
    );
    let dom = agent.eval(
        "const d = document.querySelector('#screen iframe').contentDocument;\
         return d.documentElement.outerHTML;",
    );
    let dom = dom.as_str().unwrap_or_default();
    assert!(dom.contains("Welcome to Acme Shop"));
    assert!(!dom.contains(password) && !dom.contains("4929") && !dom.contains("BLOCKED-4711"));
    // The raw viewer was replaced by the agent's.
    assert!(viewer.until(|m| m["type"] == "ended").is_some());
}

#[test]
fn a_used_or_expired_code_and_a_code_no_chat_carries_are_refused() {
    let rig = Rig::new("code_ttl_secs = 1");
    let _ann = rig.ready();
    let customer_ws = format!(
        "{}/ws/customer",
        rig.cobrowse.replacen("http://", "ws://", 1)
    );
    // Expired: offered after its time to live.
    let mut late = Raw::connect(&customer_ws, &rig.site.origin);
    late.send(json!({"type": "start"}));
    let session = late.until(|m| m["type"] == "session").expect("a code");
    let code = session["code"].as_str().expect("code").to_string();
    assert!(
        code.len() == 9 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    late.send(json!({"type": "offer"}));
    let refused = late
        .until(|m| m["type"] == "error" || m["type"] == "ended")
        .expect("refused");
    assert!(
        refused["code"] == "code-expired" || refused["reason"] == "expired",
        "{refused}"
    );
    // Used: a second offer with the same code; and a code no chat carries is never routed.
    let mut customer = Raw::connect(&customer_ws, &rig.site.origin);
    customer.send(json!({"type": "start"}));
    customer.until(|m| m["type"] == "session").expect("a code");
    customer.send(json!({"type": "offer"}));
    customer.until(|m| m["type"] == "offered").expect("offered");
    customer.send(json!({"type": "offer"}));
    let used = customer.until(|m| m["type"] == "error").expect("refused");
    assert_eq!(used["code"], "code-used", "{used}");
    let ended = customer.until(|m| m["type"] == "ended").expect("given up");
    assert_eq!(ended["reason"], "not-linked", "{ended}");
    assert!(
        rig.snapshot()
            .interactions
            .iter()
            .all(|i| i.channel != "cobrowse"
                || !matches!(
                    i.state,
                    InteractionState::Offered { .. } | InteractionState::Active
                )),
        "nothing reached Ann"
    );
    // Resuming an ended session is refused.
    let secret = session["secret"].as_str().expect("secret");
    let mut back = Raw::connect(&customer_ws, &rig.site.origin);
    back.send(json!({"type": "resume", "code": code, "secret": secret}));
    let refused = back.until(|m| m["type"] == "error").expect("refused");
    assert!(
        refused["code"] == "code-used" || refused["code"] == "unknown-code",
        "{refused}"
    );
}

#[test]
fn pages_from_other_origins_oversize_messages_and_floods_are_refused() {
    let rig = Rig::new("max_message_bytes = 2048\nmessages_per_second = 5\nmessage_burst = 5");
    let customer_ws = format!(
        "{}/ws/customer",
        rig.cobrowse.replacen("http://", "ws://", 1)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let refused = runtime.block_on(async {
        let mut request = customer_ws.as_str().into_client_request().expect("request");
        request
            .headers_mut()
            .insert("Origin", "http://evil.example".parse().expect("origin"));
        tokio_tungstenite::connect_async(request).await
    });
    assert!(refused.is_err(), "another origin's page is refused");
    let mut big = Raw::connect(&customer_ws, &rig.site.origin);
    big.send(json!({"type": "events", "events": ["x".repeat(4000)]}));
    assert_eq!(big.close_code(), Some(1009), "too large");
    let mut flood = Raw::connect(&customer_ws, &rig.site.origin);
    for _ in 0..30 {
        if flood
            .runtime
            .block_on(flood.socket.send(Message::text("{\"type\":\"stop\"}")))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(flood.close_code(), Some(1008), "too many messages");
    // The plugin still serves its script and keeps running.
    let script = runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(rig.cobrowse.trim_start_matches("http://"))
            .await
            .expect("connect");
        let (mut r, mut w) = stream.into_split();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        w.write_all(b"GET /cobrowse.js HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut text = String::new();
        r.read_to_string(&mut text).await.expect("read");
        text
    });
    assert!(script.starts_with("HTTP/1.1 200") && script.contains("AgentdeskCobrowse"));
}

impl Browser {
    /// Runs `script` with `el`, the mirrored element `css`, in the agent's viewer (events it
    /// dispatches go through the viewer's own listeners, as the agent's clicks and typing do).
    fn on_mirrored(&self, css: &str, script: &str) -> Value {
        self.eval(&format!(
            "const d = document.querySelector('#screen iframe').contentDocument;\
             const el = d.querySelector({}); if (!el) return 'missing'; {script}",
            json!(css)
        ))
    }

    fn viewer(&self, field: &str) -> Value {
        self.eval(&format!("return window.viewerState.{field};"))
    }
}

#[test]
fn pointer_mode_cannot_act_and_write_mode_needs_approval_and_never_submits_a_form() {
    let rig = Rig::new("");
    let _ann = rig.ready();
    let (mut chat, chat_key) = accepted_chat(&rig);
    let customer = Browser::open();
    let agent = Browser::open();
    let (key, link) = linked_session(&rig, &customer, &mut chat, chat_key);
    agent.goto(&link);
    agent.wait_mirrored("Welcome to Acme Shop");
    let click = "el.click(); return 'ok';";
    // Pointer mode: the agent's pointer and a highlight box show on the customer's page.
    agent.eval(
        "const r = document.querySelector('#screen iframe').getBoundingClientRect();\
         document.getElementById('screen').dispatchEvent(new MouseEvent('mousemove',\
           {bubbles: true, clientX: r.left + 20, clientY: r.top + 20})); return null;",
    );
    until("the agent's pointer on the customer's page", || {
        let shown = customer.eval(
            "const p = document.getElementById('ad-cobrowse-pointer');\
             return p && p.style.display === 'block' ? p.style.left : null;",
        );
        (shown == json!("20px")).then_some(())
    });
    // ... and it cannot click.
    agent.on_mirrored("#like", click);
    until("the click refused", || {
        (agent.viewer("errors.length") == json!(1)).then_some(())
    });
    // Asked, not yet approved: still refused.
    agent.click("#write");
    until("the request in the customer's banner", || {
        (customer.eval("return document.getElementById('ad-cobrowse-button').textContent;")
            == json!("Allow"))
        .then_some(())
    });
    agent.on_mirrored("#like", click);
    until("the click refused again", || {
        (agent.viewer("errors.length") == json!(2)).then_some(())
    });
    assert_eq!(
        customer.eval("return document.getElementById('like').textContent;"),
        json!("Like")
    );
    customer.click("#ad-cobrowse-button");
    until("write mode on the agent's side", || {
        (agent.viewer("write") == json!("granted")).then_some(())
    });
    // Approved: the agent types into a field and clicks a plain button.
    agent.on_mirrored(
        "#name",
        "el.value = 'Typed by the agent'; el.dispatchEvent(new Event('input', {bubbles: true}));\
         return 'ok';",
    );
    until("the agent's value in the customer's field", || {
        (customer.eval("return document.getElementById('name').value;")
            == json!("Typed by the agent"))
        .then_some(())
    });
    agent.on_mirrored("#like", click);
    until("the agent's click on the customer's page", || {
        (customer.eval("return document.getElementById('like').textContent;") == json!("Liked"))
            .then_some(())
    });
    // Neither a submit button, a bare button in the form, Enter in a field, nor a restricted
    // field works from the agent's side.
    agent.on_mirrored("#pay", click);
    agent.on_mirrored("#bare", click);
    agent.on_mirrored(
        "#name",
        "el.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));\
         return 'ok';",
    );
    agent.on_mirrored(
        "#coupon",
        "el.value = 'FREE'; el.dispatchEvent(new Event('input', {bubbles: true})); return 'ok';",
    );
    let refused = until("four refusals", || {
        let refused = agent.viewer("refused");
        (refused.as_array().map(Vec::len) == Some(4)).then_some(refused)
    });
    assert_eq!(
        refused,
        json!([
            "submits a form",
            "submits a form",
            "submits a form",
            "restricted"
        ])
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.site.orders.load(Ordering::SeqCst),
        0,
        "no form was submitted"
    );
    assert_eq!(
        customer.eval("return location.pathname + ' ' + document.getElementById('coupon').value;"),
        json!("/ ")
    );
    // The customer takes control back: the agent's clicks are refused again.
    customer.click("#ad-cobrowse-button");
    until("pointer mode again", || {
        (agent.viewer("write") == json!("off")).then_some(())
    });
    agent.on_mirrored("#next", click);
    until("the click refused", || {
        (agent.viewer("errors.length") == json!(3)).then_some(())
    });
    assert_eq!(customer.eval("return location.pathname;"), json!("/"));
    // The agent stops: both sides end, and the core's interaction too.
    agent.click("#stop");
    until("the customer's session ended", || {
        (customer.eval("return window.AgentdeskCobrowse.ended;") == json!("agent-ended"))
            .then_some(())
    });
    until("the co-browse interaction ended", || {
        matches!(
            rig.state(key),
            Some(InteractionState::Ended | InteractionState::Done) | None
        )
        .then_some(())
    });
}

#[test]
fn hostile_events_from_the_customer_side_stay_inert_in_the_agents_viewer() {
    let rig = Rig::new("");
    let _ann = rig.ready();
    let (mut chat, _chat_key) = accepted_chat(&rig);
    let customer_ws = format!(
        "{}/ws/customer",
        rig.cobrowse.replacen("http://", "ws://", 1)
    );
    let mut customer = Raw::connect(&customer_ws, &rig.site.origin);
    customer.send(json!({"type": "start"}));
    let session = customer.until(|m| m["type"] == "session").expect("a code");
    chat.send(json!({"type": "cobrowse", "code": session["code"]}));
    customer.send(json!({"type": "offer"}));
    let key = rig.accept("cobrowse");
    let agent = Browser::open();
    agent.goto(&rig.view_link(key, ""));
    customer
        .until(|m| m["type"] == "snapshot")
        .expect("asked for a snapshot");
    let at = 1_700_000_000_000u64;
    let element = |id: u64, tag: &str, attributes: Value, children: Vec<Value>| json!({"type": 2, "id": id, "tagName": tag, "attributes": attributes, "childNodes": children});
    let text = |id: u64, text: &str| json!({"type": 3, "id": id, "textContent": text});
    let body = element(
        5,
        "body",
        json!({"onload": "window.top.pwned = 'onload'"}),
        vec![
            element(6, "p", json!({}), vec![text(7, "Hostile page shown")]),
            element(
                8,
                "img",
                json!({"src": "data:,x", "onerror": "window.top.pwned = 'onerror'"}),
                vec![],
            ),
            element(
                9,
                "a",
                json!({"id": "evil", "href": "javascript:window.top.pwned = 'href'"}),
                vec![text(10, "click me")],
            ),
            element(
                11,
                "iframe",
                json!({"srcdoc": "<script>window.top.pwned = 'srcdoc'</script>"}),
                vec![],
            ),
            element(
                12,
                "script",
                json!({}),
                vec![text(13, "window.top.pwned = 'script'")],
            ),
            element(14, "script", json!({"src": "/viewer.js"}), vec![]),
            element(
                15,
                "svg",
                json!({"onload": "window.top.pwned = 'svg'"}),
                vec![],
            ),
        ],
    );
    let document = json!({"type": 0, "id": 1, "childNodes": [
        {"type": 1, "id": 2, "name": "html", "publicId": "", "systemId": ""},
        element(3, "html", json!({}), vec![element(4, "head", json!({}), vec![]), body]),
    ]});
    customer.send(json!({"type": "events", "events": [
        {"type": 4, "data": {"href": "http://127.0.0.1/", "width": 800, "height": 600}, "timestamp": at},
        {"type": 2, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}, "timestamp": at + 1},
    ]}));
    // A later change adds an event handler and a script to what is shown.
    customer.send(json!({"type": "events", "events": [
        {"type": 3, "timestamp": at + 2, "data": {"source": 0, "texts": [], "removes": [],
          "attributes": [{"id": 6, "attributes": {"onmouseover": "window.top.pwned = 'attr'"}}],
          "adds": [{"parentId": 5, "nextId": null, "node":
            element(16, "script", json!({}), vec![text(17, "window.top.pwned = 'added'")])}]}},
    ]}));
    agent.wait_mirrored("Hostile page shown");
    assert_eq!(
        agent.on_mirrored("#evil", "return el.getAttribute('href');"),
        json!("javascript:window.top.pwned = 'href'"),
        "the crafted link is in the mirror"
    );
    agent.on_mirrored("#evil", "el.click(); return null;");
    agent.on_mirrored(
        "p",
        "el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); return null;",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        agent.eval(
            "const f = document.querySelector('#screen iframe');\
             return [String(window.pwned), String(f.contentWindow.pwned), f.getAttribute('sandbox')];"
        ),
        json!(["undefined", "undefined", "allow-same-origin"]),
        "nothing the customer side sent ran in the agent's viewer"
    );
}

#[test]
fn a_dropped_customer_connection_resumes_from_a_full_snapshot_and_the_viewer_is_told() {
    let rig = Rig::new("");
    let _ann = rig.ready();
    let (mut chat, _chat_key) = accepted_chat(&rig);
    let customer_ws = format!(
        "{}/ws/customer",
        rig.cobrowse.replacen("http://", "ws://", 1)
    );
    let mut customer = Raw::connect(&customer_ws, &rig.site.origin);
    customer.send(json!({"type": "start"}));
    let session = customer.until(|m| m["type"] == "session").expect("a code");
    chat.send(json!({"type": "cobrowse", "code": session["code"]}));
    customer.send(json!({"type": "offer"}));
    let key = rig.accept("cobrowse");
    let link = rig.view_link(key, "");
    let token = link.rsplit('/').next().expect("token").to_string();
    let viewer_ws = format!(
        "{}/ws/view/{token}",
        rig.cobrowse.replacen("http://", "ws://", 1)
    );
    let mut viewer = Raw::connect(&viewer_ws, &rig.cobrowse);
    customer
        .until(|m| m["type"] == "snapshot")
        .expect("asked for a snapshot");
    drop(customer);
    viewer
        .until(|m| m["type"] == "customer" && m["state"] == "away")
        .expect("the viewer is told the page is away");
    let mut back = Raw::connect(&customer_ws, &rig.site.origin);
    back.send(json!({"type": "resume", "code": session["code"], "secret": session["secret"]}));
    let resumed = back.until(|m| m["type"] == "resumed").expect("resumed");
    assert_eq!(resumed["phase"], "active");
    back.until(|m| m["type"] == "snapshot")
        .expect("a reconnect starts from a full snapshot");
    viewer
        .until(|m| m["type"] == "customer" && m["state"] == "connected")
        .expect("the viewer is told the page is back");
    back.send(json!({"type": "events", "events": [{"type": 4, "timestamp": 1, "data": {"href": "x", "width": 1, "height": 1}}]}));
    viewer
        .until(|m| m["type"] == "events")
        .expect("the resumed page's events reach the viewer");
    assert!(
        matches!(rig.state(key), Some(InteractionState::Active)),
        "the interaction went on"
    );
}

#[test]
fn the_chat_widgets_button_and_a_code_the_agent_types_on_a_call_each_link_a_session() {
    let rig = Rig::new("[channels.cobrowse]\ncapacity = 2");
    let ann = rig.ready();
    // The widget's own button: the customer chats in the widget framed by the shop's help page;
    // its Co-browse button asks the page's script for a session, and the code goes into the chat.
    let customer = Browser::open();
    customer.goto(&format!(
        "{}/chat?widget={}/",
        rig.site.origin, rig.chat_origin
    ));
    until("the widget in its frame", || {
        (customer.eval("const f = document.getElementById('widget'); return !!(f && f.src);")
            == json!(true))
        .then_some(())
    });
    customer.enter_frame("#widget");
    until("the widget's form", || {
        (!customer.text_of("#start-form").is_empty()).then_some(())
    });
    customer.type_into("#name", "Cora");
    customer.type_into("#email", "cora@example.com");
    customer.click("#start");
    let chat_key = rig.accept("chat");
    until("the widget's Co-browse button", || {
        (!customer.text_of("#cobrowse").is_empty()).then_some(())
    });
    customer.click("#cobrowse");
    let key = rig.accept("cobrowse");
    rig.assert_linked(key, chat_key);
    customer.leave_frame();
    until("the customer's banner", || {
        (customer.customer_state() == "active").then_some(())
    });

    // During a call the customer presses the page's own button and reads the code out; the offer
    // waits (nothing carries the code yet) until Ann types it, spaces and all, on her call. (The
    // carrier here is a second conversation of Ann's: the core links by the interaction, whatever
    // its channel; the desk offers the field on calls.)
    let (_call, call_key) = accepted_chat(&rig);
    let caller = Browser::open();
    caller.goto(&format!("{}/", rig.site.origin));
    until("the page's Co-browse button", || {
        let shown = caller.eval(
            "const b = document.getElementById('ad-cobrowse-button'); return !!(b && !b.hidden);",
        );
        (shown == json!(true)).then_some(())
    });
    caller.click("#ad-cobrowse-button");
    let code = caller.customer_code();
    until("the session offered", || {
        (caller.customer_state() == "offered").then_some(())
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        rig.snapshot()
            .interactions
            .iter()
            .all(|i| i.channel != "cobrowse"
                || i.key == key
                || !matches!(i.state, InteractionState::Offered { .. })),
        "nothing reaches Ann before she types the code"
    );
    // Another's code on nothing of hers, or a code on what is not hers, is refused.
    let typed = format!("{} {} {}", &code[..3], &code[3..6], &code[6..]);
    let refused = ann.send(AgentCommand::LinkCode {
        key: 999_999,
        code: typed.clone(),
    });
    assert!(refused.is_err(), "{refused:?}");
    rig.core
        .execute(
            "ann",
            AgentCommand::LinkCode {
                key: call_key,
                code: typed,
            },
        )
        .expect("the code typed on the call");
    let second = rig.accept("cobrowse");
    rig.assert_linked(second, call_key);
    until("the caller's banner", || {
        (caller.customer_state() == "active").then_some(())
    });
}

#[test]
fn a_viewer_that_falls_behind_starts_over_from_a_full_snapshot_and_keeps_following() {
    let rig = Rig::new("messages_per_second = 100000\nmessage_burst = 100000");
    let _ann = rig.ready();
    let (mut chat, _chat_key) = accepted_chat(&rig);
    let ws = rig.cobrowse.replacen("http://", "ws://", 1);
    let mut customer = Raw::connect(&format!("{ws}/ws/customer"), &rig.site.origin);
    customer.send(json!({"type": "start"}));
    let session = customer.until(|m| m["type"] == "session").expect("a code");
    chat.send(json!({"type": "cobrowse", "code": session["code"]}));
    customer.send(json!({"type": "offer"}));
    let key = rig.accept("cobrowse");
    let link = rig.view_link(key, "");
    let token = link.rsplit('/').next().expect("token").to_string();
    // The viewer opens, then reads nothing while the page changes a lot.
    let mut viewer = Raw::connect(&format!("{ws}/ws/view/{token}"), &rig.cobrowse);
    customer
        .until(|m| m["type"] == "snapshot")
        .expect("asked for a snapshot when the viewer opened");
    let snapshots = |c: &Raw| {
        c.frames
            .iter()
            .filter(|f| f.contains("\"snapshot\""))
            .count()
    };
    let asked = snapshots(&customer);
    let pad = "x".repeat(60_000);
    let mut sent = 0;
    while snapshots(&customer) == asked {
        assert!(sent < 3_000, "never told to start the viewer over");
        let event = json!({"type": 3, "timestamp": sent, "data": {"source": 0, "texts": [],
            "attributes": [], "removes": [], "adds": [], "pad": pad}});
        customer.send(json!({"type": "events", "events": [event]}));
        sent += 1;
        if sent % 25 == 0 {
            customer.drain(Duration::from_millis(1));
        }
    }
    // The viewer catches up, and what the page sends next reaches it: the session went on.
    viewer.drain(Duration::from_millis(500));
    customer.send(json!({"type": "events", "events": [{"type": 2, "timestamp": 1,
        "data": {"node": {"type": 0, "childNodes": [], "id": 1}, "initialOffset": {"left": 0, "top": 0}},
        "marker": "after-the-fall"}]}));
    viewer
        .until(|m| m["type"] == "events" && m.to_string().contains("after-the-fall"))
        .expect("the viewer follows again");
    assert!(
        matches!(rig.state(key), Some(InteractionState::Active)),
        "the co-browse went on"
    );
}
