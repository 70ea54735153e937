//! (new) The `provisioning` section of a group: the realtime provisioning service for
//! SIP servers (Asterisk res_config_curl), with the SIP servers it serves (entities),
//! their credentials and what each may see.
//!
//! The section's type and its check live here, in the service that uses them.

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use serde_json::Value;

mod check;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// (new) Realtime provisioning service settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// PostgreSQL connection string (libpq key=value or URL) of the provisioning database.
    pub dsn: Secret,
    /// Family (the URL segment after the entity id) → table. Empty means the built-in
    /// `endpoint → ps_endpoints`, `auth → ps_auths`, `aor → ps_aors`.
    #[serde(default)]
    pub families: BTreeMap<String, String>,
    /// Largest request body accepted, in bytes (default 65536).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// (new) The SIP servers this group provisions: entity id (the segment after
    /// `/provision/asterisk/`, Asterisk's `entityid` such as `12:34:56:78:9a:bc`, lowercase)
    /// → what that server may see. A call naming an entity not listed here is refused (404).
    #[serde(default)]
    pub entities: BTreeMap<String, ProvisioningEntity>,
    /// (new) Also accept a tenant domain in that segment (the old form), for an entity
    /// whose credential is given and whose `domains` list it (default false).
    #[serde(default)]
    pub accept_domain_segment: bool,
    /// (new) Families whose table has no `domain` column and whose rows every entity of the
    /// group may therefore read (and, with `write`, change). A family whose table has no
    /// `domain` column and is not listed here is refused (403).
    #[serde(default)]
    pub shared_families: Vec<String>,
    /// (new) CA certificate (PEM) of the provisioning database's server: when set, the
    /// connection uses TLS and verifies the server's certificate and host name
    /// (libpq's `verify-full`), whatever the DSN's `sslmode` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl SectionConfig for Provisioning {
    const KEY: &'static str = "provisioning";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::section(cx, v, at)
    }
    fn check_site(cx: &mut Check, site: &SiteInfo) {
        check::across_groups(cx, site)
    }
}

/// (new) One SIP server (provisioning entity): what it may see and its credential.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningEntity {
    /// The tenant domains whose rows it sees (the `domain` column); all served by this group.
    pub domains: Vec<String>,
    /// HTTP Basic user name it sends (`http://USER:PASSWORD@host/...` in its URL).
    pub user: String,
    /// HTTP Basic password it sends.
    pub password: Secret,
    /// May it store, update and destroy rows (default false: reads only)?
    #[serde(default)]
    pub write: bool,
}

/// True when `id` is an entity id as Asterisk prints `${ENTITYID}`: six two-digit
/// hexadecimal octets separated by `:`, lowercase (`12:34:56:78:9a:bc`).
pub fn is_entity_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 17
        && b.iter().enumerate().all(|(i, c)| if i % 3 == 2 { *c == b':' } else { c.is_ascii_digit() || (b'a'..=b'f').contains(c) })
}

impl Provisioning {
    /// The entity listed under `id` (given in any case).
    pub fn entity(&self, id: &str) -> Option<(&str, &ProvisioningEntity)> {
        let id = id.to_ascii_lowercase();
        self.entities.get_key_value(&id).map(|(k, v)| (k.as_str(), v))
    }
}

fn default_max_body() -> usize {
    65_536
}

impl Default for Provisioning {
    /// Every default, with an empty `dsn` (for tools and tests that fill it in).
    fn default() -> Self {
        serde_json::from_str(r#"{"dsn": ""}"#).expect("provisioning defaults")
    }
}
