//! Headless Chromium for tests: chromedriver on a free port, one WebDriver session (its
//! own profile, so its own cookies) per simulated person, and small helpers that wait for
//! a condition in the page instead of sleeping.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::support::Reaped;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a step waits for.
const PATIENCE: Duration = Duration::from_secs(45);

/// A running chromedriver, killed on drop.
pub struct Driver {
    child: Reaped,
    url: String,
}

impl Driver {
    /// Starts chromedriver; panics with the packages to install when it is missing.
    pub fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "browser tests need Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver"
        );
        // A port found free may be taken before chromedriver binds it (tests running
        // beside this one pick theirs the same way): then it exits, or something else
        // answers there. Try again on another port until chromedriver itself answers.
        for _ in 0..10 {
            if let Some(driver) = Self::start_once() {
                return driver;
            }
        }
        panic!("chromedriver did not start");
    }

    fn start_once() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Self {
            child: Reaped(child),
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if driver.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if is_chromedriver(port) {
                return Some(driver);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Whether what listens on `port` is a ready chromedriver (its `/status`; it keeps the
/// connection open, so the answer is read until it says so).
fn is_chromedriver(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(read @ 1..) = stream.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..read]);
        if String::from_utf8_lossy(&answer).contains("\"ready\":true") {
            return true;
        }
    }
    false
}

/// One person's browser on the site at `base`.
pub struct Browser {
    client: Client,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A new headless browser with an empty profile.
    pub async fn open(driver: &Driver, base: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1000,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a WebDriver session");
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            _profile: profile,
        }
    }

    /// Opens `path` on the site.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The current URL.
    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// Registers `name` (and is then signed in).
    pub async fn register(&self, name: &str) {
        self.goto("/register").await;
        self.fill("input[name=username]", name).await;
        self.fill("input[name=password]", "correct horse battery")
            .await;
        self.submit("#register-form").await;
        self.wait_for(
            "signed in",
            &format!("document.querySelector('h1').textContent === 'Hello, {name}'"),
        )
        .await;
    }

    /// Creates a room of `kind` (public, group) named `name`; the room page is open then.
    pub async fn create_room(&self, name: &str, kind: &str) {
        self.goto("/rooms/new").await;
        self.fill("input[name=name]", name).await;
        self.click(&format!("input[value={kind}]")).await;
        self.submit("#new-room-form").await;
        self.wait_for("the room page", "!!document.getElementById('room')")
            .await;
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Presses Enter in `css`.
    pub async fn press_enter(&self, css: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.send_keys("\u{E007}").await.unwrap();
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Submits the form `css` as a user would (its submit button).
    pub async fn submit(&self, css: &str) {
        self.click(&format!("{css} button[type=submit]")).await;
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    /// Waits until the JavaScript expression `condition` is true; panics naming `what`.
    pub async fn wait_for(&self, what: &str, condition: &str) {
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        let started = Instant::now();
        loop {
            if self
                .client
                .execute(&script, Vec::new())
                .await
                .is_ok_and(|v| v == json!(true))
            {
                return;
            }
            if started.elapsed() > PATIENCE {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let text = self
                    .eval("return document.body ? document.body.innerText : ''")
                    .await;
                panic!("waited {PATIENCE:?} for {what} at {url}; the page says: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the room page's socket is live.
    pub async fn wait_live(&self) {
        let live = "document.getElementById('room').dataset.state === 'live'";
        self.wait_for("live", live).await;
    }

    /// Runs `script`, which calls its last argument (`arguments[arguments.length - 1]`)
    /// with the result when done, and returns that result.
    pub async fn eval_async(&self, script: &str) -> Value {
        self.client.execute_async(script, Vec::new()).await.unwrap()
    }

    /// Resizes the window to `width` × `height` CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    /// Runs axe-core (the script `NATTER_AXE_JS` names: `cargo xtask test` installs it)
    /// on the page; panics listing any serious or critical violation, naming `page`.
    pub async fn check_accessibility(&self, page: &str) {
        let path = std::env::var("NATTER_AXE_JS").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/tools/axe/node_modules/axe-core/axe.min.js"
            )
            .into()
        });
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core not at {path} ({e}): `cargo xtask test` installs it")
        });
        self.client.execute(&axe, Vec::new()).await.unwrap();
        let run = "const done = arguments[arguments.length - 1]; \
                   axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations \
                   .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                   .map(v => ({ id: v.id, impact: v.impact, help: v.help, \
                   nodes: v.nodes.slice(0, 3).map(n => n.html) }))), \
                   e => done([{ id: 'axe failed', help: String(e) }]));";
        let violations = self.eval_async(run).await;
        assert_eq!(violations, json!([]), "accessibility of {page}");
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.client.refresh().await.unwrap();
    }

    /// History back.
    pub async fn back(&self) {
        self.client.back().await.unwrap();
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.unwrap()
    }

    /// Ends the WebDriver session.
    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}
