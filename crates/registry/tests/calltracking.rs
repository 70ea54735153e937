//! The `calltracking` section (issue 26) through the whole-file validator: defaults, the
//! example, every problem with its path.

mod common;
use common::*;
use serde_json::json;

#[test]
fn defaults_and_the_example() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/calltracking", json!({"registrar_rpc": "http://10.0.0.5:5071/RPC"}));
    let c = ok(&v).site.instance("mware1").unwrap().role.section::<mware_calltracking::CallTrackingConfig>().unwrap();
    assert_eq!((c.resync_ms, c.options.interval_ms, c.options.timeout_ms), (1000, 10_000, 2000));
    assert_eq!((c.sg_check.interval_ms, c.sg_check.timeout_ms, c.sg_check.fail_after), (1000, 500, 3));
    assert_eq!((c.journal_size, c.max_live_calls), (1000, 10_000));
    assert!(c.static_registrations.is_empty() && c.sg.is_empty());
    let text = std::fs::read_to_string(format!("{}/../../examples/site.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let site = mware_registry::validate(&text).expect("examples/site.json validates").site;
    let c = site.instance("mware3").unwrap().role.section::<mware_calltracking::CallTrackingConfig>().unwrap();
    assert_eq!((c.static_registrations.len(), c.sg.len()), (2, 2));
    assert!(site.instance("mware1").unwrap().role.section::<mware_calltracking::CallTrackingConfig>().is_none(), "off when absent");
}

#[test]
fn every_problem_with_its_path() {
    let mut v = base();
    set(
        &mut v,
        "/servers/0/roles/0/calltracking",
        json!({
            "resync_ms": 5,
            "static_registrations": [
                {"domain": "d.test", "user": "gw 1", "contact": "sip:gw1@gw.example"},
                {"domain": "-bad-", "user": "gw2", "contact": "sip:gw2@10.0.0.1", "transport": "sctp", "colour": 1},
                {"domain": "D.test", "user": "gw1", "contact": "sip:gw1@10.0.0.2"},
                {"domain": "d.test", "user": "gw1", "contact": "sip:gw1@10.0.0.3"}
            ],
            "options": {"interval_ms": 1000, "timeout_ms": 5000},
            "sg": [{"name": "sg1", "address": "sip:sg1.example"}, {"name": "sg1", "address": "sip:10.0.0.7", "path_address": "x"}],
            "sg_check": {"fail_after": 0},
            "journal_size": 0,
            "external": {"listen": "nowhere", "expires_s": 5, "numbers": [
                {"domain": "d.test", "number": "tel:201", "server": "sip:presence.example"},
                {"domain": "d.test", "number": "sip:201@other.test", "server": "sip:10.0.1.5"},
                {"domain": "D.test", "number": "sip:201@other.test", "server": "sip:10.0.1.5", "extra": 1}
            ]},
            "bogus": true
        }),
    );
    let problems = errors(&v);
    let text = show(&problems);
    let at = "servers[0].roles[0].calltracking";
    for path in [
        "registrar_rpc",
        "resync_ms",
        "static_registrations[0].user",
        "static_registrations[0].contact",
        "static_registrations[1].domain",
        "static_registrations[1].transport",
        "static_registrations[1].colour",
        "static_registrations[3]",
        "options.timeout_ms",
        "sg[0].address",
        "sg[1].name",
        "sg[1].path_address",
        "sg_check.fail_after",
        "journal_size",
        "external.listen",
        "external.expires_s",
        "external.numbers[0].number",
        "external.numbers[0].server",
        "external.numbers[2]",
        "external.numbers[2].extra",
        "bogus",
    ] {
        assert!(problems.iter().any(|p| p.path == format!("{at}.{path}")), "no problem at {at}.{path}:\n{text}");
    }
    assert!(text.contains("expected each account once, found gw1@d.test again"), "{text}");
    assert!(text.contains("expected each number once per domain, found sip:201@other.test for d.test again"), "{text}");
}
