//! End-to-end: the alarms service in real daemons on a real etcd, with Debian's
//! `snmptrapd` as the SNMP manager (it parses every trap with
//! `examples/mibs/MWARE-ALARMS-MIB.txt` loaded) and util-linux's `logger` as the device.
//!
//! - syslog over UDP and TCP (newline-framed and octet-counted), RFC 3164 and 5424, →
//!   traps with the rule, severity, app and message; repeats summarised ("N more");
//!   malformed and oversized messages counted, the receiver unharmed; an inform manager
//!   that is down gets its backlog, in order, once it is up;
//! - a burst of alarms raised through the API while the active instance is killed -9:
//!   every alarm acknowledged (201) reaches the manager, and an alarm seen twice carries
//!   the same id and text.

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use mware_testkit::Child;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "alarms-e2e-token";

/// `snmptrapd` in the foreground on a loopback port, logging every trap on one line.
struct TrapD {
    _child: Child,
    log: PathBuf,
}

fn mib_dirs() -> String {
    let base = std::fs::read_dir("/usr/lib/erlang/lib")
        .expect("erlang-snmp is installed (scripts/setup.sh): it ships SNMPv2-SMI, -TC and -CONF")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("mibs"))
        .find(|p| p.join("SNMPv2-SMI.mib").exists())
        .expect("SNMPv2-SMI.mib of erlang-snmp");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mibs");
    format!("{}:{}", base.display(), ours.canonicalize().unwrap().display())
}

impl TrapD {
    fn start(dir: &Path, name: &str, port: u16) -> TrapD {
        TrapD::with_conf(dir, name, port, "authCommunity log public\n")
    }
    /// snmptrapd with `conf` as its configuration.
    fn with_conf(dir: &Path, name: &str, port: u16, conf_text: &str) -> TrapD {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, conf_text).unwrap();
        let log = dir.join(format!("{name}.log"));
        let state = dir.join(format!("{name}-state"));
        std::fs::create_dir_all(&state).unwrap();
        let mut cmd = Command::new("/usr/sbin/snmptrapd");
        cmd.args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .args(["-M", &mib_dirs(), "-m", "MWARE-ALARMS-MIB:SNMPv2-MIB", "-F", "TRAP %V|%v\n"])
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", &state);
        let child = Child::spawn(name, cmd, &log).expect("start snmptrapd");
        let t = TrapD { _child: child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.text().contains("NET-SNMP version") {
            assert!(Instant::now() < deadline, "snmptrapd did not start: {}", t.text());
            std::thread::sleep(Duration::from_millis(50));
        }
        t
    }
    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn traps(&self) -> Vec<String> {
        self.text().lines().filter(|l| l.starts_with("TRAP ")).map(str::to_string).collect()
    }
    /// The varbinds of the trap whose message is `msg` (waits for it).
    fn wait_for(&self, msg: &str, limit: Duration) -> BTreeMap<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = self.traps().iter().map(|l| varbinds(l)).find(|v| v.get("mwareAlarmMessage.0").is_some_and(|m| m == msg)) {
                return v;
            }
            assert!(Instant::now() < deadline, "no trap with message {msg:?}; snmptrapd saw:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The varbinds of a trap line (`name.0` → value without its type, unquoted).
fn varbinds(line: &str) -> BTreeMap<String, String> {
    line.trim_start_matches("TRAP ")
        .split('|')
        .filter_map(|vb| {
            let (name, value) = vb.split_once(" = ")?;
            let name = name.rsplit("::").next()?.to_string();
            let value = value.split_once(": ").map(|x| x.1).unwrap_or(value);
            Some((name, value.trim().trim_matches('"').to_string()))
        })
        .collect()
}

/// Each trap's id and message, in the order received.
fn ids(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let v = varbinds(l);
            Some((v.get("mwareAlarmId.0")?.clone(), v.get("mwareAlarmMessage.0")?.clone()))
        })
        .collect()
}

fn sortable(id: &str) -> (u64, u64) {
    let (e, n) = id.split_once('-').unwrap();
    (e.parse().unwrap(), n.parse().unwrap())
}

fn logger(args: &[&str]) {
    let out = Command::new("logger").args(args).output().expect("logger (util-linux)");
    assert!(out.status.success(), "logger {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn metric(d: &Daemon, name: &str) -> f64 {
    let text = get_text(&format!("{}/metrics", d.api)).unwrap_or_default();
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

fn wait_alarms_running(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(d.get("/api/v1/alarms"), Some((200, _))) {
        assert!(Instant::now() < deadline, "the alarms service did not start:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn syslog_in_reaches_snmptrapd_with_the_mib_and_a_down_manager_gets_its_backlog_in_order() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp, trap1, trap2) =
        (mware_testkit::free_port(), mware_testkit::free_port(), mware_testkit::free_port(), mware_testkit::free_port());
    let port = mware_testkit::free_port();
    let site = json!({
        "site": "al",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/al", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "a10", "roletype": "mware", "iface": "lo", "group": 5, "order": 10, "api_port": port,
            "alarms": {
                "syslog": {"udp_port": udp, "tcp_port": tcp, "max_message_bytes": 1024},
                "rules": [
                    {"name": "sip-errors", "facility": ["local0"], "severity": "err"},
                    {"name": "probes", "severity": "warning", "message": "^probe "}
                ],
                "window_ms": 3000,
                "snmp": [{"address": format!("127.0.0.1:{trap1}")}, {"address": format!("127.0.0.1:{trap2}"), "inform": true, "timeout_ms": 300}]
            }
        }]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let t1 = TrapD::start(dir.path(), "trapd1", trap1);
    let d = Daemon::start(&cfg, "a10", &format!("127.0.0.1:{port}"), dir.path().join("a10.log"), &[("MWARE_API_TOKEN", TOKEN)]);
    d.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    wait_alarms_running(&d);

    let (u, t) = (udp.to_string(), tcp.to_string());
    logger(&["-n", "127.0.0.1", "-P", &u, "-d", "--rfc3164", "-p", "local0.err", "-t", "kamailio", "udp3164 dialog timeout"]);
    logger(&["-n", "127.0.0.1", "-P", &u, "-d", "--rfc5424", "-p", "local0.crit", "-t", "asterisk", "udp5424 trunk down"]);
    logger(&["-n", "127.0.0.1", "-P", &t, "-T", "--rfc3164", "-p", "local0.alert", "-t", "kamailio", "tcp3164 registrar full"]);
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &t,
        "-T",
        "--octet-count",
        "--rfc5424",
        "-p",
        "daemon.warning",
        "-t",
        "sbc",
        "probe tcp5424 octet counted",
    ]);
    logger(&["-n", "127.0.0.1", "-P", &u, "-d", "-p", "local0.info", "-t", "kamailio", "below the rule's level: no alarm"]);
    let want = [
        ("udp3164 dialog timeout", "sip-errors", "err(3)", "kamailio"),
        ("udp5424 trunk down", "sip-errors", "crit(2)", "asterisk"),
        ("tcp3164 registrar full", "sip-errors", "alert(1)", "kamailio"),
        ("probe tcp5424 octet counted", "probes", "warning(4)", "sbc"),
    ];
    for (msg, rule, sev, app) in want {
        let v = t1.wait_for(msg, Duration::from_secs(15));
        let f = |k: &str| v.get(k).map(String::as_str).unwrap_or("(none)");
        assert_eq!(f("snmpTrapOID.0"), "MWARE-ALARMS-MIB::mwareAlarm", "the MIB names the notification: {v:?}");
        assert_eq!((f("mwareAlarmRule.0"), f("mwareAlarmSeverity.0"), f("mwareAlarmApp.0")), (rule, sev, app), "{v:?}");
        assert_eq!((f("mwareAlarmSite.0"), f("mwareAlarmGroup.0"), f("mwareAlarmInstance.0")), ("al", "5", "a10"), "{v:?}");
        assert!(f("mwareAlarmId.0").contains('-') && f("mwareAlarmRaisedAt.0").ends_with('Z'), "{v:?}");
    }
    assert!(!t1.text().contains("below the rule's level"), "a message no rule matches raised an alarm");

    // Repeats within the window: one alarm, then one summary "4 more".
    for _ in 0..5 {
        logger(&["-n", "127.0.0.1", "-P", &u, "-d", "-p", "local0.err", "-t", "kamailio", "flapping trunk 7"]);
    }
    t1.wait_for("flapping trunk 7", Duration::from_secs(10));
    let summary = t1.wait_for("4 more repeated in the last window, like: flapping trunk 7", Duration::from_secs(15));
    assert_eq!(summary.get("mwareAlarmCount.0").map(String::as_str), Some("4"), "{summary:?}");
    let sent = t1.traps().iter().filter(|l| varbinds(l).get("mwareAlarmMessage.0").is_some_and(|m| m == "flapping trunk 7")).count();
    assert_eq!(sent, 1, "repeats were sent");

    // Malformed and oversized input is counted and harms nothing.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"no pri header at all", ("127.0.0.1", udp)).unwrap();
    s.send_to(&[b'<', b'1', b'1', b'>', 0xff, 0xfe], ("127.0.0.1", udp)).unwrap();
    s.send_to(format!("<131>{}", "x".repeat(3000)).as_bytes(), ("127.0.0.1", udp)).unwrap();
    {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        c.write_all(format!("<131>{}\n", "y".repeat(5000)).as_bytes()).unwrap();
        c.write_all(b"garbage line\n<131>tcp after garbage still works\n").unwrap();
    }
    t1.wait_for("tcp after garbage still works", Duration::from_secs(10));
    {
        // An octet count that never ends: the connection is cut, nothing is buffered.
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all("9".repeat(100_000).as_bytes());
        let mut b = [0u8; 16];
        let r = c.read(&mut b);
        let cut = matches!(&r, Ok(0)) || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        assert!(cut, "the endless octet count was not cut off within 5 s: {r:?}");
    }
    logger(&["-n", "127.0.0.1", "-P", &u, "-d", "-p", "local0.err", "-t", "kamailio", "udp after garbage still works"]);
    t1.wait_for("udp after garbage still works", Duration::from_secs(10));
    assert!(metric(&d, "mware_alarms_malformed_total{reason=\"unparsable\"}") >= 3.0, "unparsable not counted");
    assert!(metric(&d, "mware_alarms_malformed_total{reason=\"oversize\"}") >= 2.0, "oversize not counted");
    assert!(metric(&d, "mware_alarms_received_total") >= 14.0);

    // The inform manager has been down all along: its backlog waits, failures counted.
    let (_, v) = d.get("/api/v1/alarms").unwrap();
    let ch2 = format!("snmp:127.0.0.1:{trap2}");
    let backlog = v["channels"].as_array().unwrap().iter().find(|c| c["channel"] == ch2.as_str()).unwrap()["backlog"].as_u64().unwrap();
    assert!(backlog >= 8, "backlog of the down manager: {v}");
    assert!(metric(&d, &format!("mware_alarms_send_failed_total{{channel=\"{ch2}\"}}")) >= 1.0);
    let t2 = TrapD::start(dir.path(), "trapd2", trap2);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = d.get("/api/v1/alarms").unwrap();
        let c = v["channels"].as_array().unwrap().iter().find(|c| c["channel"] == ch2.as_str()).cloned().unwrap();
        if c["backlog"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the backlog was not sent: {c}\n{}", t2.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = ids(&t2.traps());
    let first1: Vec<String> = ids(&t1.traps()).into_iter().map(|x| x.0).collect();
    let mut unique: Vec<String> = got.iter().map(|x| x.0.clone()).collect();
    unique.dedup();
    assert!(unique.windows(2).all(|w| sortable(&w[0]) < sortable(&w[1])), "backlog out of order: {unique:?}");
    for id in &first1 {
        assert!(unique.contains(id), "alarm {id} sent to trapd1 never reached the inform manager: {unique:?}");
    }
    assert!(!d.log_text().contains(TOKEN));
}

#[test]
fn a_burst_during_a_failover_loses_no_alarm_and_a_repeat_keeps_its_id() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trap = mware_testkit::free_port();
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let role = |name: &str, order: i64, port: u16| {
        json!({"name": name, "roletype": "mware", "iface": "lo", "group": 6, "order": order, "api_port": port,
               "alarms": {"snmp": [{"address": format!("127.0.0.1:{trap}")}]}})
    };
    let site = json!({
        "site": "ab",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/ab", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("b10", 10, ports[0]), role("b20", 20, ports[1])]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let td = TrapD::start(dir.path(), "trapd", trap);
    let env = [("MWARE_API_TOKEN", TOKEN)];
    let mut b10 = Daemon::start(&cfg, "b10", &format!("127.0.0.1:{}", ports[0]), dir.path().join("b10.log"), &env);
    b10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    let b20 = Daemon::start(&cfg, "b20", &format!("127.0.0.1:{}", ports[1]), dir.path().join("b20.log"), &env);
    b20.wait_status(Duration::from_secs(10), |v| v["state"] == "passive");
    wait_alarms_running(&b10);

    // 300 alarms, one after the other; b10 is killed -9 after the 100th. A call that
    // fails is tried again on the other instance until one answers 201.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut apis = vec![b10.api.clone(), b20.api.clone()];
    let deadline = Instant::now() + Duration::from_secs(90);
    for i in 0..300 {
        if i == 100 {
            b10.child.kill9();
            apis.remove(0);
        }
        let msg = format!("burst {i}");
        loop {
            let r = apis.iter().find_map(|a| {
                match post_json(&format!("{a}/api/v1/alarms"), Some(TOKEN), &json!({"message": msg, "severity": "crit"})) {
                    Some((201, v)) => Some(v["id"].as_str().unwrap().to_string()),
                    _ => None,
                }
            });
            if let Some(id) = r {
                acked.insert(id, msg.clone());
                break;
            }
            assert!(Instant::now() < deadline, "alarm {i} was never accepted:\n{}", b20.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(acked.len(), 300);
    // Every acknowledged alarm reaches the manager; a repeat has the same id and text.
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = ids(&td.traps());
        let have: std::collections::HashSet<&String> = seen.iter().map(|x| &x.0).collect();
        let missing: Vec<&String> = acked.keys().filter(|k| !have.contains(k)).collect();
        if missing.is_empty() {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged alarms never reached the manager, such as {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut by_id: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (id, m) in &seen {
        by_id.entry(id).or_default().push(m);
    }
    let repeats = by_id.values().filter(|v| v.len() > 1).count();
    for (id, msgs) in &by_id {
        assert!(msgs.iter().all(|m| *m == msgs[0]), "alarm {id} was sent with different texts: {msgs:?}");
        if let Some(want) = acked.get(*id) {
            assert_eq!(msgs[0], want, "alarm {id}");
        }
    }
    let epochs: std::collections::BTreeSet<u64> = acked.keys().map(|k| sortable(k).0).collect();
    assert!(epochs.len() >= 2, "all alarms came from one activity: the failover did not happen mid-burst");
    eprintln!("{} alarms acknowledged over {} activities; {} traps, {} ids sent twice", acked.len(), epochs.len(), seen.len(), repeats);

    // The CLI against the survivor: the list shows the open alarms and the channel; an
    // ack needs the token, then closes the alarm.
    let cli = |args: &[&str], token: Option<&str>| {
        let mut c = Command::new(bin());
        c.args(args).env_remove("MWARE_API_TOKEN");
        if let Some(t) = token {
            c.env("MWARE_API_TOKEN", t);
        }
        let out = c.output().unwrap();
        (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (code, out) = cli(&["alarms", "list", "--api", &b20.api, "--limit", "5"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("open alarm(s)") && out.contains("burst 299") && out.contains(&format!("channel snmp:127.0.0.1:{trap}")), "{out}");
    let last = acked.iter().find(|(_, m)| *m == "burst 299").unwrap().0.clone();
    let (code, out) = cli(&["alarms", "ack", &last, "--api", &b20.api], None);
    assert_ne!(code, 0, "an ack without the token: {out}");
    let (code, out) = cli(&["alarms", "ack", &last, "--api", &b20.api], Some(TOKEN));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("acknowledged") && out.contains("acked by api"), "{out}");
    // The open list is a page (the oldest first): the newest alarm is read in `recent`.
    let (_, v) = b20.get("/api/v1/alarms").unwrap();
    let a = v["recent"].as_array().unwrap().iter().find(|a| a["id"] == last.as_str()).cloned().unwrap_or_default();
    assert_eq!(a["open"], json!(false), "{last} still open: {a}");
    assert!(v["open_total"].as_u64().unwrap() > 100 && v["open"].as_array().unwrap().len() == 100, "{}", v["open_total"]);
    let _ = Value::Null;
}

/// A local stand-in for Telegram's Bot API (no Telegram server can be reached here):
/// it speaks the two calls the bot makes, `getUpdates` (the test queues updates) and
/// `sendMessage` (recorded; the first one answers 429 with `retry_after` 1 when asked).
#[derive(Default)]
struct BotApi {
    updates: Vec<Value>,
    sent: Vec<(String, Value)>,
    throttle_next: bool,
    polls: usize,
}

type Shared = std::sync::Arc<std::sync::Mutex<BotApi>>;

async fn bot_call(
    axum::extract::State(s): axum::extract::State<Shared>,
    axum::extract::Path((bot, method)): axum::extract::Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    use axum::http::StatusCode;
    match method.as_str() {
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            for _ in 0..10 {
                let ready: Vec<Value> = {
                    let mut g = s.lock().unwrap();
                    g.polls += 1;
                    g.updates.iter().filter(|u| u["update_id"].as_i64().unwrap() >= offset).cloned().collect()
                };
                if !ready.is_empty() {
                    return (StatusCode::OK, axum::Json(json!({"ok": true, "result": ready})));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (StatusCode::OK, axum::Json(json!({"ok": true, "result": []})))
        }
        "sendMessage" => {
            let mut g = s.lock().unwrap();
            if std::mem::take(&mut g.throttle_next) {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(
                        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
                    ),
                );
            }
            g.sent.push((bot, body));
            let n = g.sent.len();
            (StatusCode::OK, axum::Json(json!({"ok": true, "result": {"message_id": n}})))
        }
        _ => (StatusCode::NOT_FOUND, axum::Json(json!({"ok": false, "description": "Not Found"}))),
    }
}

/// POST of a raw body (a JSON text serde_json would not produce) with the token.
fn reqwest_raw_post(url: &str, token: &str, body: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

fn start_bot_api() -> (Shared, u16) {
    let shared: Shared = Default::default();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let s = shared.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route("/{bot}/{method}", axum::routing::post(bot_call)).with_state(s);
            axum::serve(tokio::net::TcpListener::from_std(l).unwrap(), app).await.unwrap();
        });
    });
    (shared, port)
}

fn wait_sent(api: &Shared, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((_, b)) = api.lock().unwrap().sent.iter().find(|(_, b)| pred(b)) {
            return b.clone();
        }
        let sent: Vec<Value> = api.lock().unwrap().sent.iter().map(|x| x.1.clone()).collect();
        assert!(Instant::now() < deadline, "the bot never sent {what}; it sent {sent:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn telegram_gets_alarms_and_answers_allowed_chats_only() {
    const BOT_TOKEN: &str = "123456:bot-secret-token";
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (api, api_port) = start_bot_api();
    api.lock().unwrap().throttle_next = true;
    let port = mware_testkit::free_port();
    let closed = mware_testkit::free_port();
    let site = json!({
        "site": "tg",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/tg", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "g10", "roletype": "mware", "iface": "lo", "group": 7, "order": 10, "api_port": port,
            "monitoring": {"probes": [{"name": "sbc-sip", "kind": "tcp", "target": format!("127.0.0.1:{closed}"), "interval_ms": 300, "timeout_ms": 200, "fail_after": 1, "recover_after": 1}]},
            "alarms": {"telegram": {"api_base": format!("http://127.0.0.1:{api_port}"), "token_env": "MWARE_TG_TOKEN", "chat_ids": [111], "poll_timeout_s": 1}}
        }]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let env = [("MWARE_API_TOKEN", TOKEN), ("MWARE_TG_TOKEN", BOT_TOKEN)];
    let d = Daemon::start(&cfg, "g10", &format!("127.0.0.1:{port}"), dir.path().join("g10.log"), &env);
    d.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    wait_alarms_running(&d);

    // A monitoring state change is an alarm, formatted for people; the first send was
    // answered 429 and retried after retry_after.
    let text = |b: &Value| b["text"].as_str().unwrap_or("").to_string();
    let failing = wait_sent(&api, "the probe's failure", |b| text(b).contains("probe/sbc-sip is failing"));
    assert_eq!(failing["chat_id"], 111);
    let t = text(&failing);
    assert!(t.contains("ALARM CRIT · monitoring") && t.contains("where: g10") && t.contains("since: ") && t.contains("why: "), "{t}");
    // An alarm raised through the API reaches the chat too.
    let (code, v) = post_json(
        &format!("{}/api/v1/alarms", d.api),
        Some(TOKEN),
        &json!({"message": "trunk to PSTN down", "severity": "alert", "rule": "trunks"}),
    )
    .unwrap();
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // Bad input names every field at fault and raises nothing; no token, no alarm.
    let url = format!("{}/api/v1/alarms", d.api);
    let (code, v) = post_json(&url, Some(TOKEN), &json!({"message": 5, "severity": "loud", "x": 1})).unwrap();
    assert_eq!(code, 400, "{v}");
    let problems = v["problems"].to_string();
    assert!(problems.contains("message:") && problems.contains("severity:") && problems.contains("x:"), "{v}");
    assert_eq!(post_json(&url, None, &json!({"message": "no token"})).unwrap().0, 401);
    let dup = reqwest_raw_post(&url, TOKEN, r#"{"message": "a", "message": "b"}"#);
    assert_eq!(dup.0, 400, "a repeated key: {}", dup.1);
    assert_eq!(post_json(&format!("{url}/..%2Fetc/ack"), Some(TOKEN), &json!({})).unwrap().0, 404);
    let (_, all) = d.get("/api/v1/alarms").unwrap();
    assert!(!all.to_string().contains("no token") && !all.to_string().contains("\"loud\""), "bad input raised an alarm: {all}");
    wait_sent(&api, "the API's alarm", |b| text(b).contains("trunk to PSTN down") && text(b).contains(&format!("id {id}")));
    assert!(api.lock().unwrap().sent.iter().all(|(bot, _)| bot == &format!("bot{BOT_TOKEN}")));
    assert!(metric(&d, "mware_alarms_send_failed_total{channel=\"telegram\"}") >= 1.0, "the 429 was not counted");

    // Commands: from the allowed chat they are answered; from another chat, nothing.
    let update = |n: i64, chat: i64, text: &str| json!({"update_id": n, "message": {"message_id": n, "chat": {"id": chat, "type": "private"}, "text": text}});
    api.lock().unwrap().updates.push(update(10, 999, "/status"));
    api.lock().unwrap().updates.push(update(11, 111, "/status"));
    let st = wait_sent(&api, "an answer to /status", |b| b["chat_id"] == 111 && text(b).starts_with("site tg:"));
    assert!(text(&st).contains("sbc-sip"), "the state names the failing probe: {st}");
    api.lock().unwrap().updates.push(update(12, 111, "/groups"));
    wait_sent(&api, "an answer to /groups", |b| text(b).contains("group 7: active g10"));
    api.lock().unwrap().updates.push(update(13, 111, "/alarms"));
    wait_sent(&api, "an answer to /alarms", |b| text(b).contains("open alarm(s)") && text(b).contains(&id));
    api.lock().unwrap().updates.push(update(14, 111, &format!("/ack {id}")));
    wait_sent(&api, "an answer to /ack", |b| text(b).starts_with(&format!("acknowledged {id}")));
    let (_, v) = d.get("/api/v1/alarms").unwrap();
    let a = v["recent"].as_array().unwrap().iter().find(|a| a["id"] == id.as_str()).cloned().unwrap();
    assert_eq!((a["open"].clone(), a["acked"]["by"].clone()), (json!(false), json!("telegram:111")), "{a}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(api.lock().unwrap().sent.iter().all(|(_, b)| b["chat_id"] == 111), "a chat not in chat_ids got an answer");
    // Each update was answered once, and the offset is kept in the group's store.
    let answers = api.lock().unwrap().sent.iter().filter(|(_, b)| text(b).starts_with("site tg:")).count();
    assert_eq!(answers, 1, "/status answered more than once");

    // The probe recovers: a recovery alarm, and the failure's alarm is no longer open.
    let _l = std::net::TcpListener::bind(("127.0.0.1", closed)).unwrap();
    wait_sent(&api, "the recovery", |b| text(b).contains("probe/sbc-sip recovered"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = d.get("/api/v1/alarms").unwrap();
        if !v["open"].as_array().unwrap().iter().any(|a| a["item"] == "probe/sbc-sip") {
            break;
        }
        assert!(Instant::now() < deadline, "the failure's alarm is still open after the recovery: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!d.log_text().contains(BOT_TOKEN), "the bot token is in the log");
    assert!(!get_text(&format!("{}/metrics", d.api)).unwrap_or_default().contains(BOT_TOKEN));
}

#[test]
fn snmp_v3_authpriv_traps_and_informs_reach_snmptrapd() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (trap_port, inform_port, port) = (mware_testkit::free_port(), mware_testkit::free_port(), mware_testkit::free_port());
    // Traps: the sender's engine id is set in the section, so the manager knows it.
    let engine = "80007ed9046d776172652d7465737431";
    let v3 = |addr: u16, inform: bool| {
        let mut m = json!({"address": format!("127.0.0.1:{addr}"), "version": "v3", "user": "mwarealarms", "auth_protocol": "sha256",
            "auth_password": "auth-secret-1", "priv_protocol": "aes128", "priv_password": "priv-secret-1", "inform": inform});
        if !inform {
            m["engine_id"] = json!(engine);
        }
        m
    };
    let site = json!({
        "site": "v3",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/v3", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "v10", "roletype": "mware", "iface": "lo", "group": 8, "order": 10, "api_port": port,
            "alarms": {"snmp": [v3(trap_port, false), v3(inform_port, true)]}
        }]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    // snmptrapd with the same user: for traps under the sender's engine id, for informs
    // under its own (the sender discovers it).
    let start_v3 = |name: &str, port: u16, trap: bool| {
        let user = if trap {
            format!("createUser -e 0x{engine} mwarealarms SHA-256 auth-secret-1 AES priv-secret-1\n")
        } else {
            "createUser mwarealarms SHA-256 auth-secret-1 AES priv-secret-1\n".to_string()
        };
        TrapD::with_conf(dir.path(), name, port, &format!("{user}authUser log mwarealarms priv\n"))
    };
    let traps = start_v3("trapd-v3", trap_port, true);
    let informs = start_v3("informd-v3", inform_port, false);
    let d = Daemon::start(&cfg, "v10", &format!("127.0.0.1:{port}"), dir.path().join("v10.log"), &[("MWARE_API_TOKEN", TOKEN)]);
    d.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    wait_alarms_running(&d);
    let (code, v) =
        post_json(&format!("{}/api/v1/alarms", d.api), Some(TOKEN), &json!({"message": "v3 alarm", "severity": "crit"})).unwrap();
    assert_eq!(code, 201, "{v}");
    for (what, t) in [("trap", &traps), ("inform", &informs)] {
        let deadline = Instant::now() + Duration::from_secs(15);
        let got = loop {
            if let Some(v) = t.traps().iter().map(|l| varbinds(l)).find(|v| v.get("mwareAlarmMessage.0").is_some_and(|m| m == "v3 alarm")) {
                break v;
            }
            assert!(Instant::now() < deadline, "no v3 {what} decrypted by snmptrapd:\n{}\n{}", t.text(), d.log_text());
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(got.get("mwareAlarmSeverity.0").map(String::as_str), Some("crit(2)"), "{what}: {got:?}");
    }
    let log = d.log_text();
    assert!(!log.contains("auth-secret-1") && !log.contains("priv-secret-1"), "a v3 password is in the log");
}
