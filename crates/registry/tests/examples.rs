//! The example site files in `examples/` stay valid, and the JSON Schema is
//! a document describing the servers.

use mware_config::{Backend, DomainTree};
use mware_registry::{schema, validate};

fn load(name: &str) -> String {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn minimal_validates() {
    let v = validate(&load("minimal.json")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    let inst = v.site.instance("mware1").expect("mware1");
    assert_eq!(inst.api_addr().as_deref(), Some("127.0.0.1:8271"));
    assert_eq!(v.site.coordination.backend, Backend::Embedded);
}

#[test]
fn site_validates_without_warnings() {
    let v = validate(&load("site.json")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    let s = &v.site;
    assert_eq!(s.coordination.backend, Backend::Etcd);
    assert_eq!(s.servers.len(), 3);
    assert_eq!(s.groups(), vec![981001, 981002]);
    let (pg, w) =
        mware_pgctl::parse_groups(&s.instance("mware1").unwrap().role.section::<mware_pgctl::PgController>().unwrap_or_default().0, "pg");
    assert!(w.is_empty() && pg.len() == 1);
    let t = DomainTree::build(s);
    assert_eq!(t.route("pbx.tenant1.example.ru"), Some(981002));
    assert_eq!(t.route("example.ru"), Some(981001));
    // Secrets parse but never print, the raw `pg_controller` list included.
    let r = &s.instance("mware1").unwrap().role;
    let dbg = format!(
        "{:?} {:?} {}",
        r,
        s.instance("mware2").unwrap().role.section::<mware_realtime::Provisioning>(),
        serde_json::to_string(s).unwrap()
    );
    assert!(!dbg.contains("example-") && !dbg.contains("dbname="), "{dbg}");
    assert_eq!(pg[0].servers[0].ssh_pwd.as_ref().map(|p| p.expose()), Some("example-ssh-pwd"));
    assert!(!format!("{pg:?}").contains("example-"));
}

#[test]
fn schema_describes_servers() {
    let s = schema();
    assert!(s.is_object());
    assert!(s.pointer("/properties/servers").is_some(), "{s:#}");
}

#[test]
fn microservices_validates_without_warnings() {
    let v = validate(&load("microservices.json")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    let m = v.site.instance("mware1").unwrap().role.section::<mware_microservices::Microservices>().expect("the section");
    assert_eq!((m.processes.len(), m.syslog.map(|s| s.facility)), (2, Some("local4".to_string())));
}

#[test]
fn callback_validates_without_warnings() {
    let v = validate(&load("callback.json")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    let c = v.site.instance("mware1").unwrap().role.section::<mware_callback::CallbackConfig>().expect("the section");
    assert_eq!(c.policy(Some("sales")).attempts, 5);
    assert_eq!(c.policy(Some("support")).retry_after_ms, 300_000);
}
