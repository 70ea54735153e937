//! Syslog forwarding of the site log against a real rsyslogd (its own config, on free
//! loopback ports): JSON lines of the chosen process arrive over UDP as RFC 5424 messages
//! with the instance as HOSTNAME, the process as APP-NAME, the stream as MSGID, the
//! section's facility and the line's level as severity, and no line of the other
//! process; a changed section (TCP with octet counting, every process) applies without
//! a restart; with the receiver gone, lines are dropped and counted while the processes'
//! lines keep reaching the store.

use mware_config::Site;
use mware_microservices::{MicroService, RunOn};
use mware_testkit::rsyslog::Rsyslog;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn site(section: Value) -> Arc<Site> {
    let v = json!({"site": "t", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
        {"name": "m1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10, "microservices": section}]}]});
    Arc::new(mware_config::validate(&v.to_string(), &mware_microservices::plugin().sections).expect("test site").site)
}

fn section(syslog: Value) -> Value {
    json!({"processes": [
        {"name": "text", "argv": ["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo \"text $i\"; sleep 0.05; done"]},
        {"name": "json", "argv": ["/bin/sh", "-c", "while true; do echo '{\"level\":\"error\",\"msg\":\"trunk down\"}'; sleep 0.05; done"]}
    ], "syslog": syslog})
}

async fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_reach_rsyslog_over_udp_then_tcp_after_a_reload_and_drops_are_counted() {
    let rs = Rsyslog::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    let svc = MicroService::with_log_dir(&mut registry, dir.path());
    let udp = json!({"target": format!("127.0.0.1:{}", rs.udp_port), "facility": "local3", "processes": ["json"]});
    let first = site(section(udp));
    svc.open_store("m1", &first).unwrap();
    let (tx, rx) = watch::channel(first);
    svc.start_forward("m1", rx.clone());
    let cancel = CancellationToken::new();
    let (s, c) = (svc.clone(), cancel.clone());
    let task = tokio::spawn(async move { s.supervise_set("m1".into(), rx, RunOn::Active, c).await });

    let got = until("json lines over UDP", 15, || {
        let r = rs.received();
        (r.len() >= 5).then_some(r)
    })
    .await;
    for l in &got {
        assert_eq!(l, r#"m1|json|stdout|local3|err|{"level":"error","msg":"trunk down"}"#, "{got:?}");
    }

    // Reload: TCP (octet-counted), every process.
    let tcp = json!({"target": format!("127.0.0.1:{}", rs.tcp_port), "transport": "tcp", "facility": "local3"});
    tx.send(site(section(tcp))).unwrap();
    let got = until("text lines over TCP", 15, || {
        let r = rs.received();
        r.iter().any(|l| l.starts_with("m1|text|stdout|local3|info|text ")).then_some(r)
    })
    .await;
    let text: Vec<&String> = got.iter().filter(|l| l.contains("|text|")).collect();
    assert!(text.iter().all(|l| l.starts_with("m1|text|stdout|local3|info|text ")), "{text:?}");
    let sent = scrape(&registry, "mware_microservices_syslog_sent_total");
    assert!(sent >= got.len() as u64, "sent {sent}, received {}", got.len());

    // The receiver gone: lines dropped and counted, the store keeps every line.
    let received_before = rs.received().len();
    drop(rs);
    let written = svc.store().unwrap().counters.written.get();
    until("drops counted", 15, || (scrape(&registry, "mware_microservices_syslog_dropped_total") >= 20).then_some(())).await;
    assert!(svc.store().unwrap().counters.written.get() >= written + 20, "the processes' lines keep reaching the store");
    assert!(received_before > 0);
    cancel.cancel();
    task.await.unwrap();
}

fn scrape(registry: &Registry, name: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0)
}
