//! End-to-end, as a hostile client on the site's network would try (issue 24): the TCP
//! syslog listener of a real daemon (embedded coordinator) stays open for everyone while
//! one address holds 300 idle connections, and closes idle ones; alarm texts carrying
//! NUL, ANSI escapes and bidi controls reach the API cleaned, and a free-form `rule`
//! in `POST /api/v1/alarms` is refused naming `rule`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const TOKEN: &str = "alarms-hostile-token";
const IDLE_MS: u64 = 2000;

/// One instance on the embedded coordinator with a TCP syslog port and one rule that
/// takes every message.
fn start(dir: &Path) -> (Daemon, u16) {
    let (port, addr) = free_addr();
    let tcp = mware_testkit::free_port();
    let site = json!({
        "site": "ah",
        "coordination": {"backend": "embedded", "path": dir.join("var/coord.sqlite").display().to_string(), "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "h10", "roletype": "mware", "iface": "lo", "group": 3, "order": 10, "api_port": port,
            "alarms": {
                "syslog": {"tcp_port": tcp, "tcp_idle_timeout_ms": IDLE_MS},
                "rules": [{"name": "everything"}],
                "monitoring": {"enabled": false}
            }
        }]}]
    });
    let cfg = dir.join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(&cfg, "h10", &addr, dir.join("h10.log"), &[("MWARE_API_TOKEN", TOKEN)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(d.get("/api/v1/alarms"), Some((200, _))) {
        assert!(Instant::now() < deadline, "the alarms service did not start:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    (d, tcp)
}

/// Whether `pred` holds for any value in `v` (whatever the answer's layout).
fn holds(v: &Value, pred: &dyn Fn(&Value) -> bool) -> bool {
    pred(v)
        || match v {
            Value::Array(a) => a.iter().any(|x| holds(x, pred)),
            Value::Object(o) => o.values().any(|x| holds(x, pred)),
            _ => false,
        }
}

/// The alarm whose message is `msg` (in any list of the answer), waited for.
fn wait_alarm(d: &Daemon, msg: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((200, v)) = d.get("/api/v1/alarms") {
            let mut found = None;
            find(&v, msg, &mut found);
            if let Some(a) = found {
                return a;
            }
        }
        assert!(Instant::now() < deadline, "no alarm {msg:?} within {limit:?}; log:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find(v: &Value, msg: &str, out: &mut Option<Value>) {
    if out.is_some() {
        return;
    }
    match v {
        Value::Object(o) if o.get("message").and_then(Value::as_str) == Some(msg) && o.contains_key("id") => *out = Some(v.clone()),
        Value::Object(o) => o.values().for_each(|x| find(x, msg, out)),
        Value::Array(a) => a.iter().for_each(|x| find(x, msg, out)),
        _ => {}
    }
}

fn metric(d: &Daemon, name: &str) -> f64 {
    let text = get_text(&format!("{}/metrics", d.api)).unwrap_or_default();
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{from}:0").parse().unwrap())?;
    s.connect(to).await
}

#[test]
fn tcp_syslog_stays_open_for_everyone_while_one_address_holds_300_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (d, tcp) = start(dir.path());
    let to: SocketAddr = format!("127.0.0.1:{tcp}").parse().unwrap();
    // One runtime for the sockets; the API is read between its steps (its helpers block).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let send = |from: &'static str, line: &'static str| {
        rt.block_on(async {
            let mut s = connect_from(from, to).await.unwrap_or_else(|e| panic!("connect from {from}: {e}"));
            s.write_all(line.as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
        })
    };
    // 300 connections from 127.0.0.2 that send nothing.
    // Idle time is measured from before the first connect: the first 16, let in, start their
    // idle clock then (on a loaded machine the 300 connects alone can take a second).
    let (mut idle, opened) = rt.block_on(async {
        let started = Instant::now();
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(connect_from("127.0.0.2", to).await.expect("connect from 127.0.0.2"));
        }
        (idle, started)
    });
    // Another sender still gets its message through.
    send("127.0.0.3", "<131>Dec  2 10:00:00 gw3 kamailio: from 127.0.0.3 while 127.0.0.2 holds 300\n");
    wait_alarm(&d, "from 127.0.0.3 while 127.0.0.2 holds 300", Duration::from_secs(10));

    // Every one of the 300 is closed: 284 at once (past the per-peer cap), the 16 let in
    // once idle for tcp_idle_timeout_ms.
    let last_close = rt.block_on(async {
        let mut buf = [0u8; 16];
        let mut last_close = Duration::ZERO;
        for c in &mut idle {
            match tokio::time::timeout(Duration::from_secs(15), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => last_close = last_close.max(opened.elapsed()),
                Ok(Ok(n)) => panic!("the listener sent {n} bytes"),
                Err(_) => panic!("a connection from 127.0.0.2 was still open 15 s after it went idle"),
            }
        }
        last_close
    });
    assert!(last_close >= Duration::from_millis(IDLE_MS / 2), "the admitted idle connections were closed too early: {last_close:?}");
    drop(idle);
    // Their places are free again: 127.0.0.2 is heard once it behaves.
    send("127.0.0.2", "<131>Dec  2 10:00:01 gw2 kamailio: 127.0.0.2 heard again\n");
    wait_alarm(&d, "127.0.0.2 heard again", Duration::from_secs(10));
    let per_peer = metric(&d, "mware_alarms_syslog_refused_total{reason=\"per_peer\"}");
    assert_eq!(per_peer, 284.0, "300 from one address, 16 let in: 284 refusals counted");
    assert_eq!(metric(&d, "mware_alarms_syslog_idle_closed_total"), 16.0, "the 16 admitted idle ones closed for idleness");
    let lines = d.log_text().lines().filter(|l| l.contains("syslog tcp connections refused")).count();
    assert!((1..=3).contains(&lines), "refusals are logged with a rate limit: {lines} lines for 284 refusals");
}

#[test]
fn alarm_texts_reach_the_api_cleaned_and_a_free_form_rule_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (d, tcp) = start(dir.path());
    let url = format!("{}/api/v1/alarms", d.api);

    // rule follows the site file's rule-name syntax.
    for rule in ["../x".to_string(), "a".repeat(1000), "bad rule".into(), "".into()] {
        let (code, v) = post_json(&url, Some(TOKEN), &json!({"message": "m", "rule": rule})).expect("answer");
        assert_eq!(code, 400, "rule {rule:?}: {v}");
        let problems = v["problems"].as_array().cloned().unwrap_or_default();
        assert!(problems.iter().any(|p| p.as_str().unwrap_or("").starts_with("rule: expected a rule name")), "{v}");
    }
    // A message that is nothing but controls is empty once cleaned: refused.
    let (code, v) = post_json(&url, Some(TOKEN), &json!({"message": "\u{1b}[2J\u{202E}\u{0}"})).unwrap();
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("message:"), "{v}");

    // Through the API: NUL, ANSI escapes and bidi controls removed.
    let body = json!({
        "message": "disk\u{0} \u{1b}[31mfull\u{1b}[0m on invoice_\u{202E}fdp.exe\u{1b}]0;owned\u{7}",
        "rule": "hostile-check",
        "host": "h\u{2066}1\u{1b}[1m",
        "app": "a\u{202B}pp"
    });
    let (code, v) = post_json(&url, Some(TOKEN), &body).unwrap();
    assert_eq!(code, 201, "{v}");
    let a = wait_alarm(&d, "disk full on invoice_fdp.exe", Duration::from_secs(10));
    assert_eq!((a["rule"].as_str(), a["host"].as_str(), a["app"].as_str()), (Some("hostile-check"), Some("h1"), Some("app")), "{a}");

    // Through syslog over TCP: the same cleaning.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).await.unwrap();
        let msg = "<131>Dec  2 10:00:00 gw4 kam: ansi \u{1b}[31mred\u{1b}[0m \u{202E}evil\u{200F} tail\n";
        s.write_all(msg.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let a = wait_alarm(&d, "ansi red evil tail", Duration::from_secs(10));
    assert_eq!(a["host"], "gw4", "{a}");
    // Nothing of the kind is left anywhere in the answer.
    let (_, v) = d.get("/api/v1/alarms").unwrap();
    let dirty =
        |x: &Value| x.as_str().is_some_and(|s| s.chars().any(|c| (c.is_control() && c != '\t') || ('\u{202A}'..='\u{202E}').contains(&c)));
    assert!(!holds(&v, &dirty), "a control or bidi character reached the API: {v}");
}
