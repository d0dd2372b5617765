//! Headless Debian Chromium driven through chromedriver (WebDriver, with fantoccini), for the
//! channels with a web page (web chat, co-browse). Both processes start on ports chosen at run
//! time and stop when the `Browser` is dropped, even when a test fails.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// A free TCP port on loopback, chosen now (the mail tests' picker: no two servers of this
/// process get the same one while starting).
pub use crate::mailserver::free_port;

/// Headless Debian Chromium through a chromedriver started on a port chosen now; both are
/// stopped when this is dropped, even when the test fails.
pub struct Browser {
    pub runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn open() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        let profile = tempfile::tempdir().expect("profile dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut browser = Browser {
            runtime,
            client: None,
            driver,
            _profile: profile,
        };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = browser.runtime.block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&url),
            );
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
            }
        };
        browser.client = Some(client);
        browser
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("session")
    }

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .expect("open page");
    }

    pub fn reload(&self) {
        self.runtime
            .block_on(self.client().refresh())
            .expect("reload");
    }

    pub fn eval(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub fn type_into(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let field = self.client().find(Locator::Css(css)).await.expect(css);
            field.send_keys(text).await.expect("type");
        });
    }

    /// Sets the browser window's outer size, in pixels.
    pub fn resize(&self, width: u32, height: u32) {
        self.runtime
            .block_on(self.client().set_window_size(width, height))
            .expect("window size");
    }

    /// Goes into the frame `css` names (scripts and clicks then act inside it).
    pub fn enter_frame(&self, css: &str) {
        self.runtime.block_on(async {
            let frame = self.client().find(Locator::Css(css)).await.expect(css);
            frame.enter_frame().await.expect("enter frame");
        });
    }

    /// Back to the page around the current frame.
    pub fn leave_frame(&self) {
        self.runtime
            .block_on(self.client().enter_parent_frame())
            .expect("leave frame");
    }

    pub fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let button = self.client().find(Locator::Css(css)).await.expect(css);
            button.click().await.expect("click");
        });
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
