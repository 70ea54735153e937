//! The cache of external numbers' states (issue 26, item 6): what the watcher
//! (`external`) learnt of each watched number, with the age of its state, read by
//! `GET /api/calltracking/v1/{domain}/numbers`, the status and the CTI adapters. It
//! belongs to one activity: the next active instance subscribes again and fills its
//! own from the servers' first NOTIFYs (full state, RFC 4235 §3.10).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A watched number as the site's users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NumberView {
    /// The domain whose users watch it.
    pub domain: String,
    /// The number (a SIP URI).
    pub number: String,
    /// `unknown` (no NOTIFY yet), `idle`, `ringing` (a dialog trying or early) or
    /// `busy` (a confirmed dialog).
    pub state: String,
    /// Since when `state` holds, ms since the Unix epoch.
    pub since_ms: u64,
    /// How old `state` is, ms (now − `since_ms`, when read).
    pub age_ms: u64,
    /// The last NOTIFY, ms since the Unix epoch.
    pub updated_ms: Option<u64>,
    /// Dialogs the server reports now (not terminated).
    pub dialogs: usize,
    /// The subscription: `subscribing`, `active`, `failed` (retried) or `ended`.
    pub subscription: String,
    /// When the subscription runs out unless refreshed, ms since the Unix epoch.
    pub expires_ms: Option<u64>,
    /// Refreshes the server accepted.
    pub refreshes: u64,
    /// The server's last answer or what failed, in words.
    pub last_answer: String,
    /// Where SUBSCRIBE goes.
    pub server: String,
}

/// The cache of one activity.
#[derive(Default)]
pub struct Cache {
    map: Mutex<BTreeMap<(String, String), NumberView>>,
}

impl Cache {
    /// Replaces a number's view; true when its state changed.
    pub fn set(&self, v: NumberView) -> bool {
        let mut m = self.map.lock().unwrap();
        let key = (v.domain.clone(), v.number.clone());
        let changed = m.get(&key).is_none_or(|old| old.state != v.state);
        m.insert(key, v);
        changed
    }

    /// Forgets a number no longer watched.
    pub fn remove(&self, domain: &str, number: &str) {
        self.map.lock().unwrap().remove(&(domain.to_string(), number.to_string()));
    }

    /// The numbers of `domain` (all with `None`), each with its age now.
    pub fn list(&self, domain: Option<&str>, now_ms: u64) -> Vec<NumberView> {
        let m = self.map.lock().unwrap();
        m.values()
            .filter(|v| domain.is_none_or(|d| v.domain == d))
            .map(|v| NumberView { age_ms: now_ms.saturating_sub(v.since_ms), ..v.clone() })
            .collect()
    }

    /// The views of one number (every domain that watches it).
    pub fn find(&self, number: &str, now_ms: u64) -> Vec<NumberView> {
        self.list(None, now_ms).into_iter().filter(|v| v.number == number).collect()
    }
}
