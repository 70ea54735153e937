//! The microservices service in a real `mware run` daemon: processes supervised with
//! their lines in the site log (JSON fields parsed), the API and `mware ms`, an
//! operator's stop, the console's panel (its pointers resolve in the document it names),
//! the UDP mirror through `mware udp-mirror test`, a line forwarded
//! as syslog to the alarms service of the same instance raising an alarm by its rule,
//! and a kill -9 of the daemon leaving none of its processes.

mod common;

use common::{free_addr, get_json, get_text, post_json, Daemon};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "ms-token";

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok()
}

fn wait<T>(what: &str, d: &Daemon, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new(common::bin()).args(args).env("MWARE_API_TOKEN", TOKEN).output().unwrap();
    assert!(out.status.success(), "mware {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The console's panel: its rows and columns resolve in the document it names.
fn console_panel(api: &str) {
    let (_, console) = get_json(&format!("{api}/api/v1/console")).unwrap();
    let panel = &console["panels"]["microservices"];
    let (_, doc) = get_json(&format!("{api}{}", panel["source"].as_str().unwrap())).unwrap();
    let rows = doc.pointer(panel["rows"].as_str().unwrap()).and_then(Value::as_array).expect("the panel's rows");
    assert_eq!(rows.len(), 2, "{doc}");
    for c in ["/name", "/run_on", "/state", "/pid", "/since_ms", "/restarts", "/reason"] {
        assert!(panel["columns"].as_array().unwrap().iter().any(|x| x["value"] == c), "{panel}");
        assert!(rows.iter().all(|r| r.pointer(c).is_some()), "{c} in {doc}");
    }
    assert_eq!(panel["actions"].as_array().map(Vec::len), Some(3), "{panel}");
}

/// The json process's lines, forwarded as syslog to the alarms service, raise an alarm.
fn forwarded_line_raises_an_alarm(d: &Daemon, api: &str) {
    let alarm = wait("an alarm from a forwarded line", d, || {
        let (_, v) = get_json(&format!("{api}/api/v1/alarms"))?;
        v["recent"].as_array()?.iter().find(|a| a["rule"] == "ms-errors").cloned()
    });
    assert_eq!(
        (alarm["host"].as_str(), alarm["app"].as_str(), alarm["severity"].as_str()),
        (Some("m10"), Some("json"), Some("err")),
        "{alarm}"
    );
    assert!(alarm["message"].as_str().unwrap().contains("\"msg\":\"boom\""), "{alarm}");
    let metrics = get_text(&format!("{api}/metrics")).unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("mware_microservices_syslog_sent_total ") && !l.ends_with(" 0")), "{metrics}");
}

#[test]
fn supervised_processes_their_log_the_mirror_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let (port, addr) = free_addr();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let alarms_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let site = json!({
        "site": "ms",
        "coordination": {"backend": "embedded", "path": dir.path().join("coord.sqlite").display().to_string(), "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "m10", "roletype": "mware", "iface": "lo", "group": 7, "order": 10, "api_port": port,
            "microservices": {
                "processes": [
                    {"name": "text", "argv": ["/bin/sh", "-c", "while true; do echo hello from text; sleep 0.1; done"], "env": {"API_KEY": "s3cr3t-value"}},
                    {"name": "json", "run_on": "every", "argv": ["/bin/sh", "-c", "while true; do echo '{\"level\":\"error\",\"msg\":\"boom\",\"code\":42}'; sleep 0.1; done"]}
                ],
                "udp_mirror": {"ports": [udp], "per_source_pps": 1000, "allowed_networks": ["127.0.0.0/8"]},
                "syslog": {"target": format!("127.0.0.1:{alarms_udp}"), "facility": "local4", "processes": ["json"]}
            },
            "alarms": {
                "syslog": {"udp_port": alarms_udp},
                "rules": [{"name": "ms-errors", "facility": ["local4"], "severity": "err", "app": "^json$", "message": "boom"}]
            }
        }]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let mut d = Daemon::start(
        &cfg,
        "m10",
        &addr,
        dir.path().join("m10.log"),
        &[("MWARE_API_TOKEN", TOKEN), ("MWARE_LOG_DIR", logs.to_str().unwrap())],
    );
    d.wait_status(Duration::from_secs(30), |v| {
        v["state"] == "active"
            && v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["name"] == "microservices" && x["state"] == "running"))
    });
    let api = d.api.clone();
    let procs = wait("both processes running", &d, || {
        let (_, v) = get_json(&format!("{api}/api/v1/microservices"))?;
        let ps = v["processes"].as_array()?.clone();
        (ps.len() == 2 && ps.iter().all(|p| p["state"] == "running" && p["pid"].is_u64())).then_some(ps)
    });
    let pids: Vec<u64> = procs.iter().map(|p| p["pid"].as_u64().unwrap()).collect();

    // JSON lines: one per line, fields parsed.
    let body = wait("json lines", &d, || {
        get_text(&format!("{api}/api/v1/logs?process=json&level=error&limit=5")).filter(|b| b.lines().count() == 5)
    });
    for l in body.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!((v["instance"].as_str(), v["stream"].as_str(), v["fields"]["code"].as_i64()), (Some("m10"), Some("stdout"), Some(42)));
    }
    let (code, e) = get_json(&format!("{api}/api/v1/logs?since=yesterday")).unwrap();
    assert_eq!((code, e["field"].as_str()), (400, Some("since")), "{e}");

    console_panel(&api);

    // The CLI.
    let list = cli(&["ms", "list", "--api", &api]);
    assert!(list.contains("text") && list.contains("json") && list.contains("running"), "{list}");
    let lines = cli(&["logs", "--api", &api, "--process", "text", "--since", "1m", "--grep", "^hello", "--limit", "3"]);
    assert_eq!(lines.lines().filter(|l| l.contains("m10/text stdout: hello from text")).count(), 3, "{lines}");
    let mirror = cli(&["udp-mirror", "test", &format!("127.0.0.1:{udp}"), "--rate", "200", "--duration", "1s"]);
    assert!(mirror.contains("sent 200 received 200 loss 0.00%") && mirror.contains("source port kept"), "{mirror}");

    // An operator's stop: refused without the token, done with it.
    let (code, _) = post_json(&format!("{api}/api/v1/microservices/text/stop"), None, &json!({})).unwrap();
    assert_eq!(code, 401);
    let (code, _) = post_json(&format!("{api}/api/v1/microservices/text/stop"), Some(TOKEN), &json!({})).unwrap();
    assert_eq!(code, 202);
    wait("text stopped", &d, || {
        let (_, v) = get_json(&format!("{api}/api/v1/microservices"))?;
        v["processes"].as_array()?.iter().any(|p| p["name"] == "text" && p["state"] == "stopped").then_some(())
    });
    assert!(!alive(pids[procs.iter().position(|p| p["name"] == "text").unwrap()]), "the stopped process is gone");
    cli(&["ms", "start", "text", "--api", &api]);
    let text_pid = wait("text running again", &d, || {
        let (_, v) = get_json(&format!("{api}/api/v1/microservices"))?;
        v["processes"].as_array()?.iter().find(|p| p["name"] == "text" && p["state"] == "running")?["pid"].as_u64()
    });

    forwarded_line_raises_an_alarm(&d, &api);

    // No secret anywhere the daemon shows.
    let (_, status) = get_json(&format!("{api}/api/v1/status")).unwrap();
    assert!(!status.to_string().contains("s3cr3t-value") && !d.log_text().contains("s3cr3t-value"));

    // kill -9 of the daemon: none of its processes survives.
    let json_pid = pids[procs.iter().position(|p| p["name"] == "json").unwrap()];
    d.child.kill9();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(text_pid) || alive(json_pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(text_pid) && !alive(json_pid), "a supervised process survived the kill -9 of mware");
    // Files of the site log: 0600 in 0700 folders.
    use std::os::unix::fs::PermissionsExt;
    let store = logs.join("microservices/m10");
    assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(store.join("site.log")).unwrap().permissions().mode() & 0o777, 0o600);
}
