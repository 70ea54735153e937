//! What a service crate hands the binary: its sections of the site file, how to build
//! the service and its subcommands. The binary keeps one list of these (`mware-registry`), so adding a
//! service is its crate plus one line there.

use crate::Service;
use mware_config::Section;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// One service, as the registry sees it.
pub struct Plugin {
    /// Its name (the same as [`Service::name`]).
    pub name: &'static str,
    /// Its sections of the site file (most services have one; made with
    /// [`mware_config::section`]).
    pub sections: Vec<&'static dyn Section>,
    /// Builds the service once at start, registering its metrics.
    pub build: fn(&mut Registry) -> Arc<dyn Service>,
    /// Its subcommands of `mware` (`mware backup …`), if it has any: they call its routes
    /// through the API of a running instance.
    pub cli: Vec<mware_client::Subcommand>,
}
