//! The callmanager's `sip` section (issue 25): defaults, the example, every problem with
//! its path, the password never shown.

mod common;
use common::*;
use serde_json::json;

#[test]
fn defaults_and_the_example() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/sip", json!({"outbound_proxy": "sip:10.0.0.5:5060"}));
    let s = ok(&v).site.instance("mware1").unwrap().role.section::<mware_callmanager::SipConfig>().unwrap();
    assert_eq!((s.port, s.answer_timeout_s, s.max_duration_s, s.session_timer_s), (5060, 30, 3600, 1800));
    assert_eq!((s.limits.calls_per_domain, s.limits.calls_per_site, s.limits.calls_per_second), (100, 1000, 50));
    assert!(s.credentials.is_none() && s.registrar_rpc.is_none());
    let text = std::fs::read_to_string(format!("{}/../../examples/site.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let site = mware_registry::validate(&text).expect("examples/site.json validates").site;
    let s = site.instance("mware3").unwrap().role.section::<mware_callmanager::SipConfig>().unwrap();
    assert_eq!(s.credentials.as_ref().unwrap().password.expose(), "change-me");
    let shown = format!("{s:?} {}", serde_json::to_string(&s).unwrap());
    assert!(!shown.contains("change-me"), "{shown}");
    assert!(site.instance("mware1").unwrap().role.section::<mware_callmanager::SipConfig>().is_none(), "off when absent");
}

#[test]
fn every_problem_with_its_path_and_no_secret() {
    let mut v = base();
    set(
        &mut v,
        "/servers/0/roles/0/sip",
        json!({
            "port": 0,
            "transports": ["udp", "sctp"],
            "credentials": {"user": "mw are", "password": 12345678, "colour": 1},
            "registrar_rpc": "ftp://x",
            "limits": {"calls_per_second": 0, "calls": 1},
            "answer_timeout_s": 31,
            "session_timer_s": 30,
            "bogus": true
        }),
    );
    let problems = errors(&v);
    let text = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n");
    let at = "servers[0].roles[0].sip";
    for path in [
        "port",
        "transports[1]",
        "outbound_proxy",
        "credentials.user",
        "credentials.password",
        "credentials.colour",
        "registrar_rpc",
        "limits.calls_per_second",
        "limits.calls",
        "answer_timeout_s",
        "session_timer_s",
        "bogus",
    ] {
        assert!(problems.iter().any(|p| p.path == format!("{at}.{path}")), "no problem at {at}.{path}:\n{text}");
    }
    assert!(!text.contains("12345678"), "a secret is never shown: {text}");
    set(&mut v, "/servers/0/roles/0/sip", json!({"outbound_proxy": "sip:proxy.example.ru"}));
    let p = errors(&v);
    assert!(p.iter().any(|p| p.path == format!("{at}.outbound_proxy") && p.message.contains("IP address and port")), "{}", show(&p));
}
