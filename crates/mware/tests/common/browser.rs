//! A real headless Chromium (Debian's `chromium`) driven over WebDriver (`chromedriver`,
//! fantoccini), for the console's tests. chromedriver and the browser it starts run in
//! a process group of their own, which is killed when the [`Browser`] is dropped.
//! Every host name resolves to nothing but loopback: no request can leave the machine.
#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// chromedriver with one browser session.
pub struct Browser {
    pub client: Client,
    pgid: i32,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` × `height`; logs go to `log`.
    pub async fn start(width: u32, height: u32, log: &std::path::Path) -> Browser {
        let port = mware_testkit::free_port();
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}")).stdout(out.try_clone().unwrap()).stderr(out).process_group(0);
        let child = cmd.spawn().expect("chromedriver (Debian's chromium-driver, installed by scripts/setup.sh)");
        let pgid = child.id() as i32;
        std::mem::forget(child); // reaped with its group on drop
        mware_testkit::wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20)).expect("chromedriver listens");
        let profile = tempfile::tempdir().unwrap();
        // Headless Chromium will not make a window narrower than about 500 px; a phone's
        // width is emulated instead.
        let mut caps = serde_json::json!({
            // Navigation returns once the request is sent: a tab whose page keeps a live
            // event stream open is never "loaded" by some definitions, and many tabs on two
            // busy cores make the renderer slow to answer.
            "pageLoadStrategy": "none",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ]
            }
        });
        if width < 500 {
            caps["goog:chromeOptions"]["mobileEmulation"] =
                serde_json::json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}});
        }
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        for _ in 0..50 {
            match ClientBuilder::new(connector.clone()).capabilities(caps_clone(&caps)).connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let client = client.expect("a browser session");
        Browser { client, pgid, _profile: profile }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.expect("script runs")
    }

    /// Waits until `script` returns true, up to `limit`; panics with `what` otherwise.
    pub async fn wait_js(&self, what: &str, script: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.js(script).await == serde_json::Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.js("return document.body.innerText").await;
                panic!("{what}: not within {limit:?}; the page says:\n{}", text.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the button `label` of the panel titled `title` (the first such), checks the
    /// confirmation asks about each of `asked`, accepts it, and returns what the page says.
    pub async fn click_confirmed(&self, title: &str, label: &str, asked: &[&str]) -> String {
        let xpath = format!("//div[@data-panel='{title}']//button[text()='{label}']");
        // The answer of an earlier action is cleared first: this one's is waited for.
        let script = "document.getElementById('answer').textContent = ''; arguments[0].scrollIntoView({block: 'center'}); return true;";
        // The page redraws its panels on every event: a button found may be replaced before
        // the click reaches it (a stale element); then it is found again.
        let mut tries = 0;
        loop {
            let clicked = async {
                let button = self.client.find(Locator::XPath(&xpath)).await?;
                self.client.execute(script, vec![json!(button)]).await?;
                button.click().await
            };
            match clicked.await {
                Ok(()) => break,
                Err(e) if tries < 20 => {
                    tries += 1;
                    eprintln!("{label} in {title}, try {tries}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{label} in {title}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let question = self.client.get_alert_text().await.expect("a confirmation was asked");
        for a in asked {
            assert!(question.contains(a), "{a:?} not in the question {question:?}");
        }
        self.client.accept_alert().await.unwrap();
        let said = "return document.getElementById('answer').textContent;";
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let t = self.js(said).await.as_str().unwrap_or_default().to_string();
            if t.starts_with(&format!("{label}:")) || Instant::now() > deadline {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap();
    }
}

fn caps_clone(c: &fantoccini::wd::Capabilities) -> fantoccini::wd::Capabilities {
    c.clone()
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the browser it started: the group we created.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pgid), None);
    }
}
