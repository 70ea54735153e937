//! What adding a service costs outside its own code: a toy service (its section, its
//! `Service`, its `Plugin`) written entirely here, then one line (`push`) to register it.
//! The validator, the schema and the host take it from there; nothing in `mware-config`,
//! `mware-host` or the binary knows it.

use mware_config::{Check, SectionConfig, SiteInfo};
use mware_host::{Plugin, Service, ServiceContext};
use serde_json::{json, Value};
use std::sync::Arc;

/// (toy) Greets the group's callers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
struct Greeter {
    /// What to say.
    greeting: String,
}

impl SectionConfig for Greeter {
    const KEY: &'static str = "greeter";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        let Some(m) = cx.object(v, at) else { return };
        cx.keys(m, at, &["greeting"], &["greeting"]);
        cx.nonempty_str(m, at, "greeting");
    }
}

struct GreeterService;

#[async_trait::async_trait]
impl Service for GreeterService {
    fn name(&self) -> &'static str {
        "greeter"
    }
    fn wanted(&self, role: &mware_config::Role) -> bool {
        role.section::<Greeter>().is_some()
    }
    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        ctx.cancel.cancelled().await;
        Ok(())
    }
}

fn plugin() -> Plugin {
    Plugin { name: "greeter", sections: vec![mware_config::section::<Greeter>()], build: |_| Arc::new(GreeterService), cli: vec![] }
}

fn site(greeter: Value) -> String {
    json!({"site": "toy", "servers": [{"name": "s1", "ifaces": {"lo": "127.0.0.1"}, "roles": [
        {"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 1, "greeter": greeter}]}]})
    .to_string()
}

#[test]
fn a_new_service_is_its_code_plus_one_line() {
    let mut plugins = mware_registry::plugins();
    // Without its line the key is unknown, as any other.
    let sections: Vec<_> = plugins.iter().flat_map(|p| p.sections.clone()).collect();
    let e = mware_config::validate(&site(json!({"greeting": "hi"})), &sections).unwrap_err();
    assert!(e.iter().any(|p| p.path == "servers[0].roles[0].greeter" && p.message.contains("unknown key")), "{e:?}");

    plugins.push(plugin()); // the one line
    let sections: Vec<_> = plugins.iter().flat_map(|p| p.sections.clone()).collect();
    let v = mware_config::validate(&site(json!({"greeting": "hi"})), &sections).expect("validates");
    let role = &v.site.servers[0].roles[0];
    assert_eq!(role.section::<Greeter>(), Some(Greeter { greeting: "hi".into() }));
    assert!(GreeterService.wanted(role));

    // Its check reports every problem with its path, like the site's own.
    let e = mware_config::validate(&site(json!({"greeting": "", "volume": 11})), &sections).unwrap_err();
    let paths: Vec<&str> = e.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["servers[0].roles[0].greeter.volume", "servers[0].roles[0].greeter.greeting"], "{e:?}");

    // The schema describes it; the host builds it.
    let schema = mware_config::schema(&sections);
    assert!(schema["$defs"]["Role"]["properties"]["greeter"].is_object(), "{schema}");
    let mut registry = prometheus_client::registry::Registry::default();
    let built: Vec<_> = plugins.iter().map(|p| (p.build)(&mut registry)).collect();
    assert!(built.iter().any(|s| s.name() == "greeter"));
}
