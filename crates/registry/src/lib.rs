//! mware-registry: the one place where mware's services are listed.
//!
//! Each service crate gives a [`Plugin`] (its sections of the site file and how to build
//! it); the binary, `mware validate` and `mware schema` take them from here, so the site
//! file is checked by the same code that runs it. Adding a service: its crate, one line in
//! [`plugins`], and the crate in this crate's `Cargo.toml` (recipe:
//! `crates/services/README.md`).
#![deny(missing_docs)]

use mware_config::{Problem, Section, Validated};
use mware_host::{Plugin, Service};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Every service mware can host, in the order they are built and shown.
pub fn plugins() -> Vec<Plugin> {
    vec![
        mware_mutex::plugin(),
        mware_pgctl::plugin(),
        mware_realtime::plugin(),
        mware_backup::plugin(),
        mware_tasks::plugin(),
        mware_monitor::plugin(),
        mware_devices::plugin(),
        mware_alarms::plugin(),
        mware_microservices::plugin(),
        mware_callmanager::plugin(),
        mware_calltracking::plugin(),
        mware_acme::plugin(),
        mware_users::plugin(),
        mware_callback::plugin(),
    ]
}

/// Every registered section of the site file.
pub fn sections() -> Vec<&'static dyn Section> {
    plugins().into_iter().flat_map(|p| p.sections).collect()
}

/// Builds every service once (each registers its metrics).
pub fn build(registry: &mut Registry) -> Vec<Arc<dyn Service>> {
    plugins().into_iter().map(|p| (p.build)(registry)).collect()
}

/// Every service's subcommands of `mware` (`mware backup …`).
pub fn subcommands() -> Vec<mware_client::Subcommand> {
    plugins().into_iter().flat_map(|p| p.cli).collect()
}

/// Validates a site file against the site's rules and every registered section.
pub fn validate(text: &str) -> Result<Validated, Vec<Problem>> {
    mware_config::validate(text, &sections())
}

/// The JSON Schema of the site file with every registered section.
pub fn schema() -> serde_json::Value {
    mware_config::schema(&sections())
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_section_key_is_claimed_once() {
        let mut keys: Vec<&str> = super::sections().iter().map(|s| s.key()).collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n, "two services claim the same section key");
    }
}
