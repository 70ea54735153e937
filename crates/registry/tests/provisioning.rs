//! The `provisioning` section's entities (issue 18): syntax of entity ids, the
//! entity's credential and domains, and across groups which group provisions
//! which SIP server. Every problem is reported at once, with its path, and no
//! password is ever shown.

mod common;
use common::*;
use mware_realtime::is_entity_id;
use serde_json::{json, Value};

const EID: &str = "12:34:56:78:9a:bc";

/// Group 1 serves the rest of the tree, group 2 serves t2.example.ru; group 1 provisions.
fn site(entities: Value) -> Value {
    let mut v = base();
    set(&mut v, "/servers/0/roles/1", role("mware2", 2, 10, &["t2.example.ru"]));
    set(&mut v, "/servers/0/roles/1/api_port", json!(8272));
    set(&mut v, "/servers/0/roles/0/provisioning", json!({"dsn": "host=127.0.0.1", "entities": entities, "shared_families": ["aor"]}));
    v
}

fn ent(domains: &[&str]) -> Value {
    json!({"domains": domains, "user": "ast1", "password": "pw-never-shown", "write": false})
}

#[test]
fn an_entity_maps_to_its_domains_and_credential() {
    let v = ok(&site(json!({EID: ent(&["t1.example.ru", "T3.Example.ru."])})));
    let p = v.site.instance("mware1").unwrap().role.section::<mware_realtime::Provisioning>().unwrap();
    let (id, e) = p.entity("12:34:56:78:9A:BC").expect("looked up in any case");
    assert_eq!((id, e.user.as_str(), e.write), (EID, "ast1", false));
    assert_eq!(e.password.expose(), "pw-never-shown");
    assert!(!format!("{p:?} {}", serde_json::to_string(&p).unwrap()).contains("pw-never-shown"));
    assert!(!p.accept_domain_segment, "the domain form is off by default");
    assert!(is_entity_id(EID) && !is_entity_id("t1.example.ru"));
}

#[test]
fn entity_fields_are_checked_every_problem_at_once() {
    let base = "servers[0].roles[0].provisioning";
    let v = site(json!({
        "12:34:56:78:9A:BC": ent(&["t1.example.ru"]),
        "t1.example.ru": ent(&["t1.example.ru"]),
        "aa:bb:cc:dd:ee:ff": {"domains": [], "user": "a b", "password": 12345678, "extra": 1},
        "aa:bb:cc:dd:ee:00": {"domains": ["ok.ru", "OK.ru", "bad..name"], "user": "ast1", "password": ""}
    }));
    let e = errors(&v);
    let text = show(&e);
    assert!(!text.contains("pw-never-shown") && !text.contains("12345678"), "{text}");
    has(&e, &format!("{base}.entities.12:34:56:78:9A:BC"), "write it in lowercase");
    has(&e, &format!("{base}.entities.t1.example.ru"), "expected an entity id of six two-digit hexadecimal octets");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:ff.domains"), "expected at least one domain");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:ff.user"), "expected a user name of latin letters");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:ff.password"), "expected a string (a secret), found a number");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:ff.extra"), "unknown key");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:00.domains[1]"), "expected each domain once");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:00.domains[2]"), "expected a domain name");
    has(&e, &format!("{base}.entities.aa:bb:cc:dd:ee:00.password"), "expected a password, found an empty one");
    // user names are unique in a section (the domain form finds the entity by it)
    assert!(e.iter().any(|p| p.path.ends_with(".user") && p.message.contains("unique in this section")), "{text}");
}

#[test]
fn an_entity_whose_domains_belong_to_two_groups_is_refused() {
    let v = site(json!({EID: ent(&["t1.example.ru", "t2.example.ru", "x.t2.example.ru"])}));
    let e = errors(&v);
    let p = format!("servers[0].roles[0].provisioning.entities.{EID}.domains");
    has(&e, &format!("{p}[1]"), "expected a domain served by group 1, whose provisioning section lists entity \"12:34:56:78:9a:bc\", found \"t2.example.ru\" served by group 2");
    has(&e, &format!("{p}[2]"), "found \"x.t2.example.ru\" served by group 2");
    has(&e, &p, "found domains of group 1 (t1.example.ru) and group 2 (t2.example.ru, x.t2.example.ru)");
    // Only another group's domains: the listing group does not serve it.
    let v = site(json!({EID: ent(&["t2.example.ru"])}));
    only(&v, &format!("{p}[0]"), "served by group 2");
}

#[test]
fn an_entity_listed_by_two_groups_is_refused() {
    let mut v = site(json!({EID: ent(&["t1.example.ru"])}));
    set(&mut v, "/servers/0/roles/1/provisioning", json!({"dsn": "host=127.0.0.1", "entities": {EID: ent(&["t2.example.ru"])}}));
    only(
        &v,
        &format!("servers[0].roles[1].provisioning.entities.{EID}"),
        "expected an entity listed by one group only (its calls go to one group), found \"12:34:56:78:9a:bc\" in group 2 and in group 1",
    );
}

#[test]
fn shared_families_and_options_are_checked() {
    let mut v = site(json!({}));
    set(&mut v, "/servers/0/roles/0/provisioning/shared_families", json!(["aor", "nosuch"]));
    set(&mut v, "/servers/0/roles/0/provisioning/accept_domain_segment", json!("yes"));
    set(&mut v, "/servers/0/roles/0/provisioning/ca_file", json!(""));
    let e = errors(&v);
    assert_eq!(e.len(), 3, "{}", show(&e));
    has(
        &e,
        "servers[0].roles[0].provisioning.shared_families[1]",
        "expected a family of this section (endpoint, auth, aor), found \"nosuch\"",
    );
    has(&e, "servers[0].roles[0].provisioning.accept_domain_segment", "expected true or false");
    has(&e, "servers[0].roles[0].provisioning.ca_file", "non-empty");
}
