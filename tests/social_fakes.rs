//! The fakes of the social platforms, started by the tests: Python processes
//! (`tests/fakes/*.py`) on loopback with ports chosen at run time, stopped when dropped, and the
//! Meta webhook items and plugin settings the Messenger tests share.

use crate::support::Install;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const FACEBOOK: &str = "agentdesk.facebook";
pub const PAGE: &str = "PAGE1";
pub const APP_ID: &str = "4242";
pub const APP_SECRET: &str = "fake-app-secret";
pub const TOKEN: &str = "fake-page-token";
pub const VERIFY: &str = "fake-verify-token";
const WAIT: Duration = Duration::from_secs(15);

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A plain HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub fn http(method: &str, url: &str, body: &[u8]) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let head = format!(
        "{method} {} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        if target.is_empty() { "/" } else { target },
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body).expect("write body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Starts `tests/fakes/<script>` with Debian's Python (python3-oauthlib is a Debian package) and
/// waits for its `port N` line; returns the process and its base URL.
pub fn spawn_fake(script: &str, args: &[&str]) -> (Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fakes")
        .join(script);
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("/usr/bin/python3");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("port line");
    let Some(port) = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse::<u16>().ok())
    else {
        let _ = child.kill();
        panic!("the fake did not start: {line:?}");
    };
    (child, format!("http://127.0.0.1:{port}"))
}

/// A fake platform's process (`tests/fakes/*.py`) and its base URL; killed when dropped.
pub struct Fake {
    child: Child,
    pub url: String,
}

impl Fake {
    fn spawn(script: &str, args: &[&str]) -> Self {
        let (child, url) = spawn_fake(script, args);
        Fake { child, url }
    }

    pub fn control(&self, what: &str, body: Value) -> Value {
        let (status, text) = http(
            "POST",
            &format!("{}/_fake/{what}", self.url),
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "fake control {what}: {text}");
        serde_json::from_str(&text).expect("fake json")
    }

    pub fn get(&self, what: &str) -> Value {
        let (status, text) = http("GET", &format!("{}/_fake/{what}", self.url), b"");
        assert_eq!(status, 200, "fake {what}: {text}");
        serde_json::from_str(&text).expect("fake json")
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake Graph API (Meta).
pub struct FakeGraph(Fake);

impl std::ops::Deref for FakeGraph {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

impl FakeGraph {
    pub fn start() -> Self {
        FakeGraph(Fake::spawn(
            "graph_api.py",
            &[
                "--app-secret",
                APP_SECRET,
                "--page-id",
                PAGE,
                "--app-id",
                APP_ID,
                "--token",
                TOKEN,
            ],
        ))
    }

    /// Signs (`sign`: good, bad, none) and delivers one webhook of `entries`, `times` times;
    /// returns the plugin's statuses.
    pub fn deliver(&self, entries: Value, sign: &str, times: u32) -> Vec<u64> {
        let answer = self.control(
            "deliver",
            json!({"entries": entries, "sign": sign, "times": times}),
        );
        answer["status"]
            .as_array()
            .expect("statuses")
            .iter()
            .map(|s| s.as_u64().unwrap_or(0))
            .collect()
    }

    pub fn sent(&self) -> Vec<Value> {
        self.get("sent")["sent"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

pub const TWITTER: &str = "agentdesk.twitter";
pub const X_ACCOUNT: &str = "2244994945";
const X_CONSUMER_KEY: &str = "fake-consumer-key";
const X_CONSUMER_SECRET: &str = "fake-consumer-secret";
const X_TOKEN: &str = "2244994945-fakeAccessToken";
const X_TOKEN_SECRET: &str = "fake-token-secret";

/// The fake X API and its webhook deliveries (Account Activity or X Activity API format).
pub struct FakeX(Fake);

impl std::ops::Deref for FakeX {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

impl FakeX {
    pub fn start() -> Self {
        FakeX(Fake::spawn(
            "x_api.py",
            &[
                "--consumer-key",
                X_CONSUMER_KEY,
                "--consumer-secret",
                X_CONSUMER_SECRET,
                "--token",
                X_TOKEN,
                "--token-secret",
                X_TOKEN_SECRET,
                "--account",
                X_ACCOUNT,
            ],
        ))
    }

    /// Signs (`sign`: good, bad, none) and delivers one activity, `times` times; the statuses.
    pub fn deliver(&self, activity: Value, sign: &str, times: u32) -> Value {
        self.control(
            "deliver",
            json!({"activity": activity, "sign": sign, "times": times}),
        )["status"]
            .clone()
    }

    /// Delivers one activity as the X Activity API does (one signed envelope per event:
    /// `dm.received`, `post.mention.create`); the statuses.
    pub fn deliver_xaa(&self, activity: Value, times: u32) -> Value {
        self.control(
            "deliver",
            json!({"activity": activity, "sign": "good", "times": times, "format": "xaa"}),
        )["status"]
            .clone()
    }

    pub fn sent(&self) -> Value {
        self.get("sent")
    }
}

/// The X plugin's settings section (webhooks on `port`; 0 picks one) and agent Ann on `twitter`.
pub fn x_config_extra(install: &Install, api: &str, port: u16) -> String {
    let secrets = install.dir.path().join("x.secrets");
    std::fs::write(
        &secrets,
        format!(
            "X_CONSUMER_KEY={X_CONSUMER_KEY}\nX_CONSUMER_SECRET={X_CONSUMER_SECRET}\n\
             X_ACCESS_TOKEN={X_TOKEN}\nX_ACCESS_TOKEN_SECRET={X_TOKEN_SECRET}\n"
        ),
    )
    .expect("secrets");
    format!(
        "[plugins.settings.\"{TWITTER}\"]\nport = {port}\naccount_id = \"{X_ACCOUNT}\"\n\
         api_url = \"{api}\"\nsecrets_file = \"{}\"\nsend_timeout_ms = 2000\nretry_first_ms = 50\n\
         [channels.twitter]\ncapacity = 5\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"twitter\"]\n",
        secrets.display()
    )
}

/// A direct message as X's Account Activity API delivers it.
pub fn x_dm(id: &str, sender: &str, handle: &str, text: &str) -> Value {
    json!({
        "direct_message_events": [{"type": "message_create", "id": id,
            "created_timestamp": now_ms().to_string(),
            "message_create": {"target": {"recipient_id": X_ACCOUNT}, "sender_id": sender,
                               "message_data": {"text": text}}}],
        "users": {sender: {"id": sender, "name": format!("Name of {handle}"), "screen_name": handle}}
    })
}

/// A customer's message as Meta delivers it.
pub fn customer(psid: &str, mid: &str, text: &str, at_ms: u64) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": at_ms,
           "message": {"mid": mid, "text": text}})
}

/// One entry with these messaging items.
pub fn entry(items: Vec<Value>) -> Value {
    json!({"messaging": items})
}

/// The plugin's settings section and agent Ann on `facebook`.
pub fn config_extra(install: &Install, graph: &str, port: u16, extra: &str) -> String {
    let secrets = install.dir.path().join("facebook.secrets");
    std::fs::write(
        &secrets,
        format!("FACEBOOK_APP_SECRET={APP_SECRET}\nFACEBOOK_PAGE_TOKEN={TOKEN}\nFACEBOOK_VERIFY_TOKEN={VERIFY}\n"),
    )
    .expect("secrets file");
    format!(
        "[plugins.settings.\"{FACEBOOK}\"]\nport = {port}\npage_id = \"{PAGE}\"\napp_id = \"{APP_ID}\"\n\
         graph_url = \"{graph}/v21.0\"\nsecrets_file = \"{}\"\nsend_timeout_ms = 500\n\
         echo_wait_ms = 1500\nretry_first_ms = 50\nmax_body_bytes = 65536\n{extra}\n\
         [channels.facebook]\ncapacity = 5\n\
         [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"facebook\"]\n",
        secrets.display()
    )
}

/// The webhook URL from the plugin's endpoint.json.
pub fn webhook_url(data: &Path) -> String {
    let path = data.join("plugins").join(FACEBOOK).join("endpoint.json");
    let text = std::fs::read_to_string(&path).expect("endpoint.json");
    let endpoint: Value = serde_json::from_str(&text).expect("endpoint");
    endpoint["url"].as_str().expect("url").to_string()
}
