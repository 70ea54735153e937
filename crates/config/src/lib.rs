//! mware-config: the site file of a telecom site running mware.
//!
//! It holds the site's own model ([`Site`]: servers, roles, groups, order, domains,
//! coordination, api, ssh), the validator that reports every problem with its JSON path
//! ([`validate`]), the JSON Schema ([`schema`]), the domain tree that says which group
//! serves a domain ([`DomainTree`]) with the one rule for domain names ([`canonical`]),
//! and the contract of a service's section ([`SectionConfig`]): each service crate owns
//! its section's type and check, and the binary passes the list of them in. The typed
//! readers of raw JSON ([`Check`]) are public so the services' checks report problems
//! the same way. No I/O and no async: callers read files and pass text.
#![deny(missing_docs)]

mod clock;
mod domain;
mod model;
mod name_hash;
mod redact;
mod secret;
mod section;
mod short;
mod ssh;
pub mod strict_json;
mod table;
mod tree;
mod validate;

pub use clock::now_ms;
pub use domain::{canonical, DomainError, DomainProblem, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use model::*;
pub use redact::{is_secret_key, mask_url_userinfo, redact, redact_allowed};
pub use secret::{same, Secret};
pub use section::{section, GroupView, Parsed, Section, SectionConfig, Sections, SiteInfo};
pub use ssh::{SshSettings, DEFAULT_KNOWN_HOSTS};
pub use tree::DomainTree;
pub use validate::walk::{is_host_port, is_item_name};
pub use validate::{found, index, join, kind, quote, validate, Check, Problem, Severity, Validated};

/// The JSON Schema of the site file, as a JSON value: the site's own keys, and each
/// registered section under the roles (any other role key is refused).
pub fn schema(sections: &[&'static dyn Section]) -> serde_json::Value {
    let mut gen = schemars::SchemaGenerator::default();
    let root = gen.root_schema_for::<Site>();
    let mut props = serde_json::Map::new();
    for s in sections {
        props.insert(s.key().to_string(), s.schema(&mut gen).to_value());
    }
    let mut root = root.to_value();
    let defs_key = if root.get("$defs").is_some() { "$defs" } else { "definitions" };
    let defs = root.as_object_mut().expect("schema object").entry(defs_key).or_insert_with(|| serde_json::json!({}));
    for (k, v) in gen.definitions() {
        defs.as_object_mut().expect("definitions object").entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(role) = defs.get_mut("Role").and_then(|r| r.as_object_mut()) {
        let p = role.entry("properties").or_insert_with(|| serde_json::json!({}));
        if let Some(p) = p.as_object_mut() {
            p.extend(props);
        }
        role.insert("additionalProperties".into(), serde_json::Value::Bool(false));
    }
    root
}
