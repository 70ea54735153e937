//! Domain rules of the site file: syntax, one responsibility per group, one
//! group per domain, exactly one group serving the rest of the tree; and the
//! tree built from a validated site.

mod common;
use common::*;
use mware_config::DomainTree;
use serde_json::{json, Value};

/// Group 1 serves the rest; group 2 and 3 name domains. One server, three addresses.
fn three_groups(g2: &[&str], g3: &[&str]) -> Value {
    let mut v = base();
    set(&mut v, "/servers/0/ifaces/eth2", json!("127.0.0.2"));
    set(&mut v, "/servers/0/roles/1", role("mware2", 2, 10, g2));
    set(&mut v, "/servers/0/roles/1/api_port", json!(8272));
    set(&mut v, "/servers/0/roles/2", role("mware3", 3, 10, g3));
    set(&mut v, "/servers/0/roles/2/api_port", json!(8273));
    v
}

#[test]
fn domain_syntax() {
    ok(&three_groups(&["a.example", "xn--80ak6aa92e.com", "Tenant-1.RU.", "_sip._udp.x.ru", "тест.рф"], &["b"]));
    for (bad, why) in [
        ("a..b", "found \"a..b\" with an empty label"),
        ("-a.b", "'-' at an end"),
        ("a*b.c", "the character '*'"),
        ("a\0b.c", "found \"a\\0b.c\" with a control character at byte 1"),
        ("a b.c", "whitespace at byte 1"),
        ("", "found \"\" with nothing in it"),
        (&*format!("{}.ru", "a".repeat(64)), "a label of 64 bytes"),
        (&*format!("{}ru", "abc.".repeat(64)), "with 258 bytes"),
    ] {
        let v = three_groups(&["ok.example", bad], &["b"]);
        only(&v, "servers[0].roles[1].include_domains[1]", why);
    }
}

#[test]
fn one_group_per_domain_case_insensitive() {
    let v = three_groups(&["a.b"], &["A.B."]);
    only(&v, "servers[0].roles[2].include_domains[0]", "expected each domain to be named by one group only, found \"a.b\" in group 3 and in group 2 (servers[0].roles[1].include_domains[0])");
    // A Unicode name and its punycode form are one domain.
    let v = three_groups(&["тест.рф"], &["XN--E1AYBC.xn--p1ai"]);
    only(&v, "servers[0].roles[2].include_domains[0]", "found \"xn--e1aybc.xn--p1ai\" in group 3 and in group 2");
    // Nested domains in different groups are fine: the most specific wins.
    ok(&three_groups(&["a.b"], &["x.a.b"]));
}

#[test]
fn duplicate_inside_one_list() {
    let v = three_groups(&["a.b", "c.d", "A.b."], &["x"]);
    only(
        &v,
        "servers[0].roles[1].include_domains[2]",
        "expected each domain once, found \"a.b\" again (first at servers[0].roles[1].include_domains[0])",
    );
}

#[test]
fn group_members_share_their_domains() {
    let mut v = three_groups(&["a.b", "c.d"], &["x"]);
    set(&mut v, "/servers/1", json!({"name": "srv2", "ifaces": {"eth0": "127.0.0.9"}, "roles": [role("mware4", 2, 20, &["C.D.", "a.b"])]}));
    ok(&v);
    set(&mut v, "/servers/1/roles/0/include_domains", json!(["a.b"]));
    only(&v, "servers[1].roles[0].include_domains", "expected the same include_domains as servers[0].roles[1] [\"a.b\", \"c.d\"] (all instances of group 2 serve the same domains), found [\"a.b\"]");
    // A default-group member that names domains breaks responsibility too.
    let mut v = base();
    set(&mut v, "/servers/0/roles/1", role("mware2", 1, 20, &["a.b"]));
    set(&mut v, "/servers/0/roles/1/iface", json!("eth1"));
    let e = errors(&v);
    has(&e, "servers[0].roles[1].include_domains", "found [\"a.b\"]");
}

#[test]
fn exactly_one_group_serves_the_rest() {
    // A single group may serve everything (the base site).
    ok(&base());
    // None: the rest of the tree is unserved.
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/include_domains", json!(["a.b"]));
    only(&v, "servers", "the rest of the tree is unserved");
    // Two: they compete, and both are named.
    let v = three_groups(&[], &["x"]);
    only(&v, "servers", "found 2 groups that compete for it: 1, 2");
}

#[test]
fn no_enabled_instance() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/enabled", json!(false));
    only(&v, "servers", "expected at least one enabled role instance, found none");
}

#[test]
fn tree_from_a_validated_site() {
    let v = ok(&three_groups(&["a.b"], &["x.a.b"]));
    let t = DomainTree::build(&v.site);
    assert_eq!(t.route("y.x.a.b"), Some(3));
    assert_eq!(t.route("z.a.b"), Some(2));
    assert_eq!(t.route("A.B."), Some(2));
    assert_eq!(t.route("other.ru"), Some(1));
    assert_eq!(t.default_group(), Some(1));
    assert_eq!(t.domains_of(3), vec!["x.a.b"]);
    assert_eq!(t.route("bad..domain"), None, "an invalid name is not the default group's");
}

#[test]
fn a_unicode_name_in_include_domains_routes_in_both_forms() {
    let v = ok(&three_groups(&["тест.рф"], &["x"]));
    let t = DomainTree::build(&v.site);
    assert_eq!(t.domains_of(2), vec!["xn--e1aybc.xn--p1ai"]);
    for q in ["тест.рф", "xn--e1aybc.xn--p1ai", "pbx.тест.рф", "PBX.XN--E1AYBC.XN--P1AI."] {
        assert_eq!(t.route(q), Some(2), "{q}");
    }
    assert_eq!(t.route("рф"), Some(1));
}
