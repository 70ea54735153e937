//! The callback service's end-to-end rig: the callmanager's site (two `mware run` on etcd,
//! Kamailio) with a `callback` section, and what the callback tests ask of the API.

use super::calls::*;
use super::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The site with the `callback` section `cb` (the critical sections service runs with its
/// defaults); returns once m10 runs the callmanager and the callback service.
pub fn callback_site(cb: Value) -> Site {
    let s = site_roles(json!({}), Layout::OneHost, json!({}), json!({"callback": cb}));
    s.ds[0].wait_status(Duration::from_secs(30), callback_running);
    s
}

/// The instance is active and runs both the callmanager and the callback service.
pub fn callback_running(v: &Value) -> bool {
    running(v) && v["services"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "callback" && s["state"] == "running"))
}

/// `METHOD /api/callback/v1{path}` on `d`.
pub fn cb(d: &Daemon, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (code, v, _) = request(method, &format!("{}/api/callback/v1{path}", d.api), Some(TOKEN), body);
    (code, v)
}

/// Waits until order `id` is in `state` on `d`; the order.
pub fn wait_order(d: &Daemon, id: &str, state: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let (code, v) = cb(d, reqwest::Method::GET, &format!("/orders/{id}"), None);
        if code == 200 && v["state"] == state {
            return v;
        }
        last = v;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("order {id} not {state} within {secs} s: {last:#}\n{}", d.log_text());
}

/// The distinct Call-IDs of the INVITEs a SIPp phone received (its trace): one per call,
/// whatever the retransmissions.
pub fn invites(trace: &str) -> Vec<String> {
    let mut ids: Vec<String> = vec![];
    let (mut received, mut first, mut invite) = (false, false, false);
    for line in trace.lines() {
        if line.starts_with("----------") {
            (received, first, invite) = (false, false, false);
        } else if line.contains("message received") {
            (received, first) = (true, true);
        } else if received && first && !line.trim().is_empty() {
            first = false;
            invite = line.trim_start().starts_with("INVITE ");
        } else if invite {
            if let Some(id) = line.strip_prefix("Call-ID:").or_else(|| line.strip_prefix("i:")).map(|x| x.trim().to_string()) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                invite = false;
            }
        }
    }
    ids
}

/// Holds critical section `name` of the test domain for `owner` (a call script would).
pub fn hold_section(d: &Daemon, name: &str, owner: &str) -> u64 {
    let body = json!({"owner": owner, "ttl_ms": 600_000, "wait_ms": 0});
    let (code, v, _) =
        request(reqwest::Method::POST, &format!("{}/api/v1/domains/{DOMAIN}/mutexes/{name}/acquire", d.api), Some(TOKEN), Some(&body));
    assert_eq!(code, 200, "{v}");
    v["token"].as_u64().unwrap()
}

/// The holders' owners of critical section `name` (empty when free).
pub fn section_owners(d: &Daemon, name: &str) -> Vec<String> {
    let (code, v, _) = request(reqwest::Method::GET, &format!("{}/api/v1/domains/{DOMAIN}/mutexes/{name}", d.api), None, None);
    if code == 404 {
        return vec![];
    }
    v["holders"].as_array().into_iter().flatten().filter_map(|h| h["owner"].as_str().map(str::to_string)).collect()
}
