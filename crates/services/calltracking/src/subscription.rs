//! One subscription to the dialog event package of an external number (RFC 6665,
//! RFC 4235), as a state machine without I/O: the watcher (`external`) hands it each
//! answer and NOTIFY of its dialog and the time, and sends what it returns.
//!
//! - An initial SUBSCRIBE (new Call-ID and tag) is retransmitted on timer E (500 ms
//!   doubling, at most 4 s) until an answer, for at most [`TRANSACTION`].
//! - A 2xx makes it active; it is refreshed inside its dialog when three quarters of
//!   the lifetime the server granted have passed (423: the server's Min-Expires is
//!   asked for instead).
//! - Any other final answer, no answer, or a NOTIFY with `Subscription-State:
//!   terminated` ends the dialog; a new one starts after a pause (1 s doubling, at
//!   most 30 s).
//! - Each NOTIFY is answered 200; its dialog-info body gives the number's state.

use crate::dialoginfo;
use crate::numbers::NumberView;
use crate::sipmsg::{self, Msg};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest a SUBSCRIBE waits for a final answer.
pub const TRANSACTION: Duration = Duration::from_secs(8);
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

static SEQ: AtomicU64 = AtomicU64::new(1);

fn unique() -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{n:x}{:x}", std::process::id(), t & 0xffff_ffff)
}

struct Pending {
    msg: String,
    cseq: u32,
    started: Instant,
    next: Instant,
    interval: Duration,
}

/// A subscription and what it knows.
pub struct Subscription {
    /// The number's view (kept in the cache by the watcher).
    pub view: NumberView,
    /// Where SUBSCRIBE goes.
    pub server: SocketAddr,
    local: SocketAddr,
    asked: u32,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    target: Option<String>,
    cseq: u32,
    version: Option<u64>,
    dialogs: BTreeMap<String, String>,
    pending: Option<Pending>,
    next_send: Option<Instant>,
    retry: Duration,
}

/// What a message did to a subscription.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Send this back to where the message came from (the answer to a NOTIFY).
    pub reply: Option<String>,
    /// A NOTIFY was taken.
    pub notified: bool,
    /// The subscription failed (a final error or no answer).
    pub failed: bool,
}

impl Subscription {
    /// A subscription of `number` (for `domain`) at `server`, NOTIFYs to `local`,
    /// asking for `expires` s; its first SUBSCRIBE goes at the next [`Subscription::due`].
    pub fn new(domain: &str, number: &str, server_uri: &str, server: SocketAddr, local: SocketAddr, expires: u32, now_ms: u64) -> Self {
        Subscription {
            view: NumberView {
                domain: domain.to_string(),
                number: number.to_string(),
                state: "unknown".into(),
                since_ms: now_ms,
                age_ms: 0,
                updated_ms: None,
                dialogs: 0,
                subscription: "subscribing".into(),
                expires_ms: None,
                refreshes: 0,
                last_answer: String::new(),
                server: server_uri.to_string(),
            },
            server,
            local,
            asked: expires,
            call_id: String::new(),
            from_tag: String::new(),
            to_tag: None,
            target: None,
            cseq: 0,
            version: None,
            dialogs: BTreeMap::new(),
            pending: None,
            next_send: Some(Instant::now()),
            retry: FIRST_RETRY,
        }
    }

    /// Whether `m` belongs to this subscription's dialog.
    pub fn owns(&self, m: &Msg) -> bool {
        let ours = if m.method.is_some() { m.tag("to") } else { m.tag("from") };
        !self.call_id.is_empty() && m.header("call-id") == Some(self.call_id.as_str()) && ours == Some(self.from_tag.as_str())
    }

    /// What to send now (a first send, a retransmission, a refresh); `failed` is set
    /// when a SUBSCRIBE got no answer in time.
    pub fn due(&mut self, now: Instant) -> (Option<String>, bool) {
        if let Some(p) = &mut self.pending {
            if now.duration_since(p.started) >= TRANSACTION {
                self.pending = None;
                self.fail(now, format!("no answer to SUBSCRIBE within {} s", TRANSACTION.as_secs()));
                return (None, true);
            }
            if now >= p.next {
                p.interval = (p.interval * 2).min(T2);
                p.next = now + p.interval;
                return (Some(p.msg.clone()), false);
            }
            return (None, false);
        }
        match self.next_send {
            Some(at) if now >= at => {
                self.next_send = None;
                (Some(self.send(now, self.asked)), false)
            }
            _ => (None, false),
        }
    }

    /// A SUBSCRIBE with `expires` (a new dialog when none is up).
    fn send(&mut self, now: Instant, expires: u32) -> String {
        if self.to_tag.is_none() || self.call_id.is_empty() {
            self.call_id = format!("mware-dlg-{}", unique());
            self.from_tag = unique();
            self.target = None;
            self.version = None;
        }
        self.cseq += 1;
        let branch = unique();
        let msg = sipmsg::subscribe(&sipmsg::Subscribe {
            target: self.target.as_deref().unwrap_or(&self.view.number),
            number: &self.view.number,
            to_tag: self.to_tag.as_deref(),
            from_tag: &self.from_tag,
            call_id: &self.call_id,
            cseq: self.cseq,
            branch: &branch,
            local: self.local,
            expires,
        });
        self.pending = Some(Pending { msg: msg.clone(), cseq: self.cseq, started: now, next: now + T1, interval: T1 });
        msg
    }

    /// A SUBSCRIBE with `Expires: 0` ending an active dialog (sent once, on stop).
    pub fn unsubscribe(&mut self, now: Instant) -> Option<String> {
        self.to_tag.as_ref()?;
        Some(self.send(now, 0))
    }

    fn fail(&mut self, now: Instant, why: String) {
        self.view.subscription = "failed".into();
        self.view.last_answer = format!("{why}; subscribing again in {} ms", self.retry.as_millis());
        self.view.expires_ms = None;
        self.restart(now + self.retry);
        self.retry = (self.retry * 2).min(MAX_RETRY);
    }

    /// Forgets the dialog; a new one starts at `at`.
    fn restart(&mut self, at: Instant) {
        self.to_tag = None;
        self.call_id.clear();
        self.pending = None;
        self.next_send = Some(at);
    }

    /// Takes a message of this dialog (see [`Subscription::owns`]).
    pub fn take(&mut self, m: &Msg, now: Instant, now_ms: u64) -> Outcome {
        if m.method.as_deref() == Some("NOTIFY") {
            return self.notify(m, now, now_ms);
        }
        if m.method.is_some() {
            return Outcome { reply: Some(sipmsg::answer(m, 405, "Method Not Allowed")), ..Outcome::default() };
        }
        let Some(p) = &self.pending else { return Outcome::default() };
        if m.cseq() != Some((p.cseq, "SUBSCRIBE")) || m.code < 200 {
            return Outcome::default();
        }
        let p = self.pending.take().expect("pending");
        let reason = m.code.to_string();
        if (200..300).contains(&m.code) {
            if self.to_tag.is_none() {
                self.to_tag = m.tag("to").map(String::from);
            }
            if self.target.is_none() {
                self.target = m.contact_uri().map(String::from);
            }
            let granted = m.expires().unwrap_or(self.asked);
            if p.msg.contains("\r\nExpires: 0\r\n") {
                return Outcome::default();
            }
            let refresh = Duration::from_millis(u64::from(granted) * 750).max(Duration::from_secs(1));
            self.next_send = Some(now + refresh);
            if self.view.subscription == "active" {
                self.view.refreshes += 1;
            }
            self.view.subscription = "active".into();
            self.view.expires_ms = Some(now_ms + u64::from(granted) * 1000);
            self.view.last_answer = format!("{reason} (expires in {granted} s)");
            self.retry = FIRST_RETRY;
            return Outcome::default();
        }
        if m.code == 423 {
            if let Some(min) = m.header("min-expires").and_then(|v| v.trim().parse::<u32>().ok()) {
                self.asked = min.max(self.asked);
                self.next_send = Some(now);
                self.view.last_answer = format!("423: the server asks for at least {min} s");
                return Outcome::default();
            }
        }
        self.fail(now, format!("the server answered {reason}"));
        Outcome { failed: true, ..Outcome::default() }
    }

    fn notify(&mut self, m: &Msg, now: Instant, now_ms: u64) -> Outcome {
        let mut out = Outcome { reply: Some(sipmsg::answer(m, 200, "OK")), notified: true, failed: false };
        if self.to_tag.is_none() {
            self.to_tag = m.tag("from").map(String::from);
        }
        if let Some(c) = m.contact_uri() {
            self.target = Some(c.to_string());
        }
        self.view.updated_ms = Some(now_ms);
        let sub_state = m.header("subscription-state").unwrap_or("active").to_ascii_lowercase();
        if let Some(e) = m.expires().filter(|_| !sub_state.starts_with("terminated")) {
            self.view.expires_ms = Some(now_ms + u64::from(e) * 1000);
        }
        let body = m.body.trim();
        let content_type = m.header("content-type").unwrap_or("").to_ascii_lowercase();
        if body.is_empty() {
            // Kamailio's first NOTIFY before anything was published: no dialog at all.
            self.set_dialogs(BTreeMap::new(), now_ms);
        } else if !content_type.starts_with("application/dialog-info+xml") {
            self.view.last_answer = format!("a NOTIFY with {content_type:?}, expected application/dialog-info+xml");
        } else {
            match dialoginfo::parse(body) {
                Ok(n) if self.version.is_some_and(|v| n.version < v) => {}
                Ok(n) => {
                    self.version = Some(n.version);
                    let d = dialoginfo::fold(&self.dialogs, &n);
                    self.set_dialogs(d, now_ms);
                }
                Err(e) => self.view.last_answer = format!("a NOTIFY body was refused: {e}"),
            }
        }
        if sub_state.starts_with("terminated") {
            self.view.subscription = "ended".into();
            self.view.last_answer = format!("the server ended the subscription ({sub_state}); subscribing again");
            self.view.expires_ms = None;
            self.restart(now + FIRST_RETRY);
            out.failed = true;
        }
        out
    }

    fn set_dialogs(&mut self, d: BTreeMap<String, String>, now_ms: u64) {
        let state = dialoginfo::summary(&d);
        if state != self.view.state {
            self.view.state = state.into();
            self.view.since_ms = now_ms;
        }
        self.view.dialogs = d.len();
        self.dialogs = d;
    }
}
