//! A customer's browser for the web chat tests: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver), with the chat widget's page helpers.

use crate::mailserver::free_port;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    crate::support::wait_for(WAIT, what, probe)
}

pub(crate) struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn open() -> Self {
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

    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("session")
    }

    pub(crate) fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .expect("open page");
    }

    pub(crate) fn reload(&self) {
        self.runtime
            .block_on(self.client().refresh())
            .expect("reload");
    }

    pub(crate) fn eval(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let field = self.client().find(Locator::Css(css)).await.expect(css);
            field.send_keys(text).await.expect("type");
        });
    }

    pub(crate) fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let button = self.client().find(Locator::Css(css)).await.expect(css);
            button.click().await.expect("click");
        });
    }

    /// The text of every transcript line on the page.
    pub(crate) fn lines(&self) -> Vec<String> {
        let value = self.eval(
            "return [...document.querySelectorAll('#messages .line')].map(l => l.textContent);",
        );
        serde_json::from_value(value).unwrap_or_default()
    }

    pub(crate) fn wait_line(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        until(&format!("{what} on the page"), || {
            self.lines().into_iter().find(|l| test(l))
        })
    }

    pub(crate) fn text_of(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e && !e.hidden ? e.textContent : '';",
            json!(css)
        );
        self.eval(&script).as_str().unwrap_or_default().to_string()
    }

    pub(crate) fn start_chat(&self, url: &str, name: &str, email: &str) {
        self.goto(url);
        self.type_into("#name", name);
        self.type_into("#email", email);
        self.click("#start");
        until("the chat view", || {
            (!self.text_of("#chat").is_empty()).then_some(())
        });
    }

    pub(crate) fn say(&self, text: &str) {
        // A reload may restore what was left in the composer; start from an empty one.
        self.eval("document.getElementById('text').value = ''; return null;");
        self.type_into("#text", text);
        self.click("#send");
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
