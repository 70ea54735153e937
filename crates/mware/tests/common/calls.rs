//! The callmanager's end-to-end site: two real `mware run` processes on a real etcd,
//! with a real Kamailio as registrar and proxy ([`site_on`]), and the API calls the
//! calls tests make.

use super::*;
use mware_testkit::etcd::Etcd;
use mware_testkit::sip::{free_sip_port, Kamailio};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "calls-e2e-token";
pub const DOMAIN: &str = "example.test";

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services/callmanager/tests/sipp").join(name)
}

pub struct Site {
    pub ds: Vec<Daemon>,
    pub kam: Kamailio,
    pub dir: tempfile::TempDir,
    _etcd: Etcd,
}

/// Two daemons (m10 active, m20 passive) whose group has a `sip` section; with
/// `two_hosts` m20 is on another address (127.0.0.2), so only the group contact can
/// bring the phones' requests to it.
pub fn site(limits: Value) -> Site {
    site_on(limits, Layout::OneHost)
}

/// Where the two daemons are.
#[derive(Clone, Copy, PartialEq)]
pub enum Layout {
    /// One group on one address.
    OneHost,
    /// One group, m20 on 127.0.0.2.
    TwoHosts,
    /// m10 in group 1 (every domain but `other.test`), m20 alone in group 2
    /// (`other.test`): both active.
    TwoGroups,
}

/// The domain group 2 serves in [`Layout::TwoGroups`].
pub const OTHER: &str = "other.test";

pub fn site_on(limits: Value, layout: Layout) -> Site {
    site_with(limits, layout, json!({}))
}

/// [`site_on`] with more keys of the `sip` section (`{"mixer": …}`).
pub fn site_with(limits: Value, layout: Layout, more_sip: Value) -> Site {
    site_roles(limits, layout, more_sip, json!({}))
}

/// [`site_with`] with more keys of each role (other services' sections: `{"callback": …}`).
pub fn site_roles(limits: Value, layout: Layout, more_sip: Value, more_role: Value) -> Site {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/kamailio/kamailio.cfg");
    let kam = Kamailio::start(&cfg, dir.path(), &[]).unwrap();
    let sip = |port: u16| {
        let mut v =
            json!({"port": port, "outbound_proxy": kam.uri(), "registrar_rpc": kam.rpc_url(), "limits": limits, "answer_timeout_s": 10});
        for (k, x) in more_sip.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        v
    };
    let sip_ports = [free_sip_port(), free_sip_port()];
    let two_hosts = layout == Layout::TwoHosts;
    let ips = if two_hosts { ["127.0.0.1", "127.0.0.2"] } else { ["127.0.0.1", "127.0.0.1"] };
    let ports = [free_addr(), free_addr()].map(|(p, _)| p);
    let addrs = [format!("{}:{}", ips[0], ports[0]), format!("{}:{}", ips[1], ports[1])];
    let roles: Vec<Value> = (0..2)
        .map(|i| {
            let mut r = json!({"name": format!("m{}", (i + 1) * 10), "roletype": "mware", "iface": "lo", "group": 1, "order": (i + 1) * 10,
                        "api_port": ports[i], "sip": sip(sip_ports[0])});
            for (k, x) in more_role.as_object().into_iter().flatten() {
                r[k] = x.clone();
            }
            if layout == Layout::TwoGroups && i == 1 {
                r["group"] = json!(2);
                r["include_domains"] = json!([OTHER]);
                r["sip"] = sip(sip_ports[1]);
            }
            r
        })
        .collect();
    let site = json!({"site": "cm",
    "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
    "api": {"token_env": "CM_TOKEN"},
    "servers": if two_hosts {
        json!([{"name": "s1", "ifaces": {"lo": ips[0]}, "roles": [roles[0]]}, {"name": "s2", "ifaces": {"lo": ips[1]}, "roles": [roles[1]]}])
    } else {
        json!([{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": roles}])
    }});
    let path = dir.path().join("site.json");
    std::fs::write(&path, site.to_string()).unwrap();
    let start = |i: usize| {
        Daemon::start(
            &path,
            &format!("m{}", (i + 1) * 10),
            &addrs[i],
            dir.path().join(format!("m{}.log", (i + 1) * 10)),
            &[("CM_TOKEN", TOKEN)],
        )
    };
    let d0 = start(0);
    d0.wait_status(Duration::from_secs(30), running);
    let d1 = start(1);
    if layout == Layout::TwoGroups {
        d1.wait_status(Duration::from_secs(30), running);
    } else {
        d1.wait_status(Duration::from_secs(15), |v| v["state"] == "passive");
    }
    Site { ds: vec![d0, d1], kam, dir, _etcd: etcd }
}

pub fn running(v: &Value) -> bool {
    v["state"] == "active"
        && v["services"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "callmanager" && s["state"] == "running"))
}

pub fn request(method: reqwest::Method, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value, Option<String>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut rb = reqwest::Client::new().request(method, url).timeout(Duration::from_secs(15));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("answer");
        let code = r.status().as_u16();
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_string());
        (code, r.json::<Value>().await.unwrap_or(Value::Null), retry)
    })
}

/// What an SSE stream sends within `for_`.
pub fn sse_text(url: &str, for_: Duration) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new().get(url).send().await.expect("events");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(for_, async {
            while let Ok(Some(chunk)) = r.chunk().await {
                out.extend_from_slice(&chunk);
            }
        })
        .await;
        String::from_utf8_lossy(&out).into_owned()
    })
}

pub fn wait_call(d: &Daemon, id: &str, state: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (code, v, _) = request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls/{id}", d.api), Some(TOKEN), None);
        if code == 200 && v["state"] == state {
            return v;
        }
        assert!(Instant::now() < deadline, "call {id} not {state} within {secs} s: {code} {v}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}
