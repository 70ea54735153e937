//! Each probe kind against its real peer on loopback: Debian's dnsmasq, a TCP listener,
//! an HTTP server, the machine's PostgreSQL, an H.248 responder of the test's own (it
//! answers AuditValue with a Reply, an error, a TransactionPending first, another
//! transaction id, or nothing), two folders kept in sync by a thread of the test, and
//! commands. Each check's reason says what was found.

use mware_monitor::{Checker, Probe};
use mware_testkit::{free_port, Child};
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn probe(v: Value) -> Probe {
    let mut v = v;
    v["name"] = json!("p");
    serde_json::from_value(v).expect("probe")
}

async fn check(v: Value) -> Result<String, String> {
    check_with(v, mware_monitor::ProbeEnv::new(&Default::default())).await
}

async fn check_with(v: Value, env: mware_monitor::ProbeEnv) -> Result<String, String> {
    let p = probe(v);
    let c = Checker::new(&p, &env).expect("prepared");
    c.check(p.timeout()).await
}

fn dnsmasq(dir: &Path, port: u16) -> Child {
    let mut cmd = std::process::Command::new("/usr/sbin/dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
    .args([
        "--host-record=sip.example.test,10.1.2.3",
        "--host-record=multi.example.test,10.1.2.4",
        "--host-record=multi.example.test,10.1.2.5",
    ]);
    let c = Child::spawn("dnsmasq", cmd, &dir.join("dnsmasq.log")).expect("start dnsmasq (apt-get install dnsmasq-base)");
    std::thread::sleep(Duration::from_millis(300));
    c
}

#[tokio::test]
async fn dns_against_dnsmasq() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut dns = dnsmasq(dir.path(), port);
    let resolver = format!("127.0.0.1:{port}");
    let r =
        check(json!({"kind": "dns", "target": "sip.example.test", "resolver": resolver, "expect": ["10.1.2.3"], "timeout_ms": 2000})).await;
    let ok = r.unwrap();
    assert!(ok.starts_with(&format!("sip.example.test. resolved via {resolver} to 10.1.2.3")), "{ok}");
    let r = check(json!({"kind": "dns", "target": "multi.example.test", "resolver": resolver, "expect": ["10.1.2.5", "10.1.2.4"]})).await;
    assert!(r.is_ok(), "{r:?}");
    let e = check(json!({"kind": "dns", "target": "sip.example.test", "resolver": resolver, "expect": ["10.9.9.9"]})).await.unwrap_err();
    assert!(e.contains("resolved via") && e.contains("to 10.1.2.3, expected it to include 10.9.9.9"), "{e}");
    let e = check(json!({"kind": "dns", "target": "nowhere.example.test", "resolver": resolver})).await.unwrap_err();
    assert!(e.starts_with("nowhere.example.test. via"), "{e}");
    // The DNS server stops: the check fails in time.
    dns.kill9();
    let t0 = std::time::Instant::now();
    let e = check(json!({"kind": "dns", "target": "sip.example.test", "resolver": resolver, "timeout_ms": 1000})).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(1500), "{:?}", t0.elapsed());
    assert!(!e.is_empty());
}

#[tokio::test]
async fn tcp_against_a_listener() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let ok = check(json!({"kind": "tcp", "target": addr})).await.unwrap();
    assert!(ok.starts_with(&format!("connected to {addr}")), "{ok}");
    drop(l);
    let e = check(json!({"kind": "tcp", "target": addr})).await.unwrap_err();
    assert!(e.starts_with(&format!("cannot connect to {addr}: ")) && e.to_lowercase().contains("refused"), "{e}");
}

#[tokio::test]
async fn http_against_a_server() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/health", get(|| async { "status: all systems ok" }))
        .route("/down", get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maintenance") }))
        .route("/moved", get(|| async { axum::response::Redirect::temporary("/health") }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let ok = check(json!({"kind": "http", "target": format!("{base}/health"), "body_contains": "all systems ok"})).await.unwrap();
    assert!(ok.contains("answered 200 with \"all systems ok\" in its body"), "{ok}");
    let e = check(json!({"kind": "http", "target": format!("{base}/down")})).await.unwrap_err();
    assert!(e.ends_with("/down answered 503, expected 200"), "{e}");
    assert!(check(json!({"kind": "http", "target": format!("{base}/down"), "status": 503})).await.is_ok());
    let e = check(json!({"kind": "http", "target": format!("{base}/health"), "body_contains": "version 2"})).await.unwrap_err();
    assert!(e.contains("does not contain \"version 2\""), "{e}");
    // Redirects are reported, not followed.
    let e = check(json!({"kind": "http", "target": format!("{base}/moved")})).await.unwrap_err();
    assert!(e.contains("answered 307"), "{e}");
}

#[tokio::test]
async fn postgres_against_the_machines_server() {
    let dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres password=s3cret-never-shown";
    let ok = check(json!({"kind": "postgres", "dsn": dsn, "query": "select 1 union all select 2"})).await.unwrap();
    assert!(ok.starts_with("connected; \"select 1 union all select 2\" answered 2 row(s)"), "{ok}");
    let e = check(json!({"kind": "postgres", "dsn": dsn, "query": "select * from no_such_table"})).await.unwrap_err();
    assert!(e.contains("failed") && e.contains("no_such_table"), "{e}");
    assert!(!e.contains("s3cret"));
    let port = free_port();
    let e = check(json!({"kind": "postgres", "dsn": format!("host=127.0.0.1 port={port} user=postgres password=s3cret-never-shown")}))
        .await
        .unwrap_err();
    assert!(e.starts_with("cannot connect: "), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// How the test's H.248 responder answers.
#[derive(Clone, Copy)]
enum Mg {
    Reply,
    Error,
    PendingThenReply,
    WrongTid,
    Silent,
}

/// A small MG: answers each AuditValue on ROOT as `mode` says; returns its address and
/// what it received.
fn mg(mode: Mg) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap().to_string();
    let got = Arc::new(std::sync::Mutex::new(vec![]));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            g.lock().unwrap().push(text.clone());
            // The request names its transaction: `Transaction = <id> {`.
            let Some(tid) =
                text.split("Transaction = ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let head = "MEGACO/1 [127.0.0.1]:2944\r\n";
            let replies: Vec<String> = match mode {
                Mg::Reply => vec![format!("{head}Reply = {tid} {{\r\n  Context = - {{\r\n    AuditValue = ROOT {{ Packages {{ root/2, g/1 }} }}\r\n  }}\r\n}}\r\n")],
                Mg::Error => vec![format!("{head}Reply = {tid} {{ Context = - {{ AuditValue = ROOT {{ Error = 431 {{ \"No such termination\" }} }} }} }}")],
                Mg::PendingThenReply => vec![format!("{head}TransactionPending = {tid} {{ }}"), format!("{head}P={tid}{{C=-{{AV=ROOT}}}}")],
                Mg::WrongTid => vec![format!("{head}Reply = {} {{ Context = - {{ AuditValue = ROOT }} }}", tid + 1)],
                Mg::Silent => vec![],
            };
            for (i, r) in replies.iter().enumerate() {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(150));
                }
                let _ = s.send_to(r.as_bytes(), from);
            }
        }
    });
    (addr, got)
}

#[tokio::test]
async fn megaco_against_the_test_responder() {
    let (addr, got) = mg(Mg::Reply);
    let ok = check(json!({"kind": "megaco", "target": addr, "mid": "[127.0.0.1]:2945"})).await.unwrap();
    assert!(ok.starts_with(&format!("{addr} ([127.0.0.1]:2944) replied to AuditValue transaction")), "{ok}");
    let sent = got.lock().unwrap()[0].clone();
    assert!(sent.starts_with("MEGACO/1 [127.0.0.1]:2945\r\nTransaction = ") && sent.contains("AuditValue = ROOT"), "{sent}");

    let (addr, _) = mg(Mg::Error);
    let e = check(json!({"kind": "megaco", "target": addr})).await.unwrap_err();
    assert!(e.contains("with error 431 (No such termination)"), "{e}");

    let (addr, got) = mg(Mg::PendingThenReply);
    assert!(check(json!({"kind": "megaco", "target": addr})).await.is_ok());
    // Without `mid`, the probe sends as its own socket's address.
    assert!(got.lock().unwrap()[0].starts_with("MEGACO/1 [127.0.0.1]:"));

    let (addr, _) = mg(Mg::WrongTid);
    let e = check(json!({"kind": "megaco", "target": addr, "timeout_ms": 500})).await.unwrap_err();
    assert!(e.contains("within 500 ms: it sent only no reply to transaction"), "{e}");

    let (addr, _) = mg(Mg::Silent);
    let e = check(json!({"kind": "megaco", "target": addr, "timeout_ms": 400})).await.unwrap_err();
    assert!(e.ends_with("no datagram came back"), "{e}");
}

/// Copies every file of `from` into `to` every 100 ms while `on`.
fn syncer(from: &Path, to: &Path, on: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if on.load(Ordering::Relaxed) {
                for e in std::fs::read_dir(&from).into_iter().flatten().flatten() {
                    let name = e.file_name();
                    if !name.to_string_lossy().ends_with(".tmp") {
                        let tmp = to.join(format!("{}.sync", name.to_string_lossy()));
                        if std::fs::copy(e.path(), &tmp).is_ok() {
                            let _ = std::fs::rename(&tmp, to.join(&name));
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

#[tokio::test]
async fn fsync_against_two_folders_kept_in_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    for d in [&a, &b, &c] {
        std::fs::create_dir(d).unwrap();
    }
    let on = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    syncer(&a, &b, on.clone(), stop.clone());
    syncer(&a, &c, Arc::new(AtomicBool::new(true)), stop.clone());
    let cfg = json!({"kind": "fsync", "target": a.display().to_string(), "copies": [b.display().to_string(), c.display().to_string()], "timeout_ms": 2000});
    let ok = check(cfg.clone()).await.unwrap();
    assert!(ok.contains("appeared in 2 copies within"), "{ok}");
    // The synchronisation to b stops: b keeps the older canary.
    on.store(false, Ordering::Relaxed);
    let e = check(cfg.clone()).await.unwrap_err();
    assert!(e.contains(&format!("{} has an older canary", b.display())) && !e.contains(&c.display().to_string()), "{e}");
    // A folder that is not there.
    let e = check(json!({"kind": "fsync", "target": dir.path().join("gone").display().to_string(), "copies": [b.display().to_string()]}))
        .await
        .unwrap_err();
    assert!(e.starts_with("cannot write the canary into"), "{e}");
    stop.store(true, Ordering::Relaxed);
}

#[tokio::test]
async fn command_probes() {
    assert_eq!(check(json!({"kind": "command", "command": ["true"]})).await.unwrap().split(" (").next(), Some("exited with 0"));
    let e = check(json!({"kind": "command", "command": ["/bin/sh", "-c", "echo checking; echo license expired >&2; exit 2"]}))
        .await
        .unwrap_err();
    assert_eq!(e, "/bin/sh exited with 2: license expired");
    let e = check(json!({"kind": "command", "command": ["sleep", "10"], "timeout_ms": 500})).await.unwrap_err();
    assert!(e.starts_with("sleep did not exit within 450 ms; its process group was killed"), "{e}");
}

#[tokio::test]
async fn fsync_with_a_copy_read_over_ssh() {
    use mware_testkit::sshd::{ensure_postgres_password, Sshd, SSH_PASSWORD, SSH_USER};
    use std::os::unix::fs::PermissionsExt;
    ensure_postgres_password().unwrap();
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b b"));
    for d in [dir.path(), &a, &b] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let known = dir.path().join("known_hosts");
    sshd.pin_in(&known).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    syncer(&a, &b, Arc::new(AtomicBool::new(true)), stop.clone());
    let env = |known: &Path| mware_monitor::ProbeEnv {
        http: mware_monitor::http_client(),
        host_keys: mware_ssh::HostKeyPolicy { known_hosts: known.to_path_buf(), trust_on_first_use: false },
    };
    // The copy's path has a space: it is shell-quoted on the remote command line.
    let copy = json!({"host": "127.0.0.1", "port": sshd.port, "user": SSH_USER, "password": SSH_PASSWORD, "path": b.display().to_string()});
    let cfg = json!({"kind": "fsync", "target": a.display().to_string(), "ssh_copies": [copy], "timeout_ms": 5000});
    let ok = check_with(cfg.clone(), env(&known)).await.unwrap();
    assert!(ok.contains("appeared in 1 copy within"), "{ok}");
    // The synchronisation stops: the remote copy keeps the older canary.
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let e = check_with(cfg.clone(), env(&known)).await.unwrap_err();
    assert!(e.contains(&format!("postgres@127.0.0.1:{}:{} has an older canary", sshd.port, b.display())), "{e}");
    assert!(!e.contains(SSH_PASSWORD));
    // A host whose key is not pinned is refused: nothing is sent to it.
    let e = check_with(cfg, env(&dir.path().join("empty_known_hosts"))).await.unwrap_err();
    assert!(e.starts_with(&format!("postgres@127.0.0.1:{}:", sshd.port)) && e.contains("known_hosts"), "{e}");
}
