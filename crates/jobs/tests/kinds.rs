//! Every job kind against a real peer on loopback: a TCP listener, a small HTTP server,
//! Debian's snmpd (own config, own port) and OpenSSH's sshd (mware-testkit). The
//! secrets a kind declares never appear in its result or error.

use mware_jobs::{execute, now_ms, JobMessage, JobState, Outcome, RunEnv, TargetRules};
use mware_ssh::HostKeyPolicy;
use mware_testkit::snmpd::{Snmpd, SYS_NAME};
use mware_testkit::sshd::{ensure_postgres_password, Sshd, SSH_PASSWORD, SSH_USER};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(known_hosts: &std::path::Path) -> RunEnv {
    RunEnv::new(HostKeyPolicy { known_hosts: known_hosts.to_path_buf(), trust_on_first_use: false })
}

/// Rules whose allow-list names `entries` (the peers here are on loopback, refused unless
/// an entry lies inside it).
fn allowing(entries: &[&str]) -> TargetRules {
    let allow = entries.iter().map(|e| mware_jobs::TargetPattern::parse(e).unwrap()).collect();
    TargetRules { scope: "devicemanager.allowed_targets.pool".into(), allow: Some(allow), site: vec![] }
}

async fn run_with(kind: &str, target: &str, params: Value, env: &RunEnv, rules: TargetRules) -> Outcome {
    let msg = JobMessage {
        id: "t1".into(),
        kind: kind.into(),
        target: target.into(),
        params: params.as_object().cloned().unwrap_or_default(),
        deadline_ms: now_ms() + 5000,
        rules,
    };
    execute(&msg, env).await
}

async fn run(kind: &str, target: &str, params: Value, env: &RunEnv) -> Outcome {
    run_with(kind, target, params, env, allowing(&["127.0.0.0/8"])).await
}

fn no_secret(o: &Outcome, secret: &str) {
    let text = format!("{} {:?}", o.result, o.error);
    assert!(!text.contains(secret), "secret leaked in {text}");
}

#[tokio::test]
async fn tcp_check_connects_and_reports_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir.path().join("kh"));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let o = run("tcp.check", &addr, json!({}), &e).await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
    assert!(o.result["connect_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(o.result["peer"], json!(addr));
    drop(l);
    let o = run("tcp.check", &addr, json!({}), &e).await;
    assert_eq!(o.state, JobState::Failed);
    assert!(o.error.as_deref().unwrap().contains("cannot connect"), "{o:?}");
    // Past its deadline before it starts: expired, not run.
    let msg = JobMessage {
        id: "t2".into(),
        kind: "tcp.check".into(),
        target: addr,
        params: Default::default(),
        deadline_ms: now_ms() - 10,
        rules: allowing(&["127.0.0.0/8"]),
    };
    assert_eq!(execute(&msg, &e).await.state, JobState::Expired);
}

/// A tiny HTTP/1.1 server: answers `status` with a fixed body, echoing the request line.
async fn http_server(status: u16) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = req.lines().next().unwrap_or_default().to_string();
                let auth = req.lines().any(|l| l.eq_ignore_ascii_case("x-token: s3cret-header"));
                let body = format!("{line} auth={auth}");
                let resp =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nx-test: yes\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_request_returns_status_headers_and_body() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir.path().join("kh"));
    let addr = http_server(200).await;
    let o = run("http.request", &addr, json!({"path": "/health?x=1", "headers": {"x-token": "s3cret-header"}}), &e).await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
    assert_eq!(o.result["status"], 200);
    assert_eq!(o.result["headers"]["x-test"], "yes");
    assert_eq!(o.result["body"], "GET /health?x=1 HTTP/1.1 auth=true");
    let o = run("http.request", &addr, json!({"method": "POST", "body": "x", "expect_status": 204, "max_body_bytes": 4}), &e).await;
    assert_eq!(o.state, JobState::Failed);
    assert_eq!(o.error.as_deref(), Some("expected status 204, found 200"));
    assert_eq!(o.result["body"], "POST");
    assert_eq!(o.result["truncated"], true);
    let bad = http_server(503).await;
    let o = run("http.request", &bad, json!({}), &e).await;
    assert_eq!((o.state, o.result["status"].as_u64()), (JobState::Done, Some(503)));
}

#[tokio::test]
async fn snmp_get_walk_set_against_snmpd() {
    let agent = Snmpd::start().expect("snmpd");
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir.path().join("kh"));
    let t = agent.target();

    let o =
        run("snmp.get", &t, json!({"community": "public", "oids": ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.99.0"]}), &e)
            .await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
    let vb = o.result["varbinds"].as_array().unwrap();
    assert_eq!(vb[0], json!({"oid": "1.3.6.1.2.1.1.5.0", "type": "string", "value": SYS_NAME}));
    assert_eq!(vb[1]["type"], "timeticks");
    assert_eq!(vb[2]["type"], "noSuchObject");

    let o = run("snmp.walk", &t, json!({"community": "public", "oid": "1.3.6.1.2.1.1"}), &e).await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
    let rows = o.result["varbinds"].as_array().unwrap();
    assert!(rows.len() >= 7, "system group has sysDescr..sysServices and sysOR: {rows:?}");
    assert!(rows.iter().all(|r| r["oid"].as_str().unwrap().starts_with("1.3.6.1.2.1.1.")));
    assert!(rows.iter().any(|r| r["value"] == json!(SYS_NAME)));
    let o = run("snmp.walk", &t, json!({"community": "public", "oid": "1.3.6.1.2.1.1", "max_rows": 3}), &e).await;
    assert_eq!(o.state, JobState::Failed);
    assert!(o.error.unwrap().contains("max_rows"));

    // Set sysContact with the read-write community, read it back.
    let o =
        run("snmp.set", &t, json!({"community": "private", "oid": "1.3.6.1.2.1.1.4.0", "type": "string", "value": "noc@example.net"}), &e)
            .await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
    no_secret(&o, "private");
    let o = run("snmp.get", &t, json!({"community": "public", "oid": "1.3.6.1.2.1.1.4.0"}), &e).await;
    assert_eq!(o.result["varbinds"][0]["value"], "noc@example.net");
    // The agent refuses a read-only object and a wrong type, with its error status.
    let o = run("snmp.set", &t, json!({"community": "private", "oid": "1.3.6.1.2.1.1.5.0", "type": "string", "value": "x"}), &e).await;
    assert_eq!(o.state, JobState::Failed);
    assert!(o.error.as_deref().unwrap().contains("the set was refused"), "{o:?}");
    let o = run("snmp.set", &t, json!({"community": "private", "oid": "1.3.6.1.2.1.1.4.0", "type": "integer", "value": 5}), &e).await;
    assert!(o.error.as_deref().unwrap().contains("wrongType"), "{o:?}");
    // A wrong community gets no answer at all (v2c); the error says so, without the community.
    let msg = JobMessage {
        id: "t".into(),
        kind: "snmp.get".into(),
        target: t.clone(),
        params: json!({"community": "n0t-the-community", "oid": "1.3.6.1.2.1.1.5.0"}).as_object().cloned().unwrap(),
        deadline_ms: now_ms() + 1200,
        rules: allowing(&["127.0.0.0/8"]),
    };
    let o = execute(&msg, &e).await;
    assert_eq!(o.state, JobState::Failed, "{o:?}");
    assert!(o.error.as_deref().unwrap().contains("community is wrong"), "{o:?}");
    no_secret(&o, "n0t-the-community");
}

#[tokio::test]
async fn ssh_exec_checks_the_host_key_then_runs() {
    ensure_postgres_password().unwrap();
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let e = env(&kh);
    let t = format!("127.0.0.1:{}", sshd.port);
    let params = json!({"user": SSH_USER, "password": SSH_PASSWORD, "argv": ["printf", "%s|", "a b", "$(id)", "it's"]});
    // Not pinned: refused before anything is sent.
    let o = run("ssh.exec", &t, params.clone(), &e).await;
    assert_eq!(o.state, JobState::Failed, "{o:?}");
    assert!(o.error.as_deref().unwrap().contains("known_hosts") || o.error.as_deref().unwrap().contains("unknown"), "{o:?}");
    no_secret(&o, SSH_PASSWORD);
    sshd.pin_in(&kh).unwrap();
    let o = run("ssh.exec", &t, params, &e).await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
    // Every argv word arrives as one word, nothing expanded by the remote shell.
    assert_eq!(o.result["stdout"], "a b|$(id)|it's|");
    assert_eq!(o.result["exit_code"], 0);
    let o = run("ssh.exec", &t, json!({"user": SSH_USER, "password": SSH_PASSWORD, "command": "echo oops >&2; exit 3"}), &e).await;
    assert_eq!(o.state, JobState::Failed);
    assert_eq!(o.result["exit_code"], 3);
    assert_eq!(o.result["stderr"], "oops\n");
    let o = run("ssh.exec", &t, json!({"user": SSH_USER, "password": "wrong-pw-123", "command": "true"}), &e).await;
    assert_eq!(o.state, JobState::Failed);
    no_secret(&o, "wrong-pw-123");
}

/// Every kind, with the default rules (no allow-list), is refused a loopback target
/// before anything is sent: the listeners there see no connection and no datagram. A
/// listed name that resolves to loopback is refused after resolution (DNS rebinding).
#[tokio::test]
async fn every_kind_is_refused_a_loopback_target_before_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir.path().join("kh"));
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let (t, u) = (tcp.local_addr().unwrap().to_string(), udp.local_addr().unwrap().to_string());
    let snmp = json!({"community": "public", "oid": "1.3.6.1.2.1.1.5.0"});
    let cases = [
        ("tcp.check", t.clone(), json!({})),
        ("http.request", t.clone(), json!({})),
        ("ssh.exec", t.clone(), json!({"user": "u", "password": "p4ss-word", "command": "true"})),
        ("snmp.get", u.clone(), snmp.clone()),
        ("snmp.walk", u.clone(), json!({"community": "public", "oid": "1.3.6.1.2.1.1"})),
        ("snmp.set", u.clone(), json!({"community": "private", "oid": "1.3.6.1.2.1.1.4.0", "type": "string", "value": "x"})),
    ];
    for (kind, target, params) in cases {
        let o = run_with(kind, &target, params, &e, TargetRules::default()).await;
        assert_eq!(o.state, JobState::Failed, "{kind}: {o:?}");
        assert_eq!(o.error.as_deref(), Some("target: 127.0.0.1 is loopback, refused by devicemanager's target rules"), "{kind}");
    }
    // A name in the allow-list resolving to loopback: refused after resolution.
    let port = tcp.local_addr().unwrap().port();
    let o = run_with("tcp.check", &format!("localhost:{port}"), json!({}), &e, allowing(&["localhost"])).await;
    assert_eq!(o.state, JobState::Failed, "{o:?}");
    let err = o.error.unwrap();
    assert!(err.starts_with("target: localhost resolves to ") && err.contains("which is loopback"), "{err}");
    // Another loopback address than the one allowed: refused.
    let o = run_with("tcp.check", &t, json!({}), &e, allowing(&["127.0.0.2"])).await;
    assert!(o.error.unwrap().contains("127.0.0.1 is loopback"));
    assert!(tcp.accept().is_err(), "no connection reached the listener");
    assert!(udp.recv_from(&mut [0u8; 64]).is_err(), "no datagram reached the socket");
    // The same target allowed explicitly: the connection is made.
    let o = run_with("tcp.check", &t, json!({}), &e, allowing(&["127.0.0.1"])).await;
    assert_eq!(o.state, JobState::Done, "{o:?}");
}

#[test]
fn parameters_are_checked_with_their_fields() {
    use mware_jobs::{check_job, Problems};
    let cases = [
        ("snmp.get", json!({}), vec!["params.community", "params.oid"]),
        ("snmp.get", json!({"community": "c", "oid": "1.3", "oids": ["1.3"]}), vec!["params.oids"]),
        ("snmp.set", json!({"community": "c", "oid": "1.3.6", "type": "integer", "value": "abc"}), vec!["params.value"]),
        ("snmp.walk", json!({"community": "c", "oid": "iso.3"}), vec!["params.oid"]),
        ("ssh.exec", json!({"user": "u"}), vec!["params.password", "params.command"]),
        ("http.request", json!({"method": "BREW", "path": "x", "extra": 1}), vec!["params.extra", "params.method", "params.path"]),
        ("tcp.check", json!({"port": 1}), vec!["params.port"]),
    ];
    for (kind, params, want) in cases {
        let mut p = Problems::new("");
        check_job(&mut p, Some(kind), Some("h:1"), params.as_object().unwrap());
        let got: Vec<String> = p.list.iter().map(|x| x.field.clone()).collect();
        assert_eq!(got, want, "{kind} {params}");
        assert!(!p.list.iter().any(|x| x.message.contains("\"c\"")), "a community in a message: {:?}", p.list);
    }
}
