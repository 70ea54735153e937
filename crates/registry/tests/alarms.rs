//! The `alarms` section (issue 19): defaults, the example, every problem with its path,
//! and its secrets (community, v3 passwords) never shown.

mod common;
use common::*;
use serde_json::json;

#[test]
fn defaults_and_the_example() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/alarms", json!({}));
    let a = ok(&v).site.instance("mware1").unwrap().role.section::<mware_alarms::Alarms>().unwrap();
    assert!(a.enabled && a.syslog.is_none() && a.rules.is_empty() && a.snmp.is_empty() && a.telegram.is_none());
    assert_eq!((a.window_ms, a.history, a.max_outbox), (60_000, 1000, 100_000));
    assert_eq!((a.monitoring.failing.as_str(), a.monitoring.warning.as_str(), a.monitoring.ok.as_str()), ("crit", "warning", "notice"));
    let text = std::fs::read_to_string(format!("{}/../../examples/site.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let site = mware_registry::validate(&text).expect("examples/site.json validates").site;
    let a = site.instance("mware3").unwrap().role.section::<mware_alarms::Alarms>().unwrap();
    assert_eq!(a.rules.len(), 2);
    assert_eq!(a.telegram.unwrap().api_base, "https://api.telegram.org");
    let shown = format!("{:?} {}", a.snmp, serde_json::to_string(&a.snmp).unwrap());
    assert!(!shown.contains("change-me"), "{shown}");
}

#[test]
fn every_problem_with_its_path_and_no_secret() {
    let mut v = base();
    set(
        &mut v,
        "/servers/0/roles/0/alarms",
        json!({
            "syslog": {"max_message_bytes": 10, "colour": 1},
            "rules": [
                {"name": "a", "facility": ["local9"], "severity": "loud", "message": "(unclosed"},
                {"name": "a", "host": "[z-a]"},
                {"facility": "local0"}
            ],
            "window_ms": 5,
            "monitoring": {"failing": "panic"},
            "snmp": [
                {"address": "nowhere", "version": "v4"},
                {"address": "10.0.0.9:162", "version": "v3", "auth_password": "short", "community": "s3cr3t-community"},
                {"address": "10.0.0.9:162", "user": "u", "priv_password": "v3-s3cr3t-priv"}
            ],
            "telegram": {"api_base": "ftp://x", "token_env": "1BAD-NAME", "chat_ids": ["me"]},
            "history": 0
        }),
    );
    let problems = errors(&v);
    let text = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n");
    let a = "servers[0].roles[0].alarms";
    for path in [
        "syslog",
        "syslog.colour",
        "syslog.max_message_bytes",
        "rules[0].facility[0]",
        "rules[0].severity",
        "rules[0].message",
        "rules[1].name",
        "rules[1].host",
        "rules[2].name",
        "rules[2].facility",
        "window_ms",
        "monitoring.failing",
        "snmp[0].address",
        "snmp[0].version",
        "snmp[1]",
        "snmp[1].auth_password",
        "snmp[1].priv_password",
        "snmp[1].community",
        "snmp[2].user",
        "snmp[2].priv_password",
        "telegram.api_base",
        "telegram.token_env",
        "telegram.chat_ids[0]",
        "history",
    ] {
        let full = format!("{a}.{path}");
        assert!(problems.iter().any(|p| p.path == full), "{full} missing:\n{text}");
    }
    assert!(text.contains("(unclosed"), "the regex is quoted with the parser's reason:\n{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn at_most_sixteen_managers() {
    let mut v = base();
    let managers: Vec<_> = (0..17).map(|i| json!({"address": format!("127.0.0.1:{}", 1620 + i)})).collect();
    set(&mut v, "/servers/0/roles/0/alarms", json!({"snmp": managers}));
    let problems = errors(&v);
    let p = problems.iter().find(|p| p.path == "servers[0].roles[0].alarms.snmp").expect("the list is named");
    assert!(p.message.contains("at most 16") && p.message.contains("found 17"), "{}", p.message);
    set(&mut v, "/servers/0/roles/0/alarms/snmp", json!(managers[..16].to_vec()));
    assert_eq!(ok(&v).site.instance("mware1").unwrap().role.section::<mware_alarms::Alarms>().unwrap().snmp.len(), 16);
}

#[test]
fn syslog_tcp_limits_per_peer_and_idle() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/alarms", json!({"syslog": {"tcp_port": 5514}}));
    let s = ok(&v).site.instance("mware1").unwrap().role.section::<mware_alarms::Alarms>().unwrap().syslog.unwrap();
    assert_eq!((s.max_connections, s.per_peer(), s.tcp_idle_timeout_ms), (256, 16, 30_000));
    let p = "servers[0].roles[0].alarms.syslog";
    // Bad values, each named with its path.
    set(&mut v, "/servers/0/roles/0/alarms/syslog", json!({"tcp_port": 5514, "max_connections_per_peer": 0, "tcp_idle_timeout_ms": "30s"}));
    let problems = errors(&v);
    for k in ["max_connections_per_peer", "tcp_idle_timeout_ms"] {
        let q = problems.iter().find(|q| q.path == format!("{p}.{k}")).unwrap_or_else(|| panic!("{k} not named: {problems:?}"));
        assert!(q.message.starts_with("expected an integer from"), "{}", q.message);
    }
    // One peer may not take every slot.
    set(&mut v, "/servers/0/roles/0/alarms/syslog", json!({"tcp_port": 5514, "max_connections": 8, "max_connections_per_peer": 8}));
    let q = errors(&v).into_iter().find(|q| q.path == format!("{p}.max_connections_per_peer")).expect("named");
    assert!(q.message.contains("fewer than max_connections (8)") && q.message.contains("found 8"), "{}", q.message);
    // A small total without a per-peer cap stays valid (sites written before the cap): half.
    set(&mut v, "/servers/0/roles/0/alarms/syslog", json!({"tcp_port": 5514, "max_connections": 8}));
    assert_eq!(ok(&v).site.instance("mware1").unwrap().role.section::<mware_alarms::Alarms>().unwrap().syslog.unwrap().per_peer(), 4);
    set(&mut v, "/servers/0/roles/0/alarms/syslog", json!({"tcp_port": 5514, "max_connections": 1}));
    assert_eq!(ok(&v).site.instance("mware1").unwrap().role.section::<mware_alarms::Alarms>().unwrap().syslog.unwrap().per_peer(), 1);
    set(
        &mut v,
        "/servers/0/roles/0/alarms/syslog",
        json!({"tcp_port": 5514, "max_connections": 8, "max_connections_per_peer": 2, "tcp_idle_timeout_ms": 500}),
    );
    let s = ok(&v).site.instance("mware1").unwrap().role.section::<mware_alarms::Alarms>().unwrap().syslog.unwrap();
    assert_eq!((s.max_connections, s.per_peer(), s.tcp_idle_timeout_ms), (8, 2, 500));
}
